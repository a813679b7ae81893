"""Sampling: reproducible draws an auditor can redo by hand, sizes by frequency and severity, the population
frozen in the ledger (and verified), the sample file of the shared contract, and the command's one-line errors."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from typer.testing import CliRunner

from accessproof.audit.population import PopulationError, PopulationItem, population
from accessproof.audit.sample import (
    SIZE_BANDS,
    default_size,
    draw,
    parse_period,
    take_sample,
)
from accessproof.audit.sample_commands import build_app
from accessproof.ledger import open_ledger, verify_ledger
from accessproof.ledger.entry import decode_entry, payload_matches
from accessproof.store import open_store

runner = CliRunner()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONTROL = "access_without_approval"


def _items(n: int) -> list[PopulationItem]:
    return [PopulationItem(f"event:okta:acme:{i:04d}", f"p{i}", T0, "grant", [f"raw{i}"]) for i in range(n)]


def test_same_seed_same_sample_and_another_seed_another() -> None:
    items = _items(500)
    a, b, c = draw(items, 7, 25), draw(items, 7, 25), draw(items, 8, 25)
    assert [i.key for i in a] == [i.key for i in b]
    assert {i.key for i in a} != {i.key for i in c}
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert [i.key for i in draw(shuffled, 7, 25)] == [i.key for i in a], "row order must not matter"


def test_the_draw_can_be_redone_by_hand() -> None:
    """What the sample file's algorithm text says: SHA-256 of '<seed>:<key>', lowest first."""
    items = _items(300)
    by_hand = sorted((hashlib.sha256(f"42:{i.key}".encode()).hexdigest(), i.key) for i in items)[:10]
    assert [i.key for i in draw(items, 42, 10)] == [k for _, k in by_hand]


def test_adding_an_item_does_not_reshuffle_the_rest() -> None:
    items = _items(201)
    new = items.pop()
    before = [i.key for i in draw(items, 3, 20)]
    after = [i.key for i in draw([*items, new], 3, 20)]
    kept = [k for k in after if k != new.key]
    assert kept == before[: len(kept)], "the new item can only push the last one out"


def test_default_size_by_frequency_and_severity() -> None:
    year = (T0, T0 + timedelta(days=365))
    assert default_size("annual", "critical", 10, *year)[0] == 1
    assert default_size("quarterly", "high", 10, *year)[0] == 2
    assert default_size("monthly", "medium", 10, *year)[0] == 2
    assert default_size("monthly", "critical", 10, *year)[0] == 5
    assert default_size("weekly", "low", 100, *year)[0] == 5
    assert default_size("weekly", "high", 100, *year)[0] == 10
    assert default_size("daily", "critical", 1000, *year)[0] == 40
    assert default_size("many_times_a_day", "high", 5000, *year)[0] == 43
    # as events occur: the count per year picks the band (26 leavers in half a year is weekly)
    half = (T0, T0 + timedelta(days=182))
    size, text = default_size("as_occurs", "medium", 26, *half)
    assert size == SIZE_BANDS["weekly"][0]
    assert "26 in 182 days" in text and "weekly" in text and "weekly 5–15" in text
    assert default_size("as_occurs", "medium", 3, *half)[0] == SIZE_BANDS["quarterly"][0]
    assert default_size("as_occurs", "critical", 900, *half)[0] == SIZE_BANDS["many_times_a_day"][1]


def test_periods() -> None:
    assert parse_period("2026-01-01..2026-07-01") == (T0, datetime(2026, 7, 1, tzinfo=UTC))
    assert parse_period("2026-01-01T02:00:00+02:00..2026-01-02")[0] == T0
    for bad in ("2026-01-01", "2026-01-01..", "..2026-01-01", "2026-02-30..2026-03-01", "2026-03-01..2026-01-01",
                "2026-01-01..2026-01-01"):
        with pytest.raises(PopulationError):
            parse_period(bad)


def test_sample_freezes_the_population_in_the_ledger_and_verify_passes(sealed_demo, store_copy) -> None:
    s = open_store(store_copy)
    try:
        size_before = open_ledger(store_copy, s.con).size
        smp = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=7)
        again = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=7)
        other = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=8)
        led = open_ledger(store_copy, s.con)
        entry = decode_entry(led.entry(smp.ledger_index))
        kept = bytes(led.storage.get_payloads("population", [entry.id])[entry.id])
        report = verify_ledger(led, payloads=led.payloads)
        checkpoint = led.latest_checkpoint()
        direct = population(s, CONTROL, sealed_demo.start, sealed_demo.end)
    finally:
        s.close()
    assert smp.ledger_index == size_before and smp.sealed_now
    assert (again.ledger_index, again.sealed_now) == (smp.ledger_index, False), "the same population is frozen once"
    assert [i.key for i in again.items] == [i.key for i in smp.items]
    assert {i.key for i in other.items} != {i.key for i in smp.items}
    assert entry.type == "population" and entry.source == "accessproof:audit"
    assert entry.retention == "control_results"
    assert payload_matches(entry, kept)
    sealed = json.loads(kept)
    assert sealed == smp.document()["population"]["payload"]
    assert sealed["keys"] == direct.keys and sealed["count"] == direct.count
    assert report.ok, report.problems[:3]
    assert checkpoint is not None and checkpoint.size > smp.ledger_index, "a checkpoint covers the population"


def test_sample_file_follows_the_shared_contract(sealed_demo, store_copy) -> None:
    out = store_copy.parent / "sample.json"
    res = runner.invoke(build_app(), ["sample", "--control", CONTROL, "--period",
                                      f"{sealed_demo.start.date()}..{sealed_demo.end.date()}", "--seed", "11",
                                      "--out", str(out), "--store", str(store_copy)])
    assert res.exit_code == 0, res.output
    def sorted_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        assert [k for k, _ in pairs] == sorted(k for k, _ in pairs), "keys are sorted"
        return dict(pairs)

    doc = json.loads(out.read_bytes().decode("utf-8"), object_pairs_hook=sorted_keys)
    assert doc["format"] == "accessproof.sample/1"
    assert set(doc) == {"format", "control", "period", "population", "method", "items"}
    assert doc["control"]["id"] == CONTROL and doc["control"]["frequency"] == "daily" and doc["control"]["title"]
    assert doc["period"] == {"from": sealed_demo.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "to": sealed_demo.end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    pop = doc["population"]
    assert set(pop) == {"definition", "query_sql", "count", "digest", "ledger_index", "payload"}
    keys = pop["payload"]["keys"]
    assert pop["count"] == len(keys) == pop["payload"]["count"]
    assert pop["digest"] == hashlib.sha256(json.dumps(keys, separators=(",", ":")).encode()).hexdigest()
    assert pop["payload"]["period"] == doc["period"] and pop["payload"]["control"] == CONTROL
    method = doc["method"]
    assert method["seed"] == 11 and method["size"] == len(doc["items"]) and "sha256" in method["algorithm"]
    assert "many times a day" in method["guidance"]  # grants happen many times a day
    by_hand = sorted(keys, key=lambda k: hashlib.sha256(f"11:{k}".encode()).hexdigest())[: method["size"]]
    assert [i["key"] for i in doc["items"]] == by_hand
    con = duckdb.connect(str(store_copy / "accessproof.duckdb"), read_only=True)
    try:
        sealed = {r[0] for r in con.execute("SELECT record_id FROM ledger_entries WHERE record_type = 'raw'").fetchall()}
        entry_type = con.execute("SELECT record_type FROM ledger_entries WHERE idx = ?",
                                 [pop["ledger_index"]]).fetchall()[0][0]
    finally:
        con.close()
    assert entry_type == "population"
    for item in doc["items"]:
        assert set(item) == {"key", "subject", "time", "summary", "raw_ids"}
        assert item["raw_ids"] and set(item["raw_ids"]) <= sealed
        assert sealed_demo.start <= datetime.fromisoformat(item["time"].replace("Z", "+00:00")) < sealed_demo.end


def test_size_option_and_small_populations(sealed_demo, store_copy) -> None:
    s = open_store(store_copy)
    try:
        small = take_sample(s, "exception_incomplete", sealed_demo.start, sealed_demo.end, seed=1, size=500)
        three = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=1, size=3)
    finally:
        s.close()
    assert small.size == small.population.count and "every item is taken" in small.guidance
    assert three.size == 3 and three.guidance.startswith("Size 3 set by the auditor")


def test_a_changed_population_payload_fails_verify(sealed_demo, store_copy) -> None:
    s = open_store(store_copy)
    try:
        smp = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=7)
        data = bytes(s.query("SELECT data FROM ledger_payloads WHERE record_type = 'population' AND record_id = ?",
                             [smp.record_id])[0][0])
        s.execute("UPDATE ledger_payloads SET data = ? WHERE record_type = 'population' AND record_id = ?",
                  [data.replace(b'"count":', b'"count":1'), smp.record_id])
        led = open_ledger(store_copy, s.con)
        report = verify_ledger(led, payloads=led.payloads)
        with pytest.raises(PopulationError, match="no longer matches its payload"):
            take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=7)
    finally:
        s.close()
    assert not report.ok
    assert [p.index for p in report.problems if f"payload of population {smp.record_id!r}" in str(p)] == \
        [smp.ledger_index]


def test_bad_inputs_are_one_line_errors_and_seal_nothing(sealed_demo, store_copy) -> None:
    period = f"{sealed_demo.start.date()}..{sealed_demo.end.date()}"
    cases = [
        (["--control", "no_such_control", "--period", period], "unknown control 'no_such_control'"),
        (["--control", CONTROL, "--period", "2026-01-01"], "is not FROM..TO"),
        (["--control", CONTROL, "--period", "2026-13-01..2026-14-01"], "is not a date or time"),
        (["--control", CONTROL, "--period", f"{sealed_demo.end.date()}..{sealed_demo.start.date()}"], "is empty"),
        (["--control", CONTROL, "--period", period, "--size", "0"], "sample size must be at least 1"),
        (["--control", "recert_revoke_not_enforced", "--period", period], "is empty: nothing to sample"),
        (["--control", CONTROL, "--period", "2030-01-01..2030-02-01"], "is empty: nothing to sample"),
    ]
    con = duckdb.connect(str(store_copy / "accessproof.duckdb"), read_only=True)
    before = con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0]
    con.close()
    for args, message in cases:
        res = runner.invoke(build_app(), ["sample", *args, "--store", str(store_copy)])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output and res.output.count("error:") == 1
    con = duckdb.connect(str(store_copy / "accessproof.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0] == before
    con.close()
    nowhere = store_copy.parent / "nowhere"
    res = runner.invoke(build_app(), ["sample", "--control", CONTROL, "--period", period, "--store", str(nowhere)])
    assert res.exit_code == 2 and "no store at" in res.output and not nowhere.exists()
    unsealed = store_copy.parent / "unsealed"
    open_store(unsealed).close()  # a store whose records were never sealed
    res = runner.invoke(build_app(), ["sample", "--control", CONTROL, "--period", period, "--store", str(unsealed)])
    assert res.exit_code == 2 and "no sealed records" in res.output
