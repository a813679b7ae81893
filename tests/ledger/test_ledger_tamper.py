"""Tampering with a real ledger, on DuckDB and on PostgreSQL: every kind of change is found and located."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from unittest.mock import patch

import pytest

from accessproof.ledger import Ledger, make_entry, vechash, verify_ledger
from accessproof.ledger import verify as verify_module
from accessproof.ledger.merkle import leaf_hashes
from accessproof.ledger.note import Signer
from accessproof.ledger.tiles import Edge
from tests.store.conftest import backup_store, db_execute, restore_store

from .conftest import T0, raw_records, reopen, seal_raw

N = 700  # crosses level-0 tile boundaries and makes a level-1 tile


@pytest.fixture
def sealed(any_ledger: Ledger) -> Ledger:
    ledger = any_ledger
    seal_raw(ledger, raw_records(400))
    ledger.checkpoint()
    seal_raw(ledger, raw_records(N - 400, 400))
    ledger.checkpoint()
    report = verify_ledger(ledger, payloads=ledger.payloads)
    assert report.ok, report.summary()
    assert report.payloads_checked == N
    return ledger


def _sql(led: Ledger, sql: str, params: list | None = None) -> list[tuple]:
    return db_execute(led.storage.conn, sql, params or [])


def _verify(led: Ledger, **kw):
    report = verify_ledger(led, payloads=led.payloads, **kw)
    assert not report.ok
    tree = [p for p in report.problems if p.kind not in ("payload", "unsealed")]
    # leaves hashed by the database, in Python, or as the default picks (column hashing where polars-hash
    # is installed, hashlib where not), in one chunk or in several read ahead, payloads joined in one
    # batch or in several shaped by concurrent threads: the same findings
    for small in (False, True):
        small_chunks = patch.multiple(
            verify_module, CHUNK=256, FIRST_CHUNK=256, VECTOR_CHUNK=256, ROW_BATCH=100
        )
        with small_chunks if small else nullcontext():
            for db_hashing, columns in ((True, True), (False, True), (None, True), (None, False)):
                for payloads in (led.payloads, None):
                    with patch.object(vechash, "AVAILABLE", columns and vechash.AVAILABLE):
                        other = verify_ledger(led, payloads=payloads, db_hashing=db_hashing, **kw)
                    assert [p for p in other.problems if p.kind not in ("payload", "unsealed")] == tree
    return report


def _rewrite_tiles(led: Ledger) -> None:
    """What a careful attacker does after editing entries: recompute every tile to match."""
    size = led.storage.size()
    entries = led.storage.read_entries(0, size)[1]
    _sql(led, "DELETE FROM ledger_tiles")
    _sql(led, "DELETE FROM ledger_partial_tiles")
    led.storage.write_tiles(Edge().extend(leaf_hashes(entries))[1])
    led._edge = None


def test_changed_payload_byte(sealed: Ledger) -> None:
    _sql(sealed, "UPDATE raw_records SET data = 'payload 123 for somebody'::BLOB WHERE raw_id = 'raw-000123'")
    report = _verify(sealed)
    assert report.first_bad_index == 123
    assert "does not match its sealed hash" in report.first_problem().message


@pytest.mark.parametrize("retile", [False, True])
def test_changed_entry_byte(sealed: Ledger, retile: bool) -> None:
    data = bytes(_sql(sealed, "SELECT entry FROM ledger_entries WHERE idx = 500")[0][0])
    _sql(sealed, "UPDATE ledger_entries SET entry = ? WHERE idx = 500", [data.replace(b"okta", b"okTa")])
    if retile:
        _rewrite_tiles(sealed)
    report = _verify(sealed)
    if retile:  # tiles agree with the forged entry, the signed checkpoints do not
        assert any(p.kind == "checkpoint" for p in report.problems)
    else:
        assert report.first_bad_index == 500


def test_deleted_entry(sealed: Ledger) -> None:
    _sql(sealed, "DELETE FROM ledger_entries WHERE idx = 42")
    report = _verify(sealed)
    assert report.first_bad_index == 42
    assert "missing" in report.first_problem().message


def test_deleted_raw_record(sealed: Ledger) -> None:
    _sql(sealed, "DELETE FROM raw_records WHERE raw_id = 'raw-000077'")
    report = _verify(sealed)
    assert report.first_bad_index == 77
    assert "no purge manifest" in report.first_problem().message


def test_swapped_entries(sealed: Ledger) -> None:
    _sql(sealed, "UPDATE ledger_entries SET idx = -1 WHERE idx = 10")
    _sql(sealed, "UPDATE ledger_entries SET idx = 10 WHERE idx = 600")
    _sql(sealed, "UPDATE ledger_entries SET idx = 600 WHERE idx = -1")
    report = _verify(sealed)
    assert report.first_bad_index == 10
    assert {p.index for p in report.problems if p.kind == "entry"} == {10, 600}


def test_swapped_payloads(sealed: Ledger) -> None:
    _sql(sealed, "UPDATE raw_records SET raw_id = 'tmp' WHERE raw_id = 'raw-000005'")
    _sql(sealed, "UPDATE raw_records SET raw_id = 'raw-000005' WHERE raw_id = 'raw-000006'")
    _sql(sealed, "UPDATE raw_records SET raw_id = 'raw-000006' WHERE raw_id = 'tmp'")
    assert _verify(sealed).first_bad_index == 5


def test_truncated_log(sealed: Ledger) -> None:
    _sql(sealed, "DELETE FROM ledger_entries WHERE idx >= 650")
    report = _verify(sealed)
    assert report.first_bad_index == 650
    _rewrite_tiles(sealed)  # even with tiles made to fit, the last checkpoint is beyond the log
    report = _verify(sealed)
    assert report.first_bad_index == 650
    assert any("truncated" in p.message for p in report.problems)


def test_inserted_in_the_middle(sealed: Ledger) -> None:
    _sql(sealed, "UPDATE ledger_entries SET idx = idx + 1 WHERE idx >= 300")
    forged = make_entry("raw", "raw-forged", "okta:acme", T0, b"forged", "provisioning_logs")
    _sql(
        sealed,
        "INSERT INTO ledger_entries (idx, entry, record_type, record_id) VALUES (300, ?, 'raw', 'x')",
        [forged],
    )
    assert _verify(sealed).first_bad_index == 300
    _rewrite_tiles(sealed)
    assert any(p.kind == "checkpoint" for p in _verify(sealed).problems)


def test_unsealed_record_in_store(sealed: Ledger) -> None:
    _sql(sealed, "INSERT INTO raw_records (raw_id, data) VALUES ('raw-sneaky', 'x'::BLOB)")
    report = _verify(sealed)
    assert any(p.kind == "unsealed" and "raw-sneaky" in p.message for p in report.problems)


def test_replaced_checkpoint(sealed: Ledger) -> None:
    row = sealed.checkpoints()[0]
    other = Signer.generate(sealed.origin)  # same name, another key
    _sql(
        sealed,
        "UPDATE ledger_checkpoints SET note = ? WHERE size = ?",
        [other.sign(row.note.split("\n\n")[0] + "\n"), row.size],
    )
    report = _verify(sealed)
    assert any(p.kind == "checkpoint" and "not validly signed" in p.message for p in report.problems)


def test_checkpoint_with_a_different_root(sealed: Ledger) -> None:
    # signed with the store's own key (an attacker holding it), but not the tree that is stored
    row = sealed.checkpoints()[0]
    from accessproof.ledger.note import format_checkpoint

    forged = sealed.signer.sign(format_checkpoint(sealed.origin, row.size, b"\x07" * 32))
    _sql(
        sealed,
        "UPDATE ledger_checkpoints SET note = ?, root = ? WHERE size = ?",
        [forged, b"\x07" * 32, row.size],
    )
    report = _verify(sealed)
    assert any("does not match the stored tree" in p.message for p in report.problems)
    assert any("not consistent" in p.message for p in report.problems)


def test_rolled_back_store_vs_exported_checkpoint(store_url: str, tmp_path: Path, sealed: Ledger) -> None:
    sealed.close()
    backup = tmp_path / "backup.duckdb"
    backup_store(store_url, backup)  # the store as it was at 700 entries
    led = reopen(store_url)
    seal_raw(led, raw_records(100, N))
    exported = led.checkpoint().note  # an auditor keeps this one outside the store
    assert verify_ledger(led, payloads=led.payloads, against=exported).ok
    led.close()
    restore_store(store_url, backup)  # roll the whole store back, checkpoints and all
    led = reopen(store_url)
    assert verify_ledger(led, payloads=led.payloads).ok  # self-consistent...
    report = verify_ledger(led, payloads=led.payloads, against=exported)
    assert not report.ok and report.first_bad_index == N  # ...but not what was exported
    assert "rolled back" in report.first_problem().message
    led.close()


def test_rewritten_store_vs_exported_checkpoint(sealed: Ledger) -> None:
    exported = sealed.checkpoints()[-1].note
    _sql(sealed, "DELETE FROM ledger_checkpoints")
    _sql(
        sealed,
        "UPDATE ledger_entries SET entry = ? WHERE idx = 1",
        [make_entry("raw", "raw-000001", "okta:acme", T0, b"x", "provisioning_logs")],
    )
    _rewrite_tiles(sealed)
    sealed.checkpoint()  # re-signed after the rewrite with the store's key
    report = verify_ledger(sealed, against=exported)
    assert any(p.kind == "rollback" for p in report.problems)


class _PlainPayloads:
    """A payload store without the DuckDB fast path: verification hashes payloads in Python."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def get(self, refs):
        return self.inner.get(refs)

    def purge(self, refs):
        return self.inner.purge(refs)

    def record_ids(self):
        return self.inner.record_ids()


def test_portable_payload_path_finds_the_same_problems(sealed: Ledger) -> None:
    plain = _PlainPayloads(sealed.payloads)
    assert verify_ledger(sealed, payloads=plain).ok
    _sql(sealed, "UPDATE raw_records SET data = 'x'::BLOB WHERE raw_id = 'raw-000321'")
    _sql(sealed, "DELETE FROM raw_records WHERE raw_id = 'raw-000654'")
    _sql(sealed, "INSERT INTO raw_records (raw_id, data) VALUES ('raw-sneaky', 'x'::BLOB)")
    for store in (plain, sealed.payloads):
        report = verify_ledger(sealed, payloads=store)
        assert report.first_bad_index == 321
        assert {p.kind for p in report.problems} == {"payload", "unsealed"}
        assert any(p.index == 654 and "missing" in p.message for p in report.problems)


def test_payloads_in_many_small_batches_are_all_checked(sealed: Ledger) -> None:
    """The payload join read in batches of 64 and shaped by concurrent threads: every payload is
    checked once, and a changed one in the last batch is still found."""
    with patch.multiple(verify_module, ROW_BATCH=64, SHAPERS=3):
        report = verify_ledger(sealed, payloads=sealed.payloads)
        assert report.ok and report.payloads_checked == N
        _sql(sealed, "UPDATE raw_records SET data = 'changed'::BLOB WHERE raw_id = 'raw-000699'")
        report = verify_ledger(sealed, payloads=sealed.payloads)
    assert report.payloads_checked == N - 1
    assert report.first_bad_index == N - 1 and "does not match its sealed hash" in report.first_problem().message
