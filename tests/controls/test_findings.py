"""Findings across runs: stable ids, first/last seen, resolution, reopening; and governance exceptions, which
suppress exactly their scope and only until they expire."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import UTC, datetime

import pytest
import yaml

from accessproof.controls import assess, list_findings
from accessproof.store import open_store
from tests.controls.org import ANNA, BEN, POLICY, ControlOrg, build_org, person
from tests.linking.vendor import okta

LIFECYCLE_SQL = """
  SELECT resource, status, 'state of ' || resource AS reason, [resource || '-evidence'] AS evidence_ids,
         person AS person_id
  FROM lifecycle_fixture
"""


def _lifecycle_control(root):
    d = root / "fixture_control"
    d.mkdir(parents=True)
    (d / "control.yaml").write_text(yaml.safe_dump({
        "id": "fixture_control", "title": "t", "requirement": "r", "owner": "o", "severity": "medium",
        "stage": "use", "layer": "enforcement", "frequency": "daily", "retention_class": "control_results",
        "evidence_sources": ["test"], "frameworks": {"soc2": ["CC6.1"]}}))
    (d / "query.sql").write_text(textwrap.dedent(LIFECYCLE_SQL))
    return root


def _rows(store, rows):
    store.execute("CREATE OR REPLACE TABLE lifecycle_fixture (resource VARCHAR, status VARCHAR, person VARCHAR)")
    for r in rows:
        store.execute("INSERT INTO lifecycle_fixture VALUES (?, ?, ?)", list(r))


def test_findings_open_refresh_resolve_and_reopen(tmp_path):
    store = open_store(tmp_path / "s")
    ctl = _lifecycle_control(tmp_path / "ctl")

    def run():
        a = assess(store, ["fixture_control"], controls_dir=ctl)
        assert a.runs[0]["status"] == "completed", a.runs[0]
        return {f["resource"]: f for f in list_findings(store, control="fixture_control")}

    _rows(store, [("a", "alarm", "P1"), ("b", "alarm", "P2"), ("c", "ok", "P3")])
    first = run()
    assert set(first) == {"a", "b"} and {f["state"] for f in first.values()} == {"open"}
    fid = hashlib.sha256(b"fixture_control|a").hexdigest()[:32]
    assert first["a"]["finding_id"] == fid and first["a"]["evidence_ids"] == ["a-evidence"]
    assert first["a"]["person_id"] == "P1" and first["a"]["reason"] == "state of a"

    # b fixed, c now alarming, a still alarming; skip keeps a's state untouched later
    _rows(store, [("a", "alarm", "P1"), ("b", "ok", "P2"), ("c", "alarm", "P3")])
    second = run()
    assert second["a"]["state"] == "open" and second["a"]["first_seen"] == first["a"]["first_seen"]
    assert second["a"]["last_seen"] > first["a"]["last_seen"]
    assert second["b"]["state"] == "resolved" and second["b"]["resolved_at"] is not None
    assert second["c"]["state"] == "open"

    # b alarms again: reopened, same id, first_seen kept; a cannot be evaluated (skip): stays open;
    # c disappears from the population: resolved
    _rows(store, [("a", "skip", "P1"), ("b", "alarm", "P2")])
    third = run()
    assert third["b"]["state"] == "open" and third["b"]["reopened"] == 1
    assert third["b"]["finding_id"] == first["b"]["finding_id"] and third["b"]["first_seen"] == first["b"]["first_seen"]
    assert third["a"]["state"] == "open" and third["c"]["state"] == "resolved"
    assert store.query("SELECT count(*) FROM findings")[0][0] == 3
    assert store.query("SELECT count(*) FROM control_runs WHERE control_id = 'fixture_control'")[0][0] == 3
    store.close()


# ---------------------------------------------------------------- exceptions

def exception_org(root) -> ControlOrg:
    """Anna and Ben each get qms-authors without GxP training (access_conditions_not_met alarms), Anna also
    complaint-handling. EXC-10 excepts Anna's qms-authors until 30 April; EXC-11 (Ben, qms-authors) expired on
    15 March; EXC-12 (Ben, qms-authors) is in force but was never approved (status Rejected)."""
    o = ControlOrg(root)
    o.workers += [person("M-1", "Maria Manager", "maria.manager@acme.com", title="Head of IT"),
                  person("W-1", "Anna Schmidt", ANNA, "aschmidt", manager="M-1"),
                  person("W-2", "Ben Ortiz", BEN, "bortiz-gh", manager="M-1")]
    for who, group in ((ANNA, "qms-authors"), (BEN, "qms-authors"), (ANNA, "complaint-handling")):
        o.okta.append(okta("2025-03-02T09:00:00", "group.user_membership.add", target_login=who, group=group))
    o.exception("EXC-10", ANNA, "Okta group: qms-authors", "01.03.2025", "30.04.2025")
    o.exception("EXC-11", BEN, "Okta group: qms-authors", "01.03.2025", "15.03.2025")
    o.exception("EXC-12", BEN, "Okta group: qms-authors", "16.03.2025", "30.04.2025", status="Rejected")
    o.okta.append(okta("2025-03-31T08:00:00", "user.session.start", actor=ANNA))
    return o


@pytest.fixture
def exc_store(tmp_path):
    store = open_store(tmp_path / "s")
    exception_org(tmp_path / "org").ingest(store)
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent("""\
      entitlements:
        - {system: okta, type: group, name: qms-authors, conditions: {training: ["SOP-QA-001 GxP Fundamentals"]}}
        - {system: okta, type: group, name: complaint-handling,
           conditions: {training: ["SOP-QA-001 GxP Fundamentals"]}}
    """))
    yield store, policy
    store.close()


def _by_person_ent(store):
    out = {}
    for f in list_findings(store, control="access_conditions_not_met"):
        out[(f["person_id"], f["entitlement"])] = f
    return out


def test_a_valid_exception_suppresses_exactly_its_scope(exc_store):
    store, policy = exc_store
    a = assess(store, ["access_conditions_not_met"], policy=policy)
    assert a.runs[0]["alarm"] == 3
    f = _by_person_ent(store)
    assert f[("W-1", "qms-authors")]["state"] == "excepted"
    assert f[("W-1", "qms-authors")]["exception_id"] == "EXC-10"
    assert f[("W-1", "qms-authors")]["exception_expires"] is not None
    # same person, other entitlement: not covered
    assert f[("W-1", "complaint-handling")]["state"] == "open" and f[("W-1", "complaint-handling")]["exception_id"] is None
    # same entitlement, other person: covered only by an expired and a rejected exception
    assert f[("W-2", "qms-authors")]["state"] == "open" and f[("W-2", "qms-authors")]["exception_id"] is None


def test_an_expired_exception_does_not_suppress_and_the_finding_reopens(exc_store):
    store, policy = exc_store
    assess(store, ["access_conditions_not_met"], policy=policy)
    assert _by_person_ent(store)[("W-1", "qms-authors")]["state"] == "excepted"
    later = datetime(2025, 5, 2, tzinfo=UTC)  # EXC-10 expired on 30 April
    assess(store, ["access_conditions_not_met"], policy=policy, as_of=later)
    f = _by_person_ent(store)[("W-1", "qms-authors")]
    assert f["state"] == "open" and f["exception_id"] is None
    # before EXC-10 took effect it excepts nothing either
    assess(store, ["access_conditions_not_met"], policy=policy, as_of=datetime(2025, 2, 27, tzinfo=UTC))
    assert all(x["state"] != "excepted" for x in list_findings(store, control="access_conditions_not_met"))


def test_controls_about_exceptions_are_never_excepted(tmp_path):
    store = open_store(tmp_path / "s")
    build_org(tmp_path / "org").ingest(store)
    assess(store, ["exception_expired_access_remains", "exception_incomplete", "scope_beyond_approval",
                   "sod_conflict"], policy=POLICY)
    by = {(f["control_id"], f["person_id"]): f for f in list_findings(store)}
    # EXC-3 (Ben, erp-payment-approvers, in force) excepts the findings on that entitlement
    assert by[("sod_conflict", "W-2")]["state"] == "excepted" and by[("sod_conflict", "W-2")]["exception_id"] == "EXC-3"
    assert by[("scope_beyond_approval", "W-2")]["state"] == "excepted"
    assert by[("exception_expired_access_remains", "W-2")]["state"] == "open"
    assert all(f["state"] == "open" for f in list_findings(store, control="exception_incomplete"))
    store.close()


def test_findings_filters(tmp_path):
    store = open_store(tmp_path / "s")
    build_org(tmp_path / "org").ingest(store)
    assess(store, policy=POLICY)
    everything = list_findings(store)
    assert everything and all(f["state"] in ("open", "excepted") for f in everything)
    sod = list_findings(store, framework="nist_800_53_r5:AC-5")
    assert sod and {f["control_id"] for f in sod} <= {"requester_is_approver", "approver_is_executor", "sod_conflict"}
    assert list_findings(store, person="W-3") and all(f["person_id"] == "W-3" for f in list_findings(store, person="W-3"))
    assert all(f["system"].startswith("okta") for f in list_findings(store, system="okta"))
    assert len(list_findings(store, limit=3)) == 3
    store.close()
