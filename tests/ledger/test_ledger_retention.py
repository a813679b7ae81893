"""Retention classes, legal holds and purge on real stores (DuckDB, PostgreSQL); purged bytes leave the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accessproof.ledger import LedgerError, SealRecord, verify_ledger
from accessproof.ledger.api import compact_store, db_path
from accessproof.ledger.duckdb_storage import compact_database
from accessproof.ledger.retention import add_hold, list_holds, load_policy, purge, release_hold
from tests.store.conftest import db_execute

from .conftest import reopen, seal_raw

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_policy_classifies_by_type_kind_and_source(tmp_path: Path) -> None:
    p = load_policy()
    assert p.classify("raw", "servicenow:acme", "workflow") == "approval_records"
    assert p.classify("raw", "okta:acme", "event") == "provisioning_logs"
    assert p.classify("workflow", "servicenow:acme") == "approval_records"
    assert p.classify("quarantine", "okta:acme") == "quarantined_input"
    assert p.classify("hold", "accessproof") == "ledger_records"
    assert p.classify("something_new", "x") == "provisioning_logs"
    assert p.get("approval_records").expires(datetime(2020, 2, 29, tzinfo=UTC)) == datetime(
        2027, 2, 28, tzinfo=UTC
    )
    assert p.get("ledger_records").expires(NOW) is None
    bad = tmp_path / "r.yaml"
    bad.write_text("classes: {a: {years: 1}}\nrules: [{type: raw, class: b}]\ndefault: a\n")
    with pytest.raises(LedgerError, match="undefined class 'b'"):
        load_policy(bad)


def _records() -> list[SealRecord]:
    """Provisioning logs (3y) from 2018 to 2024, approvals (7y) from 2016, two people."""
    recs = []
    for i in range(14):
        t = datetime(2018 + i // 2, 3, 1, tzinfo=UTC)
        recs.append(
            SealRecord(
                "raw",
                f"ev-{i}",
                "okta:acme",
                t,
                f"event {i}".encode(),
                subject="ann@acme.com" if i % 2 else "bob@acme.com",
                kind="event",
            )
        )
    for i in range(4):
        t = datetime(2016 + 2 * i, 3, 1, tzinfo=UTC)
        recs.append(
            SealRecord(
                "raw",
                f"wf-{i}",
                "servicenow:acme",
                t,
                f"approval {i}".encode(),
                subject="ann@acme.com",
                kind="workflow",
            )
        )
    return recs


def _data(led, raw_id: str):
    rows = db_execute(led.storage.conn, "SELECT data FROM raw_records WHERE raw_id = ?", [raw_id])
    return rows[0][0]


def test_purge_respects_retention_and_holds(any_ledger) -> None:
    ledger = any_ledger
    seal_raw(ledger, _records())
    ledger.checkpoint()
    hold = add_hold(ledger, subject="ann@acme.com", reason="matter 17", by="legal@acme.com", now=NOW)
    add_hold(
        ledger,
        source="servicenow:*",
        record_type="raw",
        reason="audit",
        by="cfo",
        time_from=datetime(2016, 1, 1, tzinfo=UTC),
        time_to=datetime(2017, 1, 1, tzinfo=UTC),
        now=NOW,
    )
    assert len(list_holds(ledger)) == 2 and list_holds(ledger)[0].hold_id == hold.hold_id

    dry = purge(ledger, ledger.payloads, now=NOW, dry_run=True)
    # events up to 2022-06-01 expire: bob's (even i) go, ann's are held; approvals up to 2018-06-01 expire:
    # wf-0 (2016) is held by the servicenow hold, wf-1 (2018) by ann's
    assert sorted(r.record_id for r in dry.purge) == ["ev-0", "ev-2", "ev-4", "ev-6", "ev-8"]
    assert sorted(r.record_id for r in dry.held) == ["ev-1", "ev-3", "ev-5", "ev-7", "ev-9", "wf-0", "wf-1"]
    assert _data(ledger, "ev-0") is not None  # dry run changed nothing

    size_before = ledger.size
    report = purge(ledger, ledger.payloads, now=NOW, by="ops")
    assert report.payloads_removed == 5 and report.manifest_index == size_before
    assert _data(ledger, "ev-0") is None and _data(ledger, "ev-1") is not None
    ledger.checkpoint()  # consistent with the checkpoint before the purge
    result = verify_ledger(ledger, payloads=ledger.payloads)
    assert result.ok, result.summary()
    assert result.payloads_purged == 5

    assert purge(ledger, ledger.payloads, now=NOW).purge == []  # nothing new
    release_hold(ledger, hold.hold_id, reason="matter closed", by="legal@acme.com", now=NOW)
    assert [h.hold_id for h in list_holds(ledger)] != [hold.hold_id]
    assert len(list_holds(ledger, include_released=True)) == 2
    later = purge(ledger, ledger.payloads, now=NOW + timedelta(days=1))
    assert sorted(r.record_id for r in later.purge) == ["ev-1", "ev-3", "ev-5", "ev-7", "ev-9", "wf-1"]
    assert verify_ledger(ledger, payloads=ledger.payloads).ok
    with pytest.raises(LedgerError):
        release_hold(ledger, hold.hold_id, reason="again", by="x")


def test_hold_needs_reason_and_criteria(ledger) -> None:
    with pytest.raises(LedgerError):
        add_hold(ledger, reason="", by="x", subject="a")
    with pytest.raises(LedgerError):
        add_hold(ledger, reason="r", by="x")


def test_tampered_hold_blocks_purge(any_ledger) -> None:
    ledger = any_ledger
    seal_raw(ledger, _records())
    add_hold(ledger, subject="bob@acme.com", reason="matter", by="legal", now=NOW)
    conn = ledger.storage.conn
    for rtype, rid, data in db_execute(conn, "SELECT record_type, record_id, data FROM ledger_payloads"):
        db_execute(conn, "UPDATE ledger_payloads SET data = ? WHERE record_type = ? AND record_id = ?",
                   [bytes(data).replace(b"bob", b"eve"), rtype, rid])
    with pytest.raises(LedgerError, match="does not match its sealed hash"):
        purge(ledger, ledger.payloads, now=NOW)
    assert _data(ledger, "ev-0") is not None


def test_purged_bytes_are_gone_from_the_database_file(store_dir: Path, ledger) -> None:
    marker = b"SECRET-PAYLOAD-" + b"q7z" * 40
    recs = [SealRecord("raw", "secret", "okta:acme", datetime(2015, 1, 1, tzinfo=UTC), marker, kind="event")]
    seal_raw(ledger, recs)
    ledger.storage.conn.execute("CHECKPOINT")
    assert marker in db_path(store_dir).read_bytes()
    report = purge(ledger, ledger.payloads, now=NOW)
    assert [r.record_id for r in report.purge] == ["secret"]
    ledger.storage.conn.execute("CHECKPOINT")
    assert marker in db_path(store_dir).read_bytes()  # DuckDB keeps the freed block: hence the compaction
    ledger.close()
    compact_database(db_path(store_dir))
    assert marker not in db_path(store_dir).read_bytes()
    led = reopen(store_dir)
    result = verify_ledger(led, payloads=led.payloads)
    assert result.ok and result.payloads_purged == 1, result.summary()
    led.close()


def test_purge_lists_only_payloads_the_store_holds(ledger) -> None:
    old = datetime(2010, 1, 1, tzinfo=UTC)
    ledger.seal(
        [SealRecord("event", "ev-normalised", "okta:acme", old, b"{}")]
    )  # no payload table for events
    seal_raw(ledger, [SealRecord("raw", "r-old", "okta:acme", old, b"raw bytes", kind="event")])
    report = purge(ledger, ledger.payloads, now=NOW)
    assert [r.record_id for r in report.purge] == ["r-old"]
    assert verify_ledger(ledger, payloads=ledger.payloads).ok


def test_record_without_time_runs_retention_from_sealing(ledger) -> None:
    from accessproof.store.schema import create_table_sql

    conn = ledger.storage.conn
    conn.execute(create_table_sql("raw_records"))
    conn.execute("INSERT INTO raw_records (raw_id, data) VALUES ('no-time', 'x'::BLOB)")
    sealed_at = datetime(2019, 1, 1, tzinfo=UTC)
    ledger.seal([SealRecord("raw", "no-time", "okta:acme", None, b"x", kind="event")], sealed=sealed_at)
    entry = ledger.entry(0)
    assert b'"time"' not in entry and b'"sealed":"2019-01-01T00:00:00Z"' in entry
    assert [r.record_id for r in purge(ledger, ledger.payloads, now=NOW, dry_run=True).purge] == ["no-time"]


def test_purge_then_compaction_keeps_the_ledger_verifying(store_url: str, any_ledger) -> None:
    """``retention purge`` compacts after purging (DuckDB rewrites the file, PostgreSQL the payload
    tables); either way the purged payload stays gone and the ledger verifies."""
    old = datetime(2015, 1, 1, tzinfo=UTC)
    seal_raw(any_ledger, [SealRecord("raw", f"r-{i}", "okta:acme", old, b"old %d" % i, kind="event")
                          for i in range(3)])
    assert len(purge(any_ledger, any_ledger.payloads, now=NOW).purge) == 3
    any_ledger.close()
    compact_store(store_url)
    led = reopen(store_url)
    assert db_execute(led.storage.conn, "SELECT count(*) FROM raw_records WHERE data IS NULL") == [(3,)]
    result = verify_ledger(led, payloads=led.payloads)
    assert result.ok and result.payloads_purged == 3, result.summary()
    led.close()
