"""Evidence retrieval on the sealed demo: by control, system, time and subject (a person across accounts);
purged payloads listed as purged with when, by whom and why; formula-safe CSV; one-line errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from accessproof.audit.retrieval import COLUMNS, EvidenceError, find_evidence
from accessproof.audit.sample import take_sample
from accessproof.audit.sample_commands import build_app
from accessproof.ingest import ingest_paths
from accessproof.ledger import open_ledger, verify_ledger
from accessproof.ledger.retention import add_hold, purge
from accessproof.store import open_store

runner = CliRunner()
CONTROL = "access_without_approval"
HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(1)"]


@pytest.fixture(scope="module")
def store(sealed_demo):
    s = open_store(sealed_demo.store_dir, read_only=True)
    yield s
    s.close()


def _cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(build_app(), ["evidence", *args])
    return res.exit_code, res.output


def test_a_purged_record_is_listed_as_purged(store_copy) -> None:
    s = open_store(store_copy)
    try:
        before = find_evidence(s, limit=1).total
        led = open_ledger(store_copy, s.con)
        add_hold(led, reason="litigation", by="legal", source="hr:*")
        now = datetime(2040, 1, 1, tzinfo=UTC)
        report = purge(led, led.payloads, now=now, by="records-management")
        after = find_evidence(s, limit=1)
        okta = find_evidence(s, system="okta", limit=50)
        hr = find_evidence(s, system="hr")
        verified = verify_ledger(led, payloads=led.payloads)
    finally:
        s.close()
    assert report.payloads_removed > 0 and report.manifest_index is not None
    assert after.total == before + 2, "nothing hidden: every entry still listed (plus the hold and the manifest)"
    assert okta.rows and all(r.payload == "purged" for r in okta.rows)
    row = okta.rows[0]
    assert row.purged_at == "2040-01-01T00:00:00Z" and row.purged_by == "records-management"
    assert row.purge_index == report.manifest_index
    assert row.why and row.why.startswith("retention provisioning_logs (3 years")
    assert hr.rows and all(r.payload == "present" for r in hr.rows), "held records keep their payloads"
    assert verified.ok, verified.problems[:3]
    code, out = _cli("--system", "okta", "--format", "jsonl", "--limit", "5", "--store", str(store_copy))
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 5 and {x["payload"] for x in lines} == {"purged"}
    assert all(x["purge_index"] == report.manifest_index for x in lines)


def test_control_evidence_is_its_runs_population_and_evidenced_records(sealed_demo, store_copy) -> None:
    s = open_store(store_copy)
    try:
        smp = take_sample(s, CONTROL, sealed_demo.start, sealed_demo.end, seed=3)
        ev = find_evidence(s, control=CONTROL)
        runs = {r[0] for r in s.query("SELECT run_id FROM control_runs WHERE control_id = ?", [CONTROL])}
        named = s.query("""
          WITH ids AS (SELECT unnest(CAST(CAST(evidence_ids_json AS JSON) AS VARCHAR[])) AS id FROM control_results
                       WHERE control_id = ? AND status = 'alarm')
          SELECT raw_id FROM raw_records WHERE raw_id IN (SELECT id FROM ids)
          UNION SELECT raw_id FROM events WHERE event_id IN (SELECT id FROM ids)""", [CONTROL])
        other_runs = {r[0] for r in s.query("SELECT run_id FROM control_runs WHERE control_id <> ?", [CONTROL])}
        sampled = s.query(f"SELECT event_id, raw_id FROM events WHERE event_id IN ({', '.join('?' * smp.size)})",
                          [i.key.rsplit(":", 1)[1] for i in smp.items])
    finally:
        s.close()
    by_type: dict[str, set[str]] = {}
    for r in ev.rows:
        by_type.setdefault(r.type, set()).add(r.record_id)
    assert ev.total == len(ev.rows)
    assert by_type["control_result"] == runs
    assert by_type["population"] == {smp.record_id}
    assert not by_type["control_result"] & other_runs
    assert [r.kind for r in ev.rows if r.type == "population"] == [CONTROL]
    # every record an alarm names (by raw id or event id) is retrieved, and every sampled grant
    raw = by_type["raw"]
    assert named and {r[0] for r in named} <= raw
    events = {eid: rid for eid, rid in sampled}
    assert len(events) == len(smp.items) and set(events.values()) <= raw, "each sampled grant is retrievable"


def test_subject_is_a_person_across_their_accounts(store) -> None:
    pid, email, username = store.query("""
      SELECT p.person_id, p.email, p.usernames_json FROM persons p
      JOIN accounts a ON a.person_id = p.person_id
      GROUP BY p.person_id, p.email, p.usernames_json HAVING count(DISTINCT a.system) >= 3
      ORDER BY p.person_id LIMIT 1""")[0]
    systems = {r[0] for r in store.query("SELECT DISTINCT system FROM accounts WHERE person_id = ?", [pid])}
    hr_raw = {r[0] for r in store.query("SELECT raw_id FROM persons WHERE person_id = ?", [pid])}
    by_email = find_evidence(store, subject=email)
    assert by_email.person_id == pid and {s for s, _ in by_email.accounts} == systems
    raw_sources = {r.source for r in by_email.rows if r.kind == "event"}
    assert raw_sources == systems, "events from every system the person has an account in"
    assert hr_raw <= {r.record_id for r in by_email.rows}
    assert any(r.kind == "workflow" for r in by_email.rows)
    by_id = find_evidence(store, subject=pid)
    by_username = find_evidence(store, subject=json.loads(username)[0])
    assert [r.index for r in by_id.rows] == [r.index for r in by_email.rows] == [r.index for r in by_username.rows]
    # every event retrieved targets one of their accounts or was done by one of them
    accounts = set(by_email.accounts)
    ids = [r.record_id for r in by_email.rows if r.kind == "event"]
    marks = ", ".join("?" * len(ids))
    for src, tsys, tid, tname, aid, aname in store.query(
            f"SELECT source, target_system, target_id, target_name, actor_id, actor_name FROM events "
            f"WHERE raw_id IN ({marks})", ids):
        target = (tsys or src, tid or tname)
        assert target in accounts or (src, aid) in accounts or (src, aname) in accounts, (src, tid, aid, aname)


def test_subject_may_be_an_account_of_no_person(store) -> None:
    system, account = store.query("""SELECT system, account_id FROM accounts
                                     WHERE kind = 'human' AND person_id IS NULL ORDER BY 1, 2 LIMIT 1""")[0]
    ev = find_evidence(store, subject=account)
    assert ev.person_id is None and (system, account) in ev.accounts
    assert ev.rows and {r.kind for r in ev.rows} == {"event"} and {r.source for r in ev.rows} <= {s for s, _ in ev.accounts}


def test_system_and_time_filters_match_a_direct_count(store, sealed_demo) -> None:
    start = sealed_demo.start + timedelta(days=10)
    end = start + timedelta(days=7)
    ev = find_evidence(store, system="github", start=start, end=end, limit=10)
    direct = store.query("""SELECT count(*) FROM ledger_entries e JOIN raw_records r ON r.raw_id = e.record_id
                            WHERE e.record_type = 'raw' AND r.source LIKE 'github:%'
                              AND r.record_time >= ? AND r.record_time < ?""", [start, end])[0][0]
    assert direct > 10 and ev.total == direct and len(ev.rows) == 10
    for r in ev.rows:
        assert r.source.startswith("github:") and start <= datetime.fromisoformat(r.time.replace("Z", "+00:00")) < end
    by_type = find_evidence(store, system="cloudtrail", limit=1)  # a source type names its sources too
    assert by_type.total > 0 and by_type.rows[0].source.startswith("aws:")
    assert [r.index for r in ev.rows] == sorted(r.index for r in ev.rows)


def test_csv_is_formula_safe(store_copy, tmp_path) -> None:
    workers = tmp_path / "workers.csv"
    rows = [["Employee ID", "Legal Name", "Work Email", "Username", "Worker Type", "Supplier ID", "Manager ID",
             "Business Unit", "Job Title", "Hire Date", "Termination Date"]]
    rows += [[h, f"Mallory {n}", f"m{n}@evil.example", f"m{n}", "Employee", "", "", "R&D", h, "2026-01-05", ""]
             for n, h in enumerate(HOSTILE)]
    with workers.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    s = open_store(store_copy)
    try:
        summary = ingest_paths(s, "csv", [workers], options={"mapping": "hr_workers"})
    finally:
        s.close()
    assert summary.accepted == len(HOSTILE)
    code, out = _cli("--system", "hr", "--format", "csv", "--from", "2026-01-05", "--to", "2026-01-06",
                     "--store", str(store_copy))
    assert code == 0, out
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == list(COLUMNS)
    cells = [c for row in table[1:] for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert {"'" + h for h in HOSTILE} <= set(cells), "hostile subjects are kept, made inert"


def test_bad_inputs_are_one_line_errors(sealed_demo, tmp_path) -> None:
    store = str(sealed_demo.store_dir)
    cases = [
        (["--control", "no_such_control"], "unknown control 'no_such_control'"),
        (["--subject", "nobody@nowhere.example"], "no person or account matches"),
        (["--from", "last tuesday"], "is not a date or time"),
        (["--from", "2026-03-01", "--to", "2026-02-01"], "--from must be before --to"),
        (["--format", "xlsx"], "unknown format 'xlsx'"),
        (["--limit", "-1"], "--limit must be 0"),
    ]
    for args, message in cases:
        code, out = _cli(*args, "--store", store)
        assert code == 2 and message in out and out.count("error:") == 1 and "Traceback" not in out, (args, out)
    empty = tmp_path / "unsealed"
    open_store(empty).close()
    code, out = _cli("--store", str(empty))
    assert code == 2 and "has no ledger" in out
    code, out = _cli("--store", str(tmp_path / "nowhere"))
    assert code == 2 and "no store at" in out
    ro = open_store(empty, read_only=True)
    try:
        with pytest.raises(EvidenceError, match="has no ledger"):
            find_evidence(ro, control=CONTROL)
    finally:
        ro.close()


def test_table_output_names_the_counts(sealed_demo) -> None:
    code, out = _cli("--control", CONTROL, "--store", str(sealed_demo.store_dir))
    assert code == 0
    assert "sealed evidence" in out and "entries" in out
