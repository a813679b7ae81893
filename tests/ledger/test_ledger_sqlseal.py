"""Sealing from a query: DuckDB's entries are byte for byte the ones ``make_entries`` writes."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pytest

from accessproof.ledger import EntryError, decode_entry, sqlseal
from accessproof.ledger import entry as entry_mod
from accessproof.ledger.entry import make_entries
from accessproof.ledger.merkle import MemoryTree, leaf_hashes
from accessproof.ledger.sqlseal import query_entries

from .conftest import T0, raw_records, seal_raw

SEALED = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
TRICKY = [
    "plain",
    'q"uote',
    "back\\slash",
    "\\u000B literal",
    "\\u00",
    "\\",
    '\\"\\\\',
    "".join(chr(c) for c in range(32)),
    "ctl\x0b\x1f\x7f\x80\x9f",
    "é日本😀\u2028\u2029\ufeff",
    "</script>&'",
    " ",
]
TIMES = [
    T0,
    None,
    datetime(1969, 12, 31, 23, 59, 59, 250000, tzinfo=UTC),
    datetime(5, 3, 4, 1, 2, 3, tzinfo=UTC),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    None,
    datetime(2020, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2020, 6, 1, 12, 0, 0, 120, tzinfo=timezone(timedelta(hours=-7))),
    None,
    T0,
    T0 + timedelta(microseconds=999999),
]


def _classify(record_type: str, source: str, kind: str | None, record_id: str) -> str:
    return f"ret {kind}" if kind is not None else 'r"\\\x01'


def _reference(table: pa.Table, salts: bytes, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """``make_entries`` over the same rows, drawing the same salts."""
    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    retentions = [
        _classify(t, s, k, i)
        for t, s, k, i in zip(*(cols[c] for c in ("record_type", "source", "kind", "record_id")), strict=True)
    ]
    with monkeypatch.context() as m:
        m.setattr(entry_mod.os, "urandom", lambda k: salts[:k])
        return make_entries(
            cols["record_type"],
            cols["record_id"],
            cols["source"],
            cols["time"],
            cols["payload"],
            retentions,
            sealed=SEALED,
        )


def _table(
    ids: list[str],
    sources: list[str | None],
    times: list,
    kinds: list[str | None],
    types: list[str] | None = None,
) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "record_type": types or ["raw"] * n,
            "record_id": ids,
            "source": pa.array(sources, pa.string()),
            "time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "payload": pa.array(
                [f"payload {i} {v}".encode() + b"\x00\xff" for i, v in enumerate(ids)], pa.binary()
            ),
            "kind": pa.array(kinds, pa.string()),
        }
    )


def _entries(table: pa.Table, salts: bytes, sql: str = "SELECT * FROM src") -> list[bytes]:
    con = duckdb.connect()
    con.register("src", table)
    entries, index = query_entries(con, sql, classify=_classify, sealed=SEALED, salts=salts)
    assert index.record_ids == table.column("record_id").to_pylist()
    return entries


def test_entries_equal_make_entries_on_tricky_values(monkeypatch) -> None:
    n = len(TRICKY)
    table = _table(
        [f"id {v}" for v in TRICKY],
        [f"src {v}" for v in TRICKY],
        TIMES,
        [v if i % 3 else None for i, v in enumerate(TRICKY)],
        ["raw", "quarantine", "event_2"] * (n // 3),
    )
    salts = os.urandom(16 * n)
    got = _entries(table, salts)
    assert got == _reference(table, salts, monkeypatch)
    for e in got:
        assert decode_entry(e).salt  # canonical: decodes and re-encodes to the same bytes


def test_entries_equal_make_entries_on_random_strings(monkeypatch) -> None:
    rnd = random.Random(8785)
    alphabet = [chr(c) for c in range(0, 0x80)] + ["é", "ß", "日", "😀", "\u2028", "\ufffd", "\u0085"]
    n = 500

    def text() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12)))

    table = _table(
        [text() for _ in range(n)],
        [rnd.choice(TRICKY) for _ in range(n)],
        [rnd.choice(TIMES) for _ in range(n)],
        [rnd.choice([*TRICKY[:4], None]) for _ in range(n)],
    )
    salts = os.urandom(16 * n)
    assert _entries(table, salts) == _reference(table, salts, monkeypatch)


def test_null_source_empty_id_and_null_payload_are_refused(monkeypatch) -> None:
    salts = os.urandom(32)
    bad_source = _table(["a", "b"], ["s", None], [T0, None], ["k", None])
    with pytest.raises(EntryError):
        _reference(bad_source, salts, monkeypatch)
    with pytest.raises(EntryError, match="needs a source"):
        _entries(bad_source, salts)
    with pytest.raises(EntryError, match="empty record id"):
        _entries(_table(["a", ""], ["s", "s"], [T0, None], ["k", None]), salts)
    with pytest.raises(EntryError, match="no payload"):
        _entries(
            _table(["a", "b"], ["s", "s"], [T0, None], ["k", None]),
            salts,
            "SELECT * REPLACE (NULL::BLOB AS payload) FROM src",
        )
    with pytest.raises(EntryError, match="bad record type"):
        _entries(_table(["a"], ["s"], [T0], ["k"], ["Raw"]), salts[:16])


def test_naive_time_is_refused_and_null_literal_time_is_none(monkeypatch) -> None:
    con = duckdb.connect()
    with pytest.raises(EntryError, match="time zone"):
        query_entries(
            con, "SELECT 'raw', 'a', 's', TIMESTAMP '2020-01-01', 'p'::BLOB, NULL", classify=_classify
        )
    entries, index = query_entries(
        con, "SELECT 'raw', 'a', 's', NULL, 'p'::BLOB, NULL", classify=_classify, sealed=SEALED
    )
    assert decode_entry(entries[0]).time is None
    assert index.record_times == ["2026-01-02T03:04:05.000006Z"]
    empty = "SELECT 'raw', 'a', 's', NULL, 'p'::BLOB, NULL WHERE false"
    assert query_entries(con, empty, classify=_classify)[0] == []


def test_seal_query_appends_to_the_tree(ledger) -> None:
    seal_raw(ledger, raw_records(3))
    conn = ledger.storage.conn
    conn.execute("CREATE TABLE more AS SELECT 'raw-' || i AS id, i FROM range(700) t(i)")
    first = ledger.seal_query(
        conn,
        "SELECT 'raw', id, 'okta:acme', TIMESTAMPTZ '2021-05-01 00:00:00+00' + to_seconds(i), ('p' || i)::BLOB, 'event' "
        "FROM more WHERE i >= ?",
        [200],
    )
    assert first == 3 and ledger.size == 503
    entries = ledger.storage.read_entries(0, ledger.size)[1]
    decoded = [decode_entry(bytes(e)) for e in entries]
    assert sorted(e.id for e in decoded[3:]) == sorted(f"raw-{i}" for i in range(200, 700))
    assert {e.retention for e in decoded} == {decoded[0].retention}
    assert ledger.root() == MemoryTree(leaf_hashes([bytes(e) for e in entries])).root()
    assert ledger.find("raw-250") == [next(i for i, e in enumerate(decoded) if e.id == "raw-250")]
    assert (
        ledger.seal_query(conn, "SELECT 'raw', id, 's', NULL, 'x'::BLOB, NULL FROM more WHERE false") == 503
    )


def test_payloads_digested_beforehand_give_the_same_entries(monkeypatch) -> None:
    """``with_payload_digests`` (ingest hashes while the previous batch is written) then ``digested=True``
    gives exactly ``make_entries``'s bytes for the same salts; a wrong salt or digest is refused."""
    n = len(TRICKY)
    table = _table([f"id {v}" for v in TRICKY], [f"src {v}" for v in TRICKY], TIMES,
                   [v if i % 3 else None for i, v in enumerate(TRICKY)])
    salts = os.urandom(16 * n)
    with monkeypatch.context() as m:
        m.setattr(sqlseal.os, "urandom", lambda k: salts[:k])
        digested = sqlseal.with_payload_digests(table, "payload")
    con = duckdb.connect()
    con.register("src", digested)
    sql = "SELECT record_type, record_id, source, time, salt, payload_sha256, kind FROM src"
    entries, _ = query_entries(con, sql, classify=_classify, sealed=SEALED, digested=True)
    assert entries == _reference(table, salts, monkeypatch)
    for bad in ("SELECT * REPLACE (salt || '\\x00'::BLOB AS salt) FROM src",
                "SELECT * REPLACE (upper(payload_sha256) AS payload_sha256) FROM src",
                "SELECT * REPLACE (NULL AS payload_sha256) FROM src"):
        con.register("bad", con.sql(bad).to_arrow_table())
        with pytest.raises(EntryError, match="salt"):
            query_entries(con, sql.replace("FROM src", "FROM bad"), classify=_classify, digested=True)
