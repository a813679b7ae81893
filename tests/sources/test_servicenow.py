"""ServiceNow parser on Table API fixtures.

No public ServiceNow export exists (see shared/data/dev/README.md), so the fixtures under ``fixtures/``
were written for these tests following ServiceNow's documented Table API response (``{"result": [...]}``)
and out-of-box field names of ``sc_req_item``, ``sysapproval_approver`` and ``change_request``, in the
three ``sysparm_display_value`` modes. Each fixture says so in its ``_comment``. The same three request
items appear in the ``true``, ``all`` and ``false`` exports, exported by a user in America/New_York.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson
import pytest

from accessproof.model import WorkflowKind, WorkflowRecord
from accessproof.sources.base import Context, Reject, iter_json_records
from accessproof.sources.servicenow import SOURCE

FIXTURES = Path(__file__).parent / "fixtures"
NY = {"timezone": "America/New_York"}


def _run(name: str, source_name: str | None = None, **options) -> tuple[list[WorkflowRecord], list[str]]:
    accepted, rejected = [], []
    for chunk in iter_json_records(FIXTURES / name):
        assert chunk.error is None, chunk.error
        obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
        ctx = Context("servicenow", name, chunk.position, "", hashlib.sha256(chunk.data).hexdigest(),
                      source_name, options)
        try:
            records = SOURCE.normalize(obj, ctx)
        except Reject as r:
            rejected.append(str(r))
            continue
        assert len(records) == 1
        accepted.append(records[0])
    return accepted, rejected


def _ctx(**options) -> Context:
    return Context("servicenow", "x", "x#0", "", "0" * 64, None, options)


def _core(r: WorkflowRecord) -> dict:
    """What must not depend on the export's display mode."""
    d = msgspec.to_builtins(r)
    d.pop("attributes", None)
    return d


def test_record_counts():
    assert [len(x) for x in _run("servicenow_sc_req_item_display.json", **NY)] == [3, 1]
    assert [len(x) for x in _run("servicenow_sc_req_item_all.json", **NY)] == [3, 0]
    assert [len(x) for x in _run("servicenow_sc_req_item_raw.json", **NY)] == [2, 0]
    assert [len(x) for x in _run("servicenow_sysapproval_approver.json", **NY)] == [5, 0]
    assert [len(x) for x in _run("servicenow_change_request.json", **NY)] == [3, 0]


def test_request_item_mapping():
    acc, _ = _run("servicenow_sc_req_item_all.json", **NY)
    r = acc[0]
    assert r.record_id == "RITM0010231" and r.system == "servicenow"
    assert r.kind == WorkflowKind.ACCESS_REQUEST
    assert r.subject == "bob.kelly@contoso.example"  # requested_for.email preferred to the display name
    assert r.requester == "bob.kelly@contoso.example"
    assert r.scope == "Entra ID group membership"  # cat_item display value
    assert r.status == "approved"
    assert r.opened == datetime(2024, 3, 1, 10, 22, 13, tzinfo=UTC)  # the ``value`` is UTC
    assert r.decided == datetime(2024, 3, 4, 9, 10, 45, tzinfo=UTC)
    # catalogue date variables: a calendar day, midnight in the organisation's zone (EST here)
    assert r.effective == datetime(2024, 3, 4, 5, 0, tzinfo=UTC)
    assert r.expires == datetime(2024, 6, 30, 4, 0, tzinfo=UTC)  # EDT by then
    assert (r.environment, r.business_unit) == ("prod", "Finance")
    assert [(h.status, h.time.hour) for h in r.history] == [("opened", 10), ("approved", 9),
                                                             ("work in progress", 9)]
    assert r.attributes["request"] == "REQ0010230" and r.attributes["state"] == "work in progress"
    rejected, pending = acc[1], acc[2]
    assert rejected.status == "rejected" and rejected.requester == "fred.luddy@contoso.example"
    assert rejected.subject == "dana.scully@contoso.example"
    assert pending.status == "requested" and pending.decided is None and pending.expires is None


def test_display_and_all_shapes_agree():
    display, _ = _run("servicenow_sc_req_item_display.json", **NY)
    both, _ = _run("servicenow_sc_req_item_all.json", **NY)
    assert [_core(r) for r in display] == [_core(r) for r in both]
    assert display[0].attributes["display_value"] == "true" and both[0].attributes["display_value"] == "all"


def test_display_values_follow_the_timezone_option():
    # read as UTC (the default), the New York display strings land five hours early
    utc, _ = _run("servicenow_sc_req_item_display.json")
    assert utc[0].opened == datetime(2024, 3, 1, 5, 22, 13, tzinfo=UTC)
    # ``all`` values are UTC whatever the option says
    both, _ = _run("servicenow_sc_req_item_all.json")
    assert both[0].opened == datetime(2024, 3, 1, 10, 22, 13, tzinfo=UTC)


def test_raw_values():
    raw, _ = _run("servicenow_sc_req_item_raw.json", **NY)
    both, _ = _run("servicenow_sc_req_item_all.json", **NY)
    r = raw[0]
    assert r.opened == both[0].opened and r.decided == both[0].decided  # raw date-times are UTC
    assert r.status == "approved" and r.attributes["state"] == "work in progress"  # code "2" → label
    assert r.subject == "bob.kelly@contoso.example"
    assert r.scope == "Finance-Payments-Approvers"  # cat_item is only a sys_id: the variable names the access
    assert raw[1].scope == "AdministratorAccess"
    scoped, _ = _run("servicenow_sc_req_item_all.json", scope_variable="u_group", **NY)
    assert scoped[0].scope == "Finance-Payments-Approvers"


def test_bad_dates_are_rejected_and_a_format_option_reads_them():
    _, rejected = _run("servicenow_sc_req_item_display.json", **NY)
    assert rejected == ["opened_at '03/12/2024 09:00:00 AM' is not a ServiceNow date-time "
                        "(yyyy-MM-dd HH:mm:ss); set the datetime_format option if the export uses another format"]
    acc, rejected = _run("servicenow_sc_req_item_display.json", datetime_format="%m/%d/%Y %I:%M:%S %p", **NY)
    assert rejected == [] and acc[3].record_id == "RITM0010240"
    assert acc[3].opened == datetime(2024, 3, 12, 13, 0, tzinfo=UTC)  # 9 AM EDT
    assert acc[0].opened == datetime(2024, 3, 1, 10, 22, 13, tzinfo=UTC)  # ISO values still read


def test_approval_mapping():
    acc, _ = _run("servicenow_sysapproval_approver.json", **NY)
    a = acc[0]
    assert a.kind == WorkflowKind.APPROVAL and a.record_id == "0b6c5a1e47c01200e0ef563dbb9a71f0"
    assert a.parent_id == "RITM0010231"
    assert a.approvers == ["beth.anglin@contoso.example"]
    assert a.decision == "approved" and a.status == "approved"
    assert a.opened == datetime(2024, 3, 1, 10, 22, 20, tzinfo=UTC)
    assert a.decided == datetime(2024, 3, 4, 9, 10, 45, tzinfo=UTC)
    assert "member of the payments team" in a.attributes["comments"]
    assert [x.decision for x in acc] == ["approved", "rejected", "requested", "approved", "not_required"]
    assert acc[2].decided is None and acc[4].decided is None  # not decided (yet / at all)
    assert acc[3].parent_id == "CHG0030117" and acc[3].attributes["source_table"] == "change_request"


def test_change_mapping():
    acc, _ = _run("servicenow_change_request.json", **NY)
    c = acc[0]
    assert c.kind == WorkflowKind.CHANGE_RECORD and c.record_id == "CHG0030117"
    assert c.scope == "Contoso Entra ID tenant"
    assert c.requester == "carol.danvers@contoso.example"
    assert c.approvers == ["Fred Luddy"]  # from the approval history journal
    assert c.status == "implement"
    assert c.opened == datetime(2024, 3, 6, 21, 30, tzinfo=UTC)
    assert c.effective == datetime(2024, 3, 6, 22, 0, tzinfo=UTC)
    assert c.expires == datetime(2024, 3, 7, 6, 0, tzinfo=UTC)
    assert c.decided == datetime(2024, 3, 6, 21, 55, 10, tzinfo=UTC)
    assert c.attributes["type"] == "emergency"
    assert acc[1].status == "assess" and acc[1].decided is None and acc[1].approvers == []
    assert acc[2].status == "canceled" and acc[2].approvers == []
    assert acc[2].attributes["rejected_by"] == ["Beth Anglin"]


def test_system_name():
    acc, _ = _run("servicenow_change_request.json", source_name="servicenow:contoso")
    assert {r.system for r in acc} == {"servicenow:contoso"}
    acc, _ = _run("servicenow_change_request.json", instance="contoso")
    assert {r.system for r in acc} == {"servicenow:contoso"}


def test_table_detection_and_option():
    assert SOURCE.normalize({"number": "RITM0000001", "opened_at": "2024-01-02 03:04:05"}, _ctx())[0].kind \
        == WorkflowKind.ACCESS_REQUEST
    assert SOURCE.normalize({"number": "CHG0000001"}, _ctx())[0].kind == WorkflowKind.CHANGE_RECORD
    assert SOURCE.normalize({"sys_id": "abc", "approver": "x", "state": "approved"}, _ctx())[0].kind \
        == WorkflowKind.APPROVAL
    # a custom number prefix: only the option (or sys_class_name) tells
    with pytest.raises(Reject, match="set the table option"):
        SOURCE.normalize({"number": "ACC0000001"}, _ctx())
    assert SOURCE.normalize({"number": "ACC0000001"}, _ctx(table="sc_req_item"))[0].record_id == "ACC0000001"
    assert SOURCE.normalize({"number": "X1", "sys_class_name": {"display_value": "Change Request",
                                                                 "value": "change_request"}}, _ctx())[0].kind \
        == WorkflowKind.CHANGE_RECORD


def test_rejects():
    with pytest.raises(Reject, match="sc_req_item record has no number"):
        SOURCE.normalize({"number": "", "sys_class_name": "Requested Item"}, _ctx())
    with pytest.raises(Reject, match="sysapproval_approver record has no sys_id"):
        SOURCE.normalize({"sysapproval": "RITM0010231", "approver": "Beth Anglin"}, _ctx())
    with pytest.raises(Reject, match="change_request record has no number"):
        SOURCE.normalize({"sys_id": "abc", "sys_class_name": "change_request"}, _ctx())
    with pytest.raises(Reject, match="start_date 'next week'"):
        SOURCE.normalize({"number": "CHG0000002", "start_date": "next week"}, _ctx())
    with pytest.raises(Reject, match="unknown time zone"):
        SOURCE.normalize({"number": "CHG0000002"}, _ctx(timezone="Mars/Olympus"))
    with pytest.raises(Reject, match="not a JSON object"):
        SOURCE.normalize([1], _ctx())
