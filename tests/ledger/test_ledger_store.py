"""The DuckDB-backed ledger: incremental tiles agree with a from-scratch tree at every size."""

from __future__ import annotations

import random

import pytest

from accessproof.ledger import EntryError, LedgerError, decode_entry, make_entry, verify_ledger
from accessproof.ledger.merkle import MemoryTree, leaf_hashes, verify_consistency, verify_inclusion
from accessproof.ledger.tiles import tile_keys

from .conftest import T0, raw_records, reopen


def _all_entries(led) -> list[bytes]:
    return led.storage.read_entries(0, led.size)[1]


def test_incremental_appends_match_reference_tree(ledger) -> None:
    rnd = random.Random(1)
    n = 0
    for batch in [1, 1, 2, 5, 247, 256, 1, 511, 3000, 66000, 7]:
        first = ledger.seal(raw_records(batch, n))
        assert first == n
        n += batch
        tree = MemoryTree(leaf_hashes(_all_entries(ledger)))
        assert ledger.root() == tree.root()
        keys = [tuple(k) for k in ledger.storage.tile_keys()]
        assert keys == tile_keys(n)
        for _ in range(10):
            i = rnd.randrange(n)
            s = rnd.randint(i + 1, n)
            proof = ledger.inclusion_proof(i, s)
            assert proof == tree.inclusion_proof(i, s)
            verify_inclusion(i, s, tree.levels[0][i], proof, tree.root(s))
            o = rnd.randint(0, n)
            cproof = ledger.consistency_proof(o)
            assert cproof == tree.consistency_proof(o)
            verify_consistency(o, n, tree.root(o), tree.root(), cproof)
            assert ledger.root(s) == tree.root(s)


def test_reopen_reloads_the_right_edge(store_dir, ledger) -> None:
    ledger.seal(raw_records(300))
    ledger.close()
    led = reopen(store_dir)
    led.seal(raw_records(300, 300))
    assert led.root() == MemoryTree(leaf_hashes(_all_entries(led))).root()
    led.close()


def test_seal_joins_the_callers_transaction_and_survives_rollback(ledger) -> None:
    ledger.seal(raw_records(10))
    conn = ledger.storage.conn
    conn.execute("BEGIN TRANSACTION")
    ledger.seal(raw_records(300, 10))
    assert ledger.size == 310
    conn.execute("ROLLBACK")
    assert ledger.size == 10
    ledger.seal(raw_records(5, 10))
    assert ledger.root() == MemoryTree(leaf_hashes(_all_entries(ledger))).root()


def test_append_validates_entries(ledger) -> None:
    good = make_entry("event", "e1", "okta:acme", T0, b"x", "provisioning_logs")
    assert ledger.append([good]) == 0
    assert ledger.find("e1") == [0]
    with pytest.raises(EntryError):
        ledger.append([b'{"not":"an entry"}'])
    with pytest.raises(EntryError):
        ledger.append([b"x" * (64 * 1024 + 1)])
    with pytest.raises(LedgerError):
        ledger.inclusion_proof(5)


def test_checkpoints_chain_and_refuse_an_inconsistent_tree(ledger) -> None:
    ledger.seal(raw_records(100))
    first = ledger.checkpoint()
    assert first.size == 100 and ledger.checkpoint() == first  # nothing new: same checkpoint
    ledger.seal(raw_records(50, 100))
    second = ledger.checkpoint()
    assert second.size == 150 and len(ledger.checkpoints()) == 2
    # rewrite an old entry and its tiles so the stored tree is self-consistent but not the signed one
    conn = ledger.storage.conn
    conn.execute(
        "UPDATE ledger_entries SET entry = ? WHERE idx = 3",
        [make_entry("raw", "raw-000003", "okta:acme", T0, b"forged", "provisioning_logs")],
    )
    from accessproof.ledger.tiles import Edge

    entries = _all_entries(ledger)
    _, writes = Edge().extend(leaf_hashes(entries))
    ledger.storage.write_tiles(writes)
    ledger._edge = None
    ledger.seal(raw_records(1, 150))
    with pytest.raises(LedgerError, match="refusing to sign"):
        ledger.checkpoint()


def test_find_and_entry(ledger) -> None:
    ledger.seal(raw_records(3))
    assert ledger.find("raw-000001") == [1]
    assert ledger.find("raw-000001", "event") == []
    assert b'"id":"raw-000002"' in ledger.entry(2)


def test_seal_table_from_a_query(ledger) -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "record_type": ["raw", "raw"],
            "record_id": ["a", "b"],
            "source": ["servicenow:acme", "okta:acme"],
            "time": pa.array([T0, None], pa.timestamp("us", tz="UTC")),
            "payload": pa.array([b"1", b"2"], pa.binary()),
            "kind": ["workflow", "event"],
        }
    )
    assert ledger.seal_table(table) == 0
    entries = [decode_entry(e) for e in _all_entries(ledger)]
    assert [e.retention for e in entries] == ["approval_records", "provisioning_logs"]
    assert entries[0].time == "2020-01-01T00:00:00Z" and entries[1].time is None
    with pytest.raises(LedgerError, match="missing columns"):
        ledger.seal_table(table.drop_columns(["payload"]))


def test_open_read_only_store_and_prove(store_dir, ledger) -> None:
    import duckdb

    from accessproof.ledger import open_ledger
    from accessproof.ledger.api import db_path

    ledger.seal(raw_records(20))
    ledger.checkpoint()
    ledger.close()
    conn = duckdb.connect(str(db_path(store_dir)), read_only=True)
    led = open_ledger(store_dir, conn)
    assert led.size == 20 and len(led.inclusion_proof(7)) == 5
    assert verify_ledger(led).ok
    conn.close()


def test_database_leaf_hashes_equal_python_ones(ledger) -> None:
    from accessproof.ledger.merkle import leaf_hashes

    ledger.seal(raw_records(700))
    assert ledger.storage.leaf_hashes_blob(0, 700) == b"".join(leaf_hashes(_all_entries(ledger)))
    assert ledger.storage.leaf_hashes_blob(0, 701) is None  # one missing
    ledger.storage.conn.execute("DELETE FROM ledger_entries WHERE idx = 5")
    assert ledger.storage.leaf_hashes_blob(0, 700) is None


def test_arrow_entries_are_the_stored_ones_in_order(ledger) -> None:
    from accessproof.ledger.merkle import leaf_hashes, leaf_hashes_at
    from accessproof.ledger.verify import _packed

    ledger.seal(raw_records(700))
    entries = _all_entries(ledger)
    arr = ledger.storage.entries_arrow(256, 700)
    assert arr.to_pylist() == entries[256:]
    assert leaf_hashes_at(*_packed(arr)) == leaf_hashes(entries[256:])
    conn = ledger.storage.conn
    conn.execute("UPDATE ledger_entries SET idx = -1 WHERE idx = 300")  # rows move: still in idx order
    conn.execute("UPDATE ledger_entries SET idx = 300 WHERE idx = -1")
    assert ledger.storage.entries_arrow(256, 700).to_pylist() == entries[256:]
    conn.execute("UPDATE ledger_entries SET idx = 699 WHERE idx = 698")  # a gap and a repeat
    assert ledger.storage.entries_arrow(256, 700) is None
    conn.execute("DELETE FROM ledger_entries WHERE idx = 699")
    assert ledger.storage.entries_arrow(256, 700) is None


def test_verification_leaves_the_switch_interval_as_it_found_it(ledger) -> None:
    import sys

    ledger.seal(raw_records(50))
    before = sys.getswitchinterval()
    assert verify_ledger(ledger).ok
    assert sys.getswitchinterval() == before
