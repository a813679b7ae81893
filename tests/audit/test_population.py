"""Populations per control on the sealed demo: every control has one (or an explicit, tested reason why not),
counts agree with counts written straight against the canonical tables, items are evidenced by sealed raw
records, and the definitions stay portable SQL."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from accessproof.audit.population import (
    Definition,
    NoPopulation,
    PopulationError,
    load_definitions,
    population,
)
from accessproof.controls.engine import load_catalogue, transpile
from accessproof.model import GRANTING_ACTIONS
from accessproof.store import open_store

GRANT_CONTROLS = ("access_without_approval", "access_before_approval", "access_after_rejection",
                  "scope_beyond_approval")


@pytest.fixture(scope="module")
def store(sealed_demo):
    s = open_store(sealed_demo.store_dir, read_only=True)
    yield s
    s.close()


@pytest.fixture(scope="module")
def populations(store, sealed_demo):
    return {cid: population(store, cid, sealed_demo.start, sealed_demo.end) for cid in load_definitions()}


def test_every_catalogue_control_has_a_population_definition() -> None:
    defs = load_definitions()
    catalogue = load_catalogue()
    assert set(defs) == set(catalogue)
    assert len(defs) == 27
    for cid, d in defs.items():
        assert d.sql, f"{cid} has no SQL"
        assert d.definition.startswith("every "), cid


def test_population_sql_is_portable() -> None:
    for cid, d in load_definitions().items():
        assert "$end" in d.sql, cid  # state at the end of the period, or events in it
        transpile(d.sql, "postgres")  # raises ControlError naming what PostgreSQL cannot express


def test_items_are_unique_sorted_and_evidenced_by_sealed_raw_records(store, populations) -> None:
    sealed = {r[0] for r in store.query("SELECT record_id FROM ledger_entries WHERE record_type = 'raw'")}
    empty = []
    for cid, pop in populations.items():
        if not pop.items:
            empty.append(cid)
            continue
        keys = [i.key for i in pop.items]
        assert keys == sorted(set(keys)) == pop.keys, cid
        for item in pop.items:
            assert item.raw_ids, f"{cid} {item.key}: no evidence"
            assert set(item.raw_ids) <= sealed, f"{cid} {item.key}: evidence not sealed"
            assert item.summary and item.subject, f"{cid} {item.key}"
    # the demo holds no access review decisions, so only that control's population is empty
    assert empty == ["recert_revoke_not_enforced"]


def test_grants_match_a_direct_count_of_events(store, sealed_demo, populations) -> None:
    actions = sorted(str(a) for a in GRANTING_ACTIONS)
    marks = ", ".join("?" * len(actions))
    for start, end in ((sealed_demo.start, sealed_demo.end),
                       (sealed_demo.start + timedelta(days=20), sealed_demo.start + timedelta(days=41))):
        direct = store.query(
            f"SELECT count(DISTINCT coalesce(target_system, source) || '|' || event_id) FROM events "
            f"WHERE action IN ({marks}) AND (outcome IS NULL OR outcome <> 'failure') AND time >= ? AND time < ?",
            [*actions, start, end])[0][0]
        assert direct > 0
        for cid in GRANT_CONTROLS:
            assert population(store, cid, start, end).count == direct, (cid, start, end)


def test_leavers_match_the_hr_terminations(store, sealed_demo, populations) -> None:
    """Each HR termination in the period, and each worker record's termination date in the period for a
    person HR sent no termination event about, is one leaver (keyed by record and person)."""
    events = store.query("SELECT DISTINCT record_id, subject, effective FROM workflow_records "
                         "WHERE kind = 'hr_event' AND lower(event_type) = 'termination'")
    with_event = {subject for _, subject, _ in events}
    direct = {(rid, subject) for rid, subject, eff in events
              if eff is not None and sealed_demo.start <= eff < sealed_demo.end}
    direct |= {(pid, pid) for pid, t in store.query("SELECT DISTINCT person_id, terminated FROM persons")
               if t is not None and sealed_demo.start <= t < sealed_demo.end and pid not in with_event}
    assert direct
    for cid in ("revocation_late", "revocation_missing"):
        got = {tuple(i.key.split(":")[2:4]) for i in populations[cid].items
               if i.key.startswith("trigger:termination:")}
        assert got == direct, cid


def test_supplier_contract_end_matches_the_register(store, sealed_demo, populations) -> None:
    ended = {rid for rid, end in store.query(
        "SELECT record_id, contract_end FROM workflow_records WHERE kind = 'supplier'")
        if end is not None and sealed_demo.start <= end < sealed_demo.end}
    staff = {pid for pid, sup in store.query("SELECT DISTINCT person_id, supplier_id FROM persons") if sup in ended}
    got = {i.subject for i in populations["supplier_access_after_contract_end"].items}
    assert got == staff


def test_keys_name_the_control_results_they_test(store, populations) -> None:
    """Where the unit is the control's own resource, every sampled key leads to that control's result row."""
    for cid in (*GRANT_CONTROLS, "requester_is_approver", "time_bound_access_not_removed", "dormant_account"):
        latest = store.query("SELECT run_id FROM control_runs WHERE control_id = ? ORDER BY started DESC LIMIT 1",
                             [cid])[0][0]
        resources = {r[0] for r in store.query("SELECT resource FROM control_results WHERE run_id = ?", [latest])}
        assert set(populations[cid].keys) <= resources, cid


def test_digest_and_payload_are_canonical(populations) -> None:
    pop = populations["access_without_approval"]
    keys_json = json.dumps(sorted(pop.keys), separators=(",", ":"), ensure_ascii=False)
    assert pop.digest == hashlib.sha256(keys_json.encode()).hexdigest()
    payload = pop.payload()
    assert payload["count"] == len(payload["keys"]) == pop.count
    assert payload["control"] == "access_without_approval"
    assert pop.payload_bytes() == json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                             ensure_ascii=False).encode()


def test_no_population_is_an_explicit_error(store, sealed_demo) -> None:
    defs = {"orphan_account": Definition("orphan_account", "none", "weekly",
                                         none="accounts are tested as a whole, not sampled")}
    with pytest.raises(NoPopulation, match=r"^no population: orphan_account: accounts are tested as a whole"):
        population(store, "orphan_account", sealed_demo.start, sealed_demo.end, definitions=defs)
    with pytest.raises(NoPopulation, match=r"^no population: my_own_control has no population definition"):
        population(store, "my_own_control", sealed_demo.start, sealed_demo.end)


def test_bad_definitions_and_periods_are_one_line_errors(tmp_path: Path, store, sealed_demo) -> None:
    cases = {
        "expected a mapping": "- a\n- b\n",
        "frequency 'hourly' is not one of": "x:\n  definition: every x\n  frequency: hourly\n  sql: SELECT 1\n",
        "needs a definition and either sql or none": "x:\n  frequency: weekly\n",
        "not YAML": "x: [\n",
    }
    for n, (message, text) in enumerate(cases.items()):
        p = tmp_path / f"pop{n}.yaml"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(PopulationError, match=message) as err:
            load_definitions(p)
        assert "\n" not in str(err.value)
    with pytest.raises(PopulationError, match="cannot read"):
        load_definitions(tmp_path / "missing.yaml")
    with pytest.raises(PopulationError, match="empty period"):
        population(store, "orphan_account", sealed_demo.end, sealed_demo.start)
    dup = {"x": Definition("x", "every x", "weekly", sql="SELECT 'k' AS key, NULL AS subject, NULL AS time, "
                           "'s' AS summary, [] AS raw_ids FROM range(2) WHERE $start < $end")}
    with pytest.raises(PopulationError, match="comes twice"):
        population(store, "x", sealed_demo.start, sealed_demo.end, definitions=dup)
