"""Linking measured against the demo simulator's ground truth: a small simulated company, generated in a
temporary directory, ingested through the real parsers, resolved and linked."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from accessproof.identity import conflicts, orphans, ownerless_service_accounts
from accessproof.ingest import ingest_paths
from accessproof.linking.access import access_at
from accessproof.linking.link import link_all
from accessproof.store import open_store

simulate = pytest.importorskip("accessproof.demo.simulate")

SOURCES = {"okta": "okta:acme", "aws": "aws:111122223333", "github": "github:acme-medical"}


def ingest_demo(store, d: Path) -> None:
    """Every export of the simulated company, through the same ingest path as the CLI."""
    for kind, paths, opts, name in [
        ("csv", [d / "hr/workers.csv"], {"mapping": "hr_workers"}, None),
        ("csv", [d / "hr/events.csv"], {"mapping": "hr_events"}, None),
        ("servicenow", [d / "servicenow"], {}, None),
        ("csv", [d / "qms/exceptions.csv"], {"mapping": "qms_exceptions"}, None),
        ("csv", [d / "qms/training.csv"], {"mapping": "qms_training"}, None),
        ("csv", [d / "qms/suppliers.csv"], {"mapping": "qms_suppliers"}, None),
        ("csv", [d / "qms/changes.csv"], {"mapping": "qms_changes"}, None),
        ("okta", [d / "okta"], {}, SOURCES["okta"]),
        ("cloudtrail", [d / "cloudtrail"], {}, None),
        ("github", [d / "github"], {}, None),
    ]:
        s = ingest_paths(store, kind, paths, options=opts, source_name=name)
        assert s.quarantined == 0 and not s.file_errors, (kind, s.as_dict())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    simulate.simulate(people=60, months=6, seed=11, out=root / "data", noise_per_person_day=1.0)
    truth = json.loads((root / "data" / "ground_truth.json").read_text(encoding="utf-8"))
    store = open_store(root / "store")
    ingest_demo(store, root / "data")
    summary = link_all(store)
    yield store, truth, summary
    store.close()


def _failures(truth: dict, cls: str) -> list[dict]:
    return [f for f in truth["failures"] if f["class"] == cls]


def test_every_approval_execution_pair_is_linked_with_the_right_basis(demo):
    store, truth, _ = demo
    grants = {r["event_id"] for r in store.query_dicts(
        "SELECT event_id FROM access_events WHERE direction = 'grant'")}
    linked: dict[str, dict[str, str]] = {}
    for r in store.query_dicts("SELECT event_id, record_id, basis FROM links WHERE role = 'request'"):
        linked.setdefault(r["event_id"], {})[r["record_id"]] = r["basis"]
    checked = {"explicit": 0, "inferred": 0}
    for number, rows in truth["approval_execution_pairs"].items():
        for e in rows:
            if e.get("removal") or e["event_id"] not in grants:
                continue  # AssumeRole sessions and invitations are not grants
            want = "explicit" if e["carries_ticket"] else "inferred"
            got = linked.get(e["event_id"], {}).get(number)
            assert got == want, f"{number} → {e['vendor_action']} {e['event_id']}: {got!r}, expected {want}"
            checked[want] += 1
    assert checked["explicit"] > 20 and checked["inferred"] > 20


def test_change_records_link_their_service_accounts_and_tokens(demo):
    store, truth, _ = demo
    linked = {(r["event_id"], r["record_id"]) for r in store.query_dicts(
        "SELECT event_id, record_id FROM links WHERE role = 'request'")}
    grants = {r["event_id"] for r in store.query_dicts(
        "SELECT event_id FROM access_events WHERE direction = 'grant'")}
    n = 0
    for cid, rows in truth["change_execution_pairs"].items():
        for e in rows:
            if e["event_id"] in grants:
                assert (e["event_id"], cid) in linked, (cid, e)
                n += 1
    assert n > 10


def test_injected_unapproved_grants_stay_unlinked_and_nothing_else_is(demo):
    store, truth, _ = demo
    unlinked = {r["event_id"]: r for r in store.query_dicts("SELECT * FROM unlinked_grants")}
    justified = {r["event_id"] for r in store.query_dicts("SELECT event_id FROM links WHERE justified")}
    grants = {r["event_id"] for r in store.query_dicts(
        "SELECT event_id FROM access_events WHERE direction = 'grant'")}
    fs = _failures(truth, "provisioning_without_approval")
    assert fs
    for f in fs:
        grant_ids = [e for e in f["event_ids"] if e in grants]  # not the AssumeRole that opened the session
        assert grant_ids
        for eid in grant_ids:
            assert eid in unlinked and unlinked[eid]["reason_code"] == "no-approval-found"
            assert eid not in justified
    for cls, code in (("provisioning_after_rejection", "granted-after-rejection"),
                      ("provisioning_before_approval", "granted-before-approval"),
                      ("scope_beyond_approval", "scope-mismatch")):
        fs = _failures(truth, cls)
        assert fs
        for f in fs:
            grant_ids = [e for e in f["event_ids"] if e in unlinked or e in justified]
            assert grant_ids and all(unlinked[e]["reason_code"] == code for e in grant_ids), (cls, f)
    # every unlinked grant is an injected failure: the clean company has none
    injected = {e for f in truth["failures"] for e in f["event_ids"]}
    assert set(unlinked) <= injected


def test_removals_match_injected_failures(demo):
    store, truth, _ = demo
    rl = store.query_dicts("SELECT * FROM removal_links")
    bad = {(r["person_id"], r["system"]) for r in rl if r["status"] != "removed"}
    expected = set()
    for f in _failures(truth, "late_revocation") + _failures(truth, "missing_revocation"):
        expected.add((f["person_id"], SOURCES[f["system"]]))
        mine = {r["status"] for r in rl if r["person_id"] == f["person_id"] and r["system"] == SOURCES[f["system"]]
                and r["status"] != "removed"}
        if f["class"] == "late_revocation":
            assert mine == {"late"}, f
        elif f.get("still_held") == []:
            # the end-date removal never came, but the access went later with the person's offboarding:
            # a removal that late is reported as late (with its latency), not as missing
            assert mine and mine <= {"late", "missing"}, f
        else:
            assert mine == {"missing"}, f
    for f in _failures(truth, "exception_expired_access_remains"):
        expected.add((f["person_id"], SOURCES[f["system"]]))
        assert any(r["trigger_kind"] == "exception-expiry" and r["trigger_record_id"] == f["exception_id"]
                   and r["status"] == "missing" for r in rl), f
    for f in _failures(truth, "supplier_access_after_contract_end"):
        for system, held in f["still_held"].items():
            if held:
                expected.add((f["person_id"], SOURCES[system]))
                assert any(r["trigger_kind"] == "contract-end" and r["person_id"] == f["person_id"]
                           and r["system"] == SOURCES[system] and r["status"] == "missing" for r in rl), f
    assert bad == expected  # no false alarms
    late = [r for r in rl if r["status"] == "late"]
    assert late and all(r["latency_hours"] > 24 for r in late)


def _gt_key(system: str, ent: str) -> tuple:
    kind, _, rest = ent.partition(": ")
    if kind in ("Okta account", "AWS IAM user"):
        return system, "account", "*"
    if kind == "GitHub org membership":
        return system, "org", rest.lower()
    if kind == "GitHub fine-grained PAT":
        return system, "credential", "*"
    if kind == "GitHub repo":
        rest = rest.rsplit(" (", 1)[0]
    if kind == "GitHub team":
        rest = "acme-medical/" + rest
    typ = {"Okta group": "group", "Okta app": "app", "AWS group": "group", "AWS policy": "policy",
           "GitHub team": "team", "GitHub repo": "repo"}[kind]
    return system, typ, rest.lower()


def _my_key(r: dict) -> tuple:
    system = r["system"].split(":")[0]
    t = r["entitlement_type"]
    if t == "account" and system == "github":
        return system, "any", "*"  # the account seen in use: some access in the organisation
    if t == "account" or (t == "credential" and system == "aws"):
        return system, "account", "*"  # IAM users' console password and keys belong to the IAM user holding
    if t == "credential":
        return system, "credential", "*"
    return system, t, (r["entitlement_id"] if t == "policy" else r["entitlement"]).lower()


def test_point_in_time_access_matches_the_truth(demo):
    store, truth, _ = demo
    ae = {r["event_id"]: r for r in store.query_dicts(
        "SELECT event_id, entitlement_type, entitlement_id, entitlement_name FROM access_events")}

    def observable(system: str, h: dict) -> bool:
        """Held access the logs can show: granted in the period, the account itself (seen in use), or
        removed by an event naming the entitlement. Access held since before the logs and never touched
        leaves no trace in them."""
        k = _gt_key(system, h["entitlement"])
        if not h["pre_period"] or (k[1] == "account" and system in ("okta", "aws")):
            return True
        for e in h["removal_event_ids"]:
            a = ae.get(e)
            if a and a["entitlement_type"] == k[1]:
                return True
        return False

    rng = random.Random(3)
    start = datetime.fromisoformat(truth["generator"]["start"] + "T00:00:00+00:00")
    days = (datetime.fromisoformat(truth["generator"]["end"] + "T00:00:00+00:00") - start).days
    people = sorted(truth["access_truth"])
    checked = 0
    for pid in rng.sample(people, 30):
        for _ in range(4):
            at = start + timedelta(seconds=rng.randrange(days * 86400))
            held = []
            for system, hs in truth["access_truth"][pid].items():
                for h in hs:
                    g = datetime.fromisoformat(h["granted"])
                    r = datetime.fromisoformat(h["removed"]) if h["removed"] else None
                    if g <= at and (r is None or at < r):
                        held.append((_gt_key(system, h["entitlement"]), observable(system, h)))
            # An Okta API token acts with the rights of the admin who created it, so its interval belongs to
            # that admin's account; the simulator books it to the token. Left out of the comparison.
            mine = {_my_key(r) for r in access_at(store, at, pid)} - {("okta", "credential", "*")}
            assert {k for k, o in held if o} <= mine, (pid, at)
            allowed = {k for k, _ in held} | {(k[0], "any", "*") for k, _ in held}
            assert mine <= allowed, (pid, at)
            checked += 1
    assert checked == 120


def test_orphans_ownerless_and_conflicts_are_listed_with_reasons(demo):
    store, truth, _ = demo
    unresolved = {(r["system"], r["name"]) for r in orphans(store) if r["orphan_kind"] == "unresolved"}
    expected = {(x["source"], x["account"]) for x in truth["expected_orphan_accounts"]}
    assert unresolved == expected
    assert all(r["reason"] for r in orphans(store))
    left = {r["person_id"] for r in orphans(store) if r["orphan_kind"] == "person-left"}
    still = {f["person_id"] for f in _failures(truth, "missing_revocation") if f["trigger"] == "termination"}
    assert still <= left
    ownerless = {(r["system"], r["account_id"]): r for r in ownerless_service_accounts(store)}
    for x in truth["ownerless_service_accounts"]:
        assert ownerless[(x["source"], x["account"])]["status"] == "ownerless"
    for x in truth["service_accounts"]:
        if x["owner"]:
            assert (x["source"], x["account"]) not in ownerless
    # the simulated HR data has no ambiguous usernames or emails
    assert [c for c in conflicts(store) if c["status"] == "unresolved"] == []
    # every person's accounts map back to them
    rows = {(r["system"], r["account_id"]): r for r in store.query_dicts("SELECT * FROM accounts")}
    for pid, p in truth["people"].items():
        for system, key in (("okta", "id"), ("aws", "userName"), ("github", "login")):
            acc = p["accounts"].get(system)
            row = rows.get((SOURCES[system], acc[key])) if acc else None
            if row is not None:
                assert row["person_id"] == pid, (pid, system, row["basis"])


def test_timeline_of_a_joiner(demo):
    from accessproof.linking.timeline import timeline

    store, truth, _ = demo
    joiner = next(pid for pid, p in sorted(truth["people"].items())
                  if p["hired"] >= truth["generator"]["start"] and not p["terminated"] and "okta" in p["systems"])
    steps = timeline(store, truth["people"][joiner]["email"])
    stages = [s["stage"] for s in steps]
    for stage in ("hr", "request", "approval", "provisioning", "use"):
        assert stage in stages, (joiner, stage)
    assert stages.index("request") < stages.index("provisioning") < stages.index("use")
    grants = [s for s in steps if s["stage"] == "provisioning"]
    assert all(s["link_basis"] in ("explicit", "inferred") for s in grants), grants
    numbers = {x["record_id"] for s in grants for x in s["links"]}
    assert numbers <= {n for n, r in truth["requests"].items() if r["subject"] == joiner}
