"""Walkthroughs on the demo company: clean chains pass; each injected failure kind fails naming its link.

Failures are built by mutating clean chains in a copy of the demo store (approval removed, approver =
requester, entitlement outside scope, provisioning before approval, removal late and missing, exception
access after expiry and before its window, raw evidence deleted, payload bytes changed), then walked both
before and after linking is re-run. The demo's own injected failures (ground_truth.json) are walked too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from accessproof.audit.walkthrough import (
    RECORD_TYPE,
    REGISTRY,
    SCENARIOS,
    WalkthroughError,
    list_walkthroughs,
    open_context,
    pick,
    run_walkthrough,
)
from accessproof.audit.walkthrough_commands import build_app
from accessproof.ledger import open_ledger, verify_ledger
from accessproof.linking.link import link_all
from accessproof.store import open_store

runner = CliRunner()

#: ground-truth failure class -> the walkthrough check that must catch it
CAUGHT_BY = {
    "provisioning_after_rejection": "approval",
    "provisioning_before_approval": "order",
    "scope_beyond_approval": "scope",
    "requester_is_approver": "approver",
    "approver_is_executor": "approver",
    "approver_training_expired": "approver",
    "late_revocation": "removal",
    "missing_revocation": "removal",
    "supplier_access_after_contract_end": "removal",
    "exception_expired_access_remains": "removal",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Any]:
    """The demo company (default size: its ground truth has failures in three scenarios), linked; a copy of its
    store for mutations and one to copy again."""
    from accessproof.demo.run import build_demo_store

    root = tmp_path_factory.mktemp("walkthrough-demo")
    built = build_demo_store(root)
    s = open_store(built.store_dir)
    try:
        link_all(s)
    finally:
        s.close()
    mutant, pristine = root / "mutant-store", root / "pristine-store"  # copied while no connection is open
    shutil.copytree(built.store_dir, mutant)
    shutil.copytree(built.store_dir, pristine)
    truth = json.loads((built.data / "ground_truth.json").read_text(encoding="utf-8"))
    return {"store": built.store_dir, "mutant": mutant, "pristine": pristine, "truth": truth}


@pytest.fixture(scope="module")
def store(demo):
    s = open_store(demo["store"])
    yield s
    s.close()


def _walk(store, scenario: str, key: str, **kw: Any):
    result = run_walkthrough(store, scenarios=[scenario], item=key, seal=False, **kw)
    assert [i.key for i in result.items] == [key]
    return result.items[0]


def _failed(item) -> dict[str, Any]:
    return {c.check: c for c in item.checks if not c.passed}


def _implicated(truth: dict[str, Any]) -> set[str]:
    """Requests, people and exceptions a ground-truth failure is about (not the users of a shared account)."""
    keys: set[str] = set()
    for f in truth["failures"]:
        keys.update(k for k in [f.get("person_id"), f.get("ritm"), f.get("trigger_ref"), f.get("exception_id")] if k)
    return keys


@pytest.fixture(scope="module")
def walked(store) -> dict[str, dict[str, Any]]:
    """Every item of every scenario's population in the demo, walked and proven (scenario -> key -> item)."""
    ctx = open_context(store)
    try:
        items = {s: {k: REGISTRY[s].walk(ctx, k) for k in REGISTRY[s].population(ctx)} for s in SCENARIOS}
        ctx.prove([i for by_key in items.values() for i in by_key.values()])
    finally:
        ctx.close()
    return items


def _clean(walked, truth: dict[str, Any], scenario: str, n: int = 1,
           want: Callable[[Any], bool] = lambda item: True) -> list[Any]:
    """``n`` walked items of a scenario that no ground-truth failure touches (and ``want`` accepts)."""
    bad = _implicated(truth)
    out = [i for k, i in sorted(walked[scenario].items()) if k not in bad and i.person_id not in bad and want(i)]
    return out[:n]


def _steps(item, role: str) -> list[Any]:
    return [s for s in item.steps if s.role == role]


# ---------------------------------------------------------------- clean chains


def test_every_clean_chain_passes(walked, demo):
    """Precision on the demo: each population item no ground-truth failure touches passes every check."""
    for scenario in SCENARIOS:
        clean = _clean(walked, demo["truth"], scenario, n=1000)
        assert clean, scenario
        for item in clean:
            assert item.passed, (scenario, item.key, {c.check: c.reason for c in item.checks if not c.passed})
            names = {c.check for c in item.checks}
            assert {"evidence", "ledger"} <= names, (scenario, item.key, names)
            assert all(s.evidence == "present" and s.proven for s in item.steps if s.raw_id), item.key
        names = set().union(*({c.check for c in i.checks} for i in clean))
        assert "subject" in names
        if scenario != "contractor_offboarding":
            assert {"approval", "approver", "order", "provisioning", "scope"} <= names, (scenario, names)
        if scenario in ("contractor_offboarding", "emergency_exception"):
            assert "removal" in names


def test_a_walked_chain_is_sealed_step_by_step(store, walked, demo):
    [clean] = _clean(walked, demo["truth"], "supplier_onboarding")
    item = _walk(store, "supplier_onboarding", clean.key)
    assert item.passed
    assert {"person", "supplier", "request", "approval", "grant"} <= {s.role for s in item.steps}
    ledger = open_ledger(demo["store"], store.con)
    for s in item.steps:
        assert ledger.find(s.raw_id, "raw") == [s.ledger_index]


# ---------------------------------------------------------------- the demo's own injected failures


def test_the_demos_injected_failures_are_caught(walked, demo):
    truth = demo["truth"]
    caught = 0
    for f in truth["failures"]:
        check = CAUGHT_BY.get(f["class"])
        if check is None:
            continue
        pid = f.get("person_id")
        person = truth["people"].get(pid or "", {})
        if f["class"] == "exception_expired_access_remains":
            scenario, key = "emergency_exception", f["exception_id"]
        elif (f.get("trigger") == "termination" and person.get("worker_type") in ("Contractor", "Supplier")) \
                or f["class"] == "supplier_access_after_contract_end":
            scenario, key = "contractor_offboarding", pid
        elif f.get("ritm") and person.get("worker_type") == "Supplier":
            scenario, key = "supplier_onboarding", f["ritm"]
        else:
            continue  # not an item of a walkthrough scenario (e.g. an employee's ad-hoc request)
        assert key in walked[scenario], (f["id"], "is in the scenario's population")
        failed = _failed(walked[scenario][key])
        assert check in failed, (f["id"], scenario, key, {c: x.reason for c, x in failed.items()})
        caught += 1
    # the default demo injects them into three of the four scenarios (none into role changes)
    assert caught >= 9


# ---------------------------------------------------------------- mutated chains


def _cites_ticket(s, item) -> bool:
    """The item's grants carry its ticket id (so a relink keeps them linked whatever they grant)."""
    grants = _steps(item, "grant")
    return bool(grants) and all(s.query("SELECT 1 FROM events WHERE event_id = ? AND raw_id = ? AND "
                                        "upper(approval_ref) = upper(?)", [g.record_id, g.raw_id, item.key])
                                for g in grants)


def _set_time(s, step, when) -> None:
    s.execute("UPDATE events SET time = ? WHERE event_id = ? AND raw_id = ?", [when, step.record_id, step.raw_id])


def _mutate(s, walked, truth) -> dict[str, tuple[str, str, str, str]]:
    """Break clean chains in the mutant store (a copy of the demo's), one failure kind each; returns kind ->
    (scenario, key, check, text the failing reason must contain)."""
    sup = _clean(walked, truth, "supplier_onboarding", 4)
    citing = next(i for i in sup if _cites_ticket(s, i))  # a relink keeps it linked whatever it grants
    sup = [*(i for i in sup if i is not citing), citing]
    moves = _clean(walked, truth, "role_change", 3, lambda i: bool(_steps(i, "grant")))
    leavers = _clean(walked, truth, "contractor_offboarding", 2, lambda i: bool(_steps(i, "removal")))
    excs = _clean(walked, truth, "emergency_exception", 2, lambda i: bool(_steps(i, "removal")))
    assert (len(sup), len(moves), len(leavers), len(excs)) == (4, 3, 2, 2)
    out: dict[str, tuple[str, str, str, str]] = {}

    # approval removed
    [request] = _steps(sup[0], "request")
    s.execute("DELETE FROM workflow_records WHERE kind = 'approval' AND system = ? AND parent_id = ?",
              [request.system, request.record_id])
    out["approval removed"] = ("supplier_onboarding", sup[0].key, "approval", "no approval record")

    # approver = requester
    [(requester, system)] = s.query("SELECT requester, system FROM wf_current WHERE record_id = ?", [sup[1].key])
    s.execute("UPDATE workflow_records SET approvers_json = ? WHERE kind = 'approval' AND system = ? "
              "AND parent_id = ?", [orjson.dumps([requester]).decode(), system, sup[1].key])
    out["approver is requester"] = ("supplier_onboarding", sup[1].key, "approver", "which they requested")

    # entitlement outside scope: the grant cites the ticket but adds another group
    grant = _steps(sup[3], "grant")[0]
    s.execute("UPDATE events SET entitlement_name = 'okta-admins', entitlement_id = '00gADMINS' "
              "WHERE event_id = ? AND raw_id = ?", [grant.record_id, grant.raw_id])
    out["entitlement outside scope"] = ("supplier_onboarding", sup[3].key, "scope", "outside the approved scope")

    # provisioning before approval: the grant moves between the request and its approval
    [(opened, decided)] = s.query("SELECT opened, decision_time FROM wf_requests WHERE record_id = ?", [sup[2].key])
    _set_time(s, _steps(sup[2], "grant")[0], opened + (decided - opened) / 2)
    out["provisioning before approval"] = ("supplier_onboarding", sup[2].key, "order", "before")

    # removal late and removal missing, at a leaver's termination or contract end: every removal of theirs
    [(due,)] = s.query("SELECT min(due_at) FROM removal_links WHERE person_id = ? "
                       "AND trigger_kind IN ('termination', 'contract-end')", [leavers[0].key])
    for step in _steps(leavers[0], "removal"):
        _set_time(s, step, due + timedelta(days=4))
    out["removal late"] = ("contractor_offboarding", leavers[0].key, "removal", "late")
    for step in _steps(leavers[1], "removal"):
        s.execute("DELETE FROM events WHERE event_id = ? AND raw_id = ?", [step.record_id, step.raw_id])
    out["removal missing"] = ("contractor_offboarding", leavers[1].key, "removal", "")

    # exception access after expiry: the removal comes five days after the expiry
    [(expires,)] = s.query("SELECT expires FROM wf_current WHERE record_id = ?", [excs[0].key])
    for step in _steps(excs[0], "removal"):
        _set_time(s, step, expires + timedelta(days=5))
    out["exception access after expiry"] = ("emergency_exception", excs[0].key, "removal", "late")

    # exception access before its window: the grant comes two days before the exception took effect
    [(effective,)] = s.query("SELECT effective FROM wf_current WHERE record_id = ?", [excs[1].key])
    _set_time(s, _steps(excs[1], "grant")[0], effective - timedelta(days=2))
    out["exception access outside its window"] = ("emergency_exception", excs[1].key, "window", "outside")

    # raw evidence deleted; payload bytes changed (both of a role change's grant)
    gone = _steps(moves[0], "grant")[0].raw_id
    s.execute("DELETE FROM raw_records WHERE raw_id = ?", [gone])
    out["raw evidence deleted"] = ("role_change", moves[0].key, "evidence", gone)
    changed = _steps(moves[1], "grant")[0].raw_id
    s.execute("UPDATE raw_records SET data = data || CAST('x' AS BLOB) WHERE raw_id = ?", [changed])
    out["payload bytes changed"] = ("role_change", moves[1].key, "ledger", "do not match its sealed payload hash")
    out["(untouched)"] = ("role_change", moves[2].key, "", "")
    return out


@pytest.fixture(scope="module")
def mutant(demo, walked):
    s = open_store(demo["mutant"])
    try:
        expected = _mutate(s, walked, demo["truth"])
        yield s, expected
    finally:
        s.close()


@pytest.mark.parametrize("relinked", [False, True], ids=["linker-tables-stale", "relinked"])
def test_each_injected_failure_kind_fails_naming_the_broken_link(mutant, relinked):
    s, expected = mutant
    if relinked:
        link_all(s)
    for kind, (scenario, key, check, text) in expected.items():
        item = _walk(s, scenario, key)
        failed = _failed(item)
        if not check:
            assert item.passed, (kind, {c: x.reason for c, x in failed.items()})
            continue
        assert check in failed, (kind, relinked, {c: x.reason for c, x in failed.items()})
        assert text.lower() in failed[check].reason.lower(), (kind, failed[check].reason)
        assert failed[check].link, kind
        # the other links of the chain still hold: the failure is named, not everything
        assert len(failed) <= 3, (kind, {c: x.reason for c, x in failed.items()})


# ---------------------------------------------------------------- picking, sealing, listing, CLI


def test_same_seed_same_items_and_the_method_is_recorded(store):
    ctx = open_context(store)
    try:
        picks = {n: [pick(ctx, s, n) for s in SCENARIOS] for n in range(8)}
        assert picks[3] == [pick(ctx, s, 3) for s in SCENARIOS]
        assert len({tuple(k for k, _ in p) for p in picks.values()}) > 1, "different seeds pick different items"
        sizes = [n for _, n in picks[0]]
        assert sizes == [len(REGISTRY[s].population(ctx)) for s in SCENARIOS] and min(sizes) >= 1
    finally:
        ctx.close()
    result = run_walkthrough(store, seed=3, seal=False)
    assert [(i.scenario, i.key, i.population) for i in result.items] == [
        (s, k, n) for s, (k, n) in zip(SCENARIOS, picks[3], strict=True)]
    doc = result.as_dict()
    assert doc["seed"] == 3 and "seed" in doc["method"] and doc["as_of"]


def test_result_is_sealed_verifiable_and_listed(demo, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(demo["pristine"], copy)
    s = open_store(copy)
    try:
        result = run_walkthrough(s, seed=3)
        assert result.ledger_index is not None
        ledger = open_ledger(copy, s.con)
        [idx] = ledger.find(result.walkthrough_id, RECORD_TYPE)
        assert idx == result.ledger_index
        listed = list_walkthroughs(s)
        assert listed[0]["walkthrough_id"] == result.walkthrough_id
        assert listed[0]["ledger_index"] == idx and listed[0]["passed"] == result.passed
        assert listed[0]["items"] == [f"{i.scenario}:{i.key}" for i in result.items]
        report = verify_ledger(ledger, payloads=ledger.payloads)
        assert report.ok, report.problems[:3]
        # the payload kept is what the entry seals
        from accessproof.ledger.entry import decode_entry, payload_matches

        [(payload,)] = s.query("SELECT data FROM ledger_payloads WHERE record_type = ? AND record_id = ?",
                               [RECORD_TYPE, result.walkthrough_id])
        assert payload_matches(decode_entry(ledger.entry(idx)), bytes(payload))
        assert orjson.loads(bytes(payload))["seed"] == 3
    finally:
        s.close()


def test_cli_table_json_exit_codes_and_bad_input(demo, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(demo["pristine"], copy)
    app = build_app()
    leaver = next(f for f in demo["truth"]["failures"] if f["class"] == "supplier_access_after_contract_end")
    res = runner.invoke(app, ["walkthrough", "--store", str(copy), "--item", leaver["person_id"], "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    [item] = doc["items"]
    assert item["scenario"] == "contractor_offboarding" and not item["passed"]
    assert any(c["check"] == "removal" and not c["passed"] for c in item["checks"])

    res = runner.invoke(app, ["walkthrough", "--store", str(copy), "--item", leaver["person_id"]],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 1 and "FAIL" in res.output and "removal" in res.output

    res = runner.invoke(app, ["walkthrough", "--store", str(copy), "--list", "--json"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 2

    employee_request = next(f["ritm"] for f in demo["truth"]["failures"] if f.get("ritm")
                            and demo["truth"]["people"][f["person_id"]]["worker_type"] == "Employee")
    for args, message in (
        (["--item", "NOPE-1"], "no item 'NOPE-1'"),
        (["--scenario", "supplier_onboarding", "--item", employee_request], "of supplier staff"),
        (["--scenario", "role_change", "--item", "EXC-0001"], "no item 'EXC-0001'"),
        (["--scenario", "bogus"], "bogus"),
        (["--item", " "], "empty"),
    ):
        res = runner.invoke(app, ["walkthrough", "--store", str(copy), *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["walkthrough", "--store", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no store" in res.output
    assert not (tmp_path / "nowhere").exists()


def test_library_rejects_unknown_scenario(store):
    with pytest.raises(WalkthroughError, match="unknown scenario"):
        run_walkthrough(store, scenarios=["nope"], seal=False)


def test_hostile_values_are_not_rich_markup(demo, walked, tmp_path):
    [clean] = _clean(walked, demo["truth"], "supplier_onboarding")
    copy = tmp_path / "store"
    shutil.copytree(demo["pristine"], copy)
    s = open_store(copy)
    try:
        key = clean.key
        s.execute("UPDATE workflow_records SET approvers_json = ? WHERE kind = 'approval' AND parent_id = ?",
                  ['["[bold red]=cmd|x[/bold red]"]', key])
    finally:
        s.close()
    res = runner.invoke(build_app(), ["walkthrough", "--store", str(copy), "--scenario", "supplier_onboarding",
                                      "--item", key], env={"COLUMNS": "250"})
    assert res.exit_code == 1
    assert "[bold red]=cmd|x[/bold red]" in res.output
