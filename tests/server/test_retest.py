"""Event-driven testing on the demo company: what a delivery can change is re-tested for its subjects only,
finding changes go out as CloudEvents in the transaction that made them, and an unapproved grant posted to
the webhook is an open finding and an outgoing CloudEvent within 60 s."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import pytest

from accessproof.controls.findings import latest_runs
from accessproof.ingest import Ingestor
from accessproof.server import outbox as O
from accessproof.server import retest as R
from accessproof.server.cloudevents import parse_http, verify_signature
from accessproof.sources.base import Chunk
from accessproof.store import open_store
from tests.server.conftest import okta_grant

CONTROL = "access_without_approval"


def ingest_okta(store, events: list[dict]):
    """Deliver Okta events through the one ingest path, as a webhook does."""
    ing = Ingestor(store, "okta", source_name="okta:acme")
    ing.ingest_chunks([Chunk(json.dumps(e).encode(), f"hook#{i}", obj=e) for i, e in enumerate(events)], "hook")
    return ing.finish(time.perf_counter())


def findings_by_id(store) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in store.query(
        "SELECT finding_id, state, last_run_id, resolved_at, person_id, exception_id FROM findings")}


def test_an_unapproved_grant_reopens_nothing_else_and_is_announced_in_its_transaction(demo_store, okta_events,
                                                                                      receiver):
    store = demo_store
    O.add_endpoint(store, O.Endpoint("soc", receiver.url, "structured", secret="k", types=["finding.*"]))
    before = findings_by_id(store)
    full_runs = {r["control_id"]: r["run_id"] for r in latest_runs(store)}
    grant = okta_grant(okta_events, group="aws-prod-admins")
    summary = ingest_okta(store, [grant])
    assert summary.accepted == 1
    changes = R.after_ingest(store, summary, [])
    opened = [c for c in changes if c.change == "opened"]
    [c] = [c for c in opened if c.control_id == CONTROL]
    assert c.resource == f"event:okta:acme:{grant['uuid']}" and c.person_id
    assert "no approved request" in c.reason
    after = findings_by_id(store)
    # every finding that is not about this person is exactly as it was
    others = {k: v for k, v in before.items() if v[3] != c.person_id}
    assert {k: after[k] for k in others} == others
    assert after[c.finding_id][0] == "open"
    # the re-test runs are kept apart from the full runs that reports show
    assert {r["control_id"]: r["run_id"] for r in latest_runs(store)} == full_runs
    statuses = dict(store.query("SELECT status, count(*) FROM control_runs WHERE assessment_id LIKE 'retest-%' "
                                "GROUP BY status"))
    assert set(statuses) == {"retest"} and statuses["retest"] >= len(R.AFFECTS["grant"]) - 5
    # the runs are sealed like any other
    run_ids = [r[0] for r in store.query("SELECT run_id FROM control_runs WHERE assessment_id LIKE 'retest-%'")]
    sealed = store.query("SELECT count(*) FROM ledger_entries WHERE record_type = 'control_result' AND record_id IN "
                         f"({', '.join('?' * len(run_ids))})", run_ids)[0][0]
    assert sealed == len(run_ids)
    # and announced
    assert O.deliver_due(store).delivered == len(opened)
    req = receiver.wait_for(lambda q: json.loads(q.body)["subject"] == c.finding_id, 5)
    assert req is not None and verify_signature("k", req.headers["accessproof-signature"], req.body)
    got = parse_http(req.headers, req.body)
    assert got["type"] == "io.accessproof.finding.opened"
    assert (got["data"]["control_id"], got["data"]["state"], got["data"]["previous_state"]) == (CONTROL, "open", None)
    assert got["data"]["trigger"].startswith("retest:")
    assert R.pending(store) == 0
    # delivering the same grant again is a duplicate: nothing to re-test, nothing announced
    again = ingest_okta(store, [grant])
    assert again.duplicate == 1 and R.after_ingest(store, again, []) == []


def test_a_late_approval_resolves_the_finding_and_is_announced(demo_store, okta_events, demo_built):
    store = demo_store
    grant = okta_grant(okta_events, group="qms-auditors", justification="RITM0099001")
    R.after_ingest(store, ingest_okta(store, [grant]), [])
    fid = store.query("SELECT finding_id, state, reason FROM findings WHERE control_id = ? AND resource = ?",
                      [CONTROL, f"event:okta:acme:{grant['uuid']}"])
    assert fid and fid[0][1] == "open" and "RITM0099001" in fid[0][2]  # cites a request nobody has seen
    # the ServiceNow request it cited arrives late: approved the day before the grant
    granted = datetime.fromisoformat(grant["published"].replace("Z", "+00:00"))
    fmt = "%Y-%m-%d %H:%M:%S"
    person = grant["target"][0]["alternateId"]
    item = {"number": "RITM0099001", "sys_id": uuid.uuid4().hex, "cat_item": "Okta group: qms-auditors",
            "short_description": "Access request: Okta group: qms-auditors", "requested_for": person,
            "opened_by": person, "opened_at": (granted - timedelta(days=2)).strftime(fmt), "approval": "approved",
            "approval_set": (granted - timedelta(days=1)).strftime(fmt), "state": "Closed Complete",
            "stage": "Completed", "sys_updated_on": granted.strftime(fmt),
            "u_start_date": (granted - timedelta(days=2)).strftime("%Y-%m-%d"), "u_end_date": "",
            "u_environment": "production", "u_business_unit": "Quality"}
    approvals = json.loads((demo_built[1] / "servicenow" / "sysapproval_approver.json").read_text())["result"]
    template = next(a for a in approvals if a["state"] == "approved")
    approval = {**template, "sys_id": uuid.uuid4().hex, "sysapproval": "RITM0099001",
                "sys_created_on": (granted - timedelta(days=2)).strftime(fmt),
                "sys_updated_on": (granted - timedelta(days=1)).strftime(fmt)}
    for rows in ([item], [approval]):
        ing = Ingestor(store, "servicenow", source_name="servicenow:acme")
        ing.ingest_chunks([Chunk(json.dumps(r).encode(), f"hook#{i}", obj=r) for i, r in enumerate(rows)], "hook")
        summary = ing.finish(time.perf_counter())
        assert summary.accepted == 1, summary.as_dict()
        changes = R.after_ingest(store, summary, [])
    state = store.query("SELECT state FROM findings WHERE finding_id = ?", [fid[0][0]])[0][0]
    assert state == "resolved"
    resolved = O.list_events(store, type_="finding.resolved")
    assert [e["subject"] for e in resolved if e["data"]["control_id"] == CONTROL] == [fid[0][0]]
    assert changes is not None


def test_a_failure_while_announcing_rolls_the_finding_back_too(demo_store, okta_events, monkeypatch):
    store = demo_store
    before = findings_by_id(store)

    def broken(*args, **kw):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(R, "emit", broken)
    summary = ingest_okta(store, [okta_grant(okta_events, group="aws-prod-admins")])
    assert R.after_ingest(store, summary, []) == []
    assert findings_by_id(store) == before  # no finding without its event
    assert store.query("SELECT count(*) FROM outbox")[0][0] == 0
    errors = store.query("SELECT count(*) FROM control_runs WHERE assessment_id LIKE 'retest-%' AND status = 'error' "
                         "AND error_message LIKE '%outbox unavailable%'")[0][0]
    assert errors > 0  # the failed runs are recorded, with the reason


def test_retest_subject_by_email_and_bad_subjects(demo_store):
    store = demo_store
    person = store.query("SELECT person_id, email FROM persons_current WHERE email IS NOT NULL ORDER BY person_id "
                         "LIMIT 1")[0]
    before = findings_by_id(store)
    changes = R.retest_subject(store, person[1].upper(), "manual", controls=[CONTROL, "sod_conflict"])
    assert changes == []  # nothing new happened to them: nothing opens or closes
    assert findings_by_id(store).keys() == before.keys()
    runs = store.query("SELECT control_id, parameters_json FROM control_runs WHERE status = 'retest'")
    assert sorted(r[0] for r in runs) == [CONTROL, "sod_conflict"]
    with pytest.raises(ValueError, match="names no person"):
        R.retest_subject(store, "nobody@nowhere.example", "manual")
    with pytest.raises(ValueError, match="no control named"):
        R.retest_subject(store, person[1], "manual", controls=["no_such_control"])


def test_an_unapproved_grant_posted_to_the_webhook_is_an_open_finding_and_a_cloudevent_within_60s(
        demo_dir, okta_events, receiver):
    from fastapi.testclient import TestClient

    from accessproof.api.app import create_app
    from accessproof.api.settings import ServerSettings

    s = open_store(demo_dir)
    O.add_endpoint(s, O.Endpoint("soc", receiver.url, "binary", secret="k", types=["finding.*"]))
    s.close()
    grant = okta_grant(okta_events, group="aws-prod-admins")
    settings = ServerSettings.from_dict({"okta_hook_secret": "okta-secret", "scheduler": True, "retest": True,
                                         "dashboard": False})

    def announced(q) -> bool:
        return (q.headers.get("ce-type") == "io.accessproof.finding.opened"
                and str(json.loads(q.body).get("resource")).endswith(f":{grant['uuid']}"))

    with TestClient(create_app(str(demo_dir), settings=settings)) as client:
        t0 = time.monotonic()
        r = client.post("/hooks/okta", headers={"Authorization": "okta-secret"},
                        json={"eventType": "com.okta.event_hook", "eventId": uuid.uuid4().hex,
                              "data": {"events": [grant]}})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        hit = receiver.wait_for(announced, timeout=120)
    assert hit is not None, "no finding.opened CloudEvent arrived"
    elapsed = hit.at - t0
    print(f"\nwebhook POST → finding.opened CloudEvent received: {elapsed:.2f} s")
    assert elapsed < 60
    assert verify_signature("k", hit.headers["accessproof-signature"], hit.body)
    resource = json.loads(hit.body)["resource"]
    s = open_store(demo_dir, read_only=True)
    try:
        state = s.query("SELECT state, person_id FROM findings WHERE control_id = ? AND resource = ?",
                        [CONTROL, resource])
    finally:
        s.close()
    assert state and state[0][0] == "open" and state[0][1]
