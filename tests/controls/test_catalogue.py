"""Every control of the catalogue, on a small organisation written in vendor formats (tests/controls/org.py):
for each, one resource that must pass and one that must fail, with the reason and evidence ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accessproof.controls import assess, load_catalogue
from accessproof.store import open_store
from tests.controls.org import ANNA, BEN, POLICY, build_org, build_reviews, results

PARAMS = {"dormant_days": 10, "max_age_days": 20, "review_interval_days": 20}


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls-org")
    o = build_org(root / "org")
    build_reviews(o)
    store = open_store(root / "store")
    o.ingest(store)
    a = assess(store, policy=POLICY, params=PARAMS)
    assert not a.errors, a.errors
    yield store, a
    store.close()


@pytest.fixture(scope="module")
def org_without_reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls-org-plain")
    store = open_store(root / "store")
    build_org(root / "org").ingest(store)
    a = assess(store, ["recert*"], policy=POLICY, params=PARAMS)
    yield store, a
    store.close()


Row = dict
Pred = Callable[[Row], bool]


def ent(person: str, name: str) -> Pred:
    return lambda r: r.get("person_id") == person and r.get("entitlement") == name


def rec(record_id: str) -> Pred:
    return lambda r: r.get("record_id") == record_id


def acct(name: str) -> Pred:
    return lambda r: name in (r.get("account_name"), r.get("account_id"))


def trig(kind: str, person: str, system: str) -> Pred:
    return lambda r: (r.get("trigger_kind"), r.get("person_id"), r.get("system", "").split(":")[0]) == (
        kind, person, system)


#: control id -> (a resource that must alarm, a resource that must be ok)
CASES: dict[str, tuple[Pred, Pred]] = {
    "access_without_approval": (ent("W-1", "okta-admins"), ent("W-1", "vpn-users")),
    "access_before_approval": (ent("W-1", "acme/release-managers"), ent("W-2", "acme/firmware")),
    "access_after_rejection": (ent("W-2", "qms-approvers"), ent("W-1", "qms-approvers")),
    "scope_beyond_approval": (ent("W-2", "erp-payment-approvers"), ent("W-2", "erp-purchasing")),
    "requester_is_approver": (rec("RITM0010009"), rec("RITM0010001")),
    "approver_is_executor": (rec("RITM0010011"), rec("RITM0010001")),
    "approver_training_expired": (rec("RITM0010009"), rec("RITM0010001")),
    "approver_not_authorised": (rec("RITM0010010"), rec("RITM0010011")),
    "revocation_late": (trig("termination", "W-3", "okta"), trig("termination", "W-5", "okta")),
    "revocation_missing": (trig("termination", "W-3", "github"), trig("termination", "W-5", "aws")),
    "time_bound_access_not_removed": (lambda r: r["record_id"] == "RITM0010003",
                                      lambda r: r["record_id"] == "RITM0010013"),
    "exception_expired_access_remains": (lambda r: r["exception_id"] == "EXC-1",
                                         lambda r: r["exception_id"] == "EXC-2"),
    "exception_incomplete": (lambda r: r["exception_id"] == "EXC-4", lambda r: r["exception_id"] == "EXC-1"),
    "supplier_access_after_contract_end": (lambda r: r["person_id"] == "S-1", lambda r: r["person_id"] == "S-4"),
    "supplier_not_qualified": (lambda r: r["person_id"] == "S-3", lambda r: r["person_id"] == "S-2"),
    "shared_account": (acct("vendor-shared@acme.com"), lambda r: r.get("person_id") == "W-1"),
    "orphan_account": (acct("ghost@acme.com"), lambda r: r.get("person_id") == "W-1"
                       and r["system"].startswith("okta")),
    "ownerless_service_account": (acct("svc-reports"), acct("svc-backup")),
    "dormant_account": (lambda r: r.get("person_id") == "W-6",
                        lambda r: r.get("person_id") == "W-1" and r["system"].startswith("okta")),
    "credential_not_rotated": (lambda r: r.get("entitlement_id") == "AKIAANNA000000000001",
                               lambda r: r.get("entitlement_id") == "AKIAANNA000000000002"),
    "credential_not_revoked_at_offboarding": (lambda r: r.get("person_id") == "W-3",
                                              lambda r: r.get("person_id") == "W-5"),
    "privileged_access_outside_emergency": (ent("W-1", "okta-admins"), ent("A-1", "okta-admins")),
    "access_beyond_max_duration": (ent("W-1", "vpn-admins"), ent("W-2", "vpn-admins")),
    "sod_conflict": (lambda r: r["person_id"] == "W-2", lambda r: r["person_id"] == "W-1"),
    "access_conditions_not_met": (ent("W-2", "qms-authors"), ent("W-1", "qms-authors")),
    "recert_revoke_not_enforced": (lambda r: r.get("record_id") == "REV-3", lambda r: r.get("record_id") == "REV-2"),
    "recertification_overdue": (ent("W-2", "qms-authors"), ent("W-1", "vpn-users")),
}


def test_every_builtin_control_has_a_case():
    assert set(CASES) == set(load_catalogue())


@pytest.mark.parametrize("control_id", sorted(CASES))
def test_control_passes_and_fails(org, control_id):
    store, a = org
    rows = results(store, a, control_id)
    failing, passing = CASES[control_id]
    bad = [r for r in rows if failing(r)]
    good = [r for r in rows if passing(r)]
    assert bad, f"{control_id}: no row for the failing case"
    assert good, f"{control_id}: no row for the passing case"
    assert all(r["status"] == "alarm" for r in bad), [(r["status"], r["reason"]) for r in bad]
    assert all(r["status"] == "ok" for r in good), [(r["status"], r["reason"]) for r in good]
    for r in bad + good:
        assert r["reason"] and r["resource"]
    # every alarm names the records that prove it
    assert all(r["evidence_ids"] for r in bad), [r["resource"] for r in bad if not r["evidence_ids"]]


def test_results_are_one_row_per_resource(org):
    _, a = org
    for run in a.runs:
        assert run["duplicates"] == 0, run["control_id"]
        assert run["population"] == run["ok"] + run["alarm"] + run["skip"] + run["info"] + run["error"]


def test_recertification_controls_skip_without_review_data(org_without_reviews):
    store, a = org_without_reviews
    for cid in ("recertification_overdue", "recert_revoke_not_enforced"):
        rows = results(store, a, cid)
        assert [r["status"] for r in rows] == ["skip"]
        assert "no recertification" in rows[0]["reason"]


def test_reasons_name_the_facts(org):
    store, a = org
    late = next(r for r in results(store, a, "revocation_late") if trig("termination", "W-3", "okta")(r))
    assert "33.0 h" in late["reason"] and "HRE-000003" in late["reason"]
    assert late["max_latency_hours"] == 33.0 and late["sla_hours"] == 24.0
    train = next(r for r in results(store, a, "approver_training_expired") if rec("RITM0010009")(r))
    assert "TRN-1" in train["reason"] and "TRN-1" in train["evidence_ids"]
    scope = next(r for r in results(store, a, "scope_beyond_approval") if r["status"] == "alarm")
    assert "RITM0010007" in scope["reason"] and "erp-purchasing" in scope["reason"]
    sod = next(r for r in results(store, a, "sod_conflict") if r["status"] == "alarm")
    assert sod["entitlement"] == "erp-payment-approvers"  # the grant that created the combination
    missing = next(r for r in results(store, a, "revocation_missing") if trig("termination", "W-3", "github")(r))
    assert "acme/firmware" in missing["reason"]


def test_parameters_change_the_outcome(tmp_path):
    store = open_store(tmp_path / "store")
    build_org(tmp_path / "org").ingest(store)
    strict = assess(store, ["revocation_late"], policy=POLICY)
    lenient = assess(store, ["revocation_late"], policy=POLICY, params={"revocation_sla_hours": 48})
    assert strict.runs[0]["alarm"] == 2 and lenient.runs[0]["alarm"] == 1  # Eve's Okta: 33 h
    per_control = assess(store, ["revocation_late"], policy=POLICY,
                         params={"revocation_late.revocation_sla_hours": 200, "revocation_sla_hours": 1})
    assert per_control.runs[0]["alarm"] == 0
    assert '"revocation_sla_hours": 200' in per_control.runs[0]["parameters_json"]
    store.close()


def test_anna_and_ben_are_who_the_cases_say(org):
    store, _ = org
    ids = {r["email"]: r["person_id"] for r in store.query_dicts("SELECT person_id, email FROM persons_current")}
    assert ids[ANNA] == "W-1" and ids[BEN] == "W-2"


def test_exception_without_expiry_is_a_finding(tmp_path):
    """The bundled QMS mapping rejects an exception without expiry; a site whose export allows it reads it
    with its own mapping, and the control reports it."""
    from accessproof.ingest import ingest_paths
    from tests.controls.org import EXC_COLUMNS
    from tests.linking.vendor import write_csv

    store = open_store(tmp_path / "s")
    mapping = {"description": "exceptions, expiry optional", "system": "qms:cq", "record": "workflow",
               "kind": "exception", "format": "csv", "timezone": "Europe/Berlin", "date_format": "%d.%m.%Y",
               "id": "Exception ID",
               "fields": {"subject": "Subject", "scope": "Entitlement", "owner": "Owner",
                          "compensating_control": "Compensating Control",
                          "approvers": {"column": "Approved By", "split": ";"}, "decided": "Approved On",
                          "effective": "Valid From", "expires": "Expiry Date",
                          "status": {"column": "Status", "lower": True}},
               "required": ["subject", "scope"]}
    row = {"Exception ID": "EXC-9", "Subject": ANNA, "System": "Okta", "Entitlement": "Okta group: vpn-users",
           "Justification": "x", "Compensating Control": "weekly review", "Owner": "quinn.quality@acme.com",
           "Approved By": "quinn.quality@acme.com", "Approved On": "01.03.2025", "Valid From": "01.03.2025",
           "Expiry Date": "", "Status": "Approved"}
    s = ingest_paths(store, "csv", [write_csv(tmp_path / "exc.csv", EXC_COLUMNS, [row])], options={"mapping": mapping})
    assert s.accepted == 1 and s.quarantined == 0
    a = assess(store, ["exception_incomplete"], policy=POLICY)
    (r,) = results(store, a, "exception_incomplete")
    assert r["status"] == "alarm" and "an expiry" in r["reason"] and "owner" not in r["reason"]
    store.close()
