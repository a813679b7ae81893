"""Jira parser on issue fixtures.

No public Jira export exists (see shared/data/dev/README.md), so the fixtures under ``fixtures/`` were
written for these tests following the documented REST responses: a Jira Server/Data Center issue
(``GET /rest/api/2/issue/{key}?expand=changelog,names``), a Jira Cloud v3 search with Jira Service
Management's Approvals field, and issues whose dates a CSV converter left in Jira's UI format. Each
fixture says so in its ``_comment``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from accessproof.model import WorkflowKind, WorkflowRecord
from accessproof.sources.base import Context, Reject, iter_json_records
from accessproof.sources.jira import SOURCE

FIXTURES = Path(__file__).parent / "fixtures"
SERVER_OPTIONS = {"subject_field": "customfield_10100", "scope_field": "Access",  # by name (expand=names)
                  "approver_field": "customfield_10104", "effective_field": "customfield_10102",
                  "expires_field": "Access end date", "environment_field": "customfield_10105"}
CLOUD_OPTIONS = {"subject_field": "customfield_10050", "scope_field": "customfield_10051",
                 "approver_field": "customfield_10027"}


def _run(name: str, source_name: str | None = None, **options) -> tuple[list[WorkflowRecord], list[str]]:
    accepted, rejected = [], []
    for chunk in iter_json_records(FIXTURES / name):
        assert chunk.error is None, chunk.error
        obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
        ctx = Context("jira", name, chunk.position, "", hashlib.sha256(chunk.data).hexdigest(), source_name,
                      options)
        try:
            records = SOURCE.normalize(obj, ctx)
        except Reject as r:
            rejected.append(str(r))
            continue
        assert len(records) == 1
        accepted.append(records[0])
    return accepted, rejected


def _ctx(**options) -> Context:
    return Context("jira", "x", "x#0", "", "0" * 64, None, options)


def test_record_counts():
    assert [len(x) for x in _run("jira_issue_access_request.json", **SERVER_OPTIONS)] == [1, 0]
    assert [len(x) for x in _run("jira_search.json", **CLOUD_OPTIONS)] == [3, 0]
    assert [len(x) for x in _run("jira_export_ui_dates.json")] == [2, 1]


def test_server_issue_mapping():
    [r], _ = _run("jira_issue_access_request.json", **SERVER_OPTIONS)
    assert r.record_id == "ACCESS-42" and r.system == "jira" and r.kind == WorkflowKind.ACCESS_REQUEST
    assert r.subject == "bob.kelly@contoso.example"  # user picker custom field
    assert r.scope == "payments-db-readwrite"  # select option, field named through expand=names
    assert r.requester == "fred.luddy@contoso.example"  # reporter
    # ``2024-03-01T11:22:13.000+0100``: offset without a colon, converted to UTC
    assert r.opened == datetime(2024, 3, 1, 10, 22, 13, tzinfo=UTC)
    # Beth moved it to Approved (changelog) and is also in the Approvers field: listed once
    assert r.approvers == ["beth.anglin@contoso.example"]
    assert r.decided == datetime(2024, 3, 4, 9, 10, 45, tzinfo=UTC)
    assert r.effective == datetime(2024, 3, 4, tzinfo=UTC) and r.expires == datetime(2024, 6, 30, tzinfo=UTC)
    assert r.environment == "Production"
    assert r.status == "done"
    assert [(h.status, h.by) for h in r.history] == [
        ("to do", "fred.luddy@contoso.example"),
        ("waiting for approval", "fred.luddy@contoso.example"),
        ("approved", "beth.anglin@contoso.example"),  # the assignee change in the same entry is ignored
        ("in progress", "it.operations@contoso.example"),
        ("done", "it.operations@contoso.example"),
    ]
    assert r.attributes["labels"] == ["payments", "prod"] and r.attributes["project"] == "ACCESS"


def test_date_only_fields_follow_the_timezone_option():
    [r], _ = _run("jira_issue_access_request.json", timezone="Europe/Paris", **SERVER_OPTIONS)
    assert r.effective == datetime(2024, 3, 3, 23, 0, tzinfo=UTC)
    assert r.opened == datetime(2024, 3, 1, 10, 22, 13, tzinfo=UTC)  # date-times keep their own offset


def test_cloud_search_with_service_management_approvals():
    acc, _ = _run("jira_search.json", **CLOUD_OPTIONS)
    declined, pending, change = acc
    assert declined.record_id == "ACCESS-43" and declined.status == "declined"
    assert declined.requester == "Dana Scully"  # email hidden by profile visibility: display name
    assert declined.subject == "dana.scully@contoso.example"
    assert declined.scope == "aws-prod / AdministratorAccess"  # cascading select
    assert declined.approvers == [] and declined.attributes["rejected_by"] == ["beth.anglin@contoso.example"]
    assert declined.decided == datetime(2024, 3, 5, 16, 30, tzinfo=UTC)
    assert pending.status == "waiting for approval" and pending.decided is None and pending.approvers == []
    # a changelog with no transition: the issue has been in its current status since creation
    assert [(h.time, h.status) for h in pending.history] == [(pending.opened, "waiting for approval")]
    assert change.kind == WorkflowKind.CHANGE_RECORD and change.record_id == "CHG-7"
    # Fred approved in JSM; Automation moved the issue on, and is no approver
    assert change.approvers == ["fred.luddy@contoso.example"]
    assert change.decided == datetime(2024, 3, 6, 21, 55, 10, tzinfo=UTC)  # JSM completedDate
    assert change.subject is None and change.scope == "Entra ID: Global Administrator"


def test_bad_dates_are_rejected():
    acc, rejected = _run("jira_export_ui_dates.json")
    assert rejected == ["created '11/Mar/24 10:22 AM' is not ISO 8601"]
    ok, partial = acc
    assert ok.record_id == "IT-9" and ok.history == []  # no changelog exported: history unknown
    assert ok.scope == "Remove leaver from shared mailbox"  # no scope field: the summary
    # no created date at all (a partial export): kept, opened unknown — never invented
    assert partial.record_id == "IT-11" and partial.opened is None


def test_kind_default_option_and_system_name():
    acc, _ = _run("jira_export_ui_dates.json", source_name="jira:contoso", kind="change_record")
    assert acc[0].kind == WorkflowKind.CHANGE_RECORD and acc[0].system == "jira:contoso"
    with pytest.raises(Reject, match="not a workflow kind"):
        SOURCE.normalize({"key": "IT-1", "fields": {"created": "2024-01-01T00:00:00.000+0000"}},
                         _ctx(kind="ticket"))


def test_custom_statuses():
    acc, _ = _run("jira_search.json", approved_statuses=["Implementing"], **CLOUD_OPTIONS)
    r = acc[2]
    # changelog movers into an approved status first (in time order), then the approver field's
    assert r.approvers == ["Automation for Jira", "fred.luddy@contoso.example"]
    assert r.decided == datetime(2024, 3, 6, 21, 55, 12, tzinfo=UTC)  # the last move into a decision status


def test_rejects():
    with pytest.raises(Reject, match="no key"):
        SOURCE.normalize({"fields": {}}, _ctx())
    with pytest.raises(Reject, match="no fields"):
        SOURCE.normalize({"key": "IT-1"}, _ctx())
    with pytest.raises(Reject, match="not a JSON object"):
        SOURCE.normalize("IT-1", _ctx())
    with pytest.raises(Reject, match="changelog created"):
        SOURCE.normalize({"key": "IT-1", "fields": {"created": "2024-01-01T00:00:00.000+0000"},
                          "changelog": {"histories": [{"created": "tomorrow", "items": [
                              {"field": "status", "fromString": "To Do", "toString": "Done"}]}]}}, _ctx())
    with pytest.raises(Reject, match="customfield_1 'soon'"):
        SOURCE.normalize({"key": "IT-1", "fields": {"created": "2024-01-01T00:00:00.000+0000",
                                                    "customfield_1": "soon"}}, _ctx(expires_field="customfield_1"))
