"""The fast payload path cuts salt and payload_sha256 out of entries in SQL instead of decoding them.

It is exact: an entry is only taken on that path when its bytes prove that what is cut out is what
``decode_entry`` reads (``payloads.FAST_SHAPE``, in SQL or in polars); every other entry is decoded. These tests throw canonical, odd, forged and randomly mutated entries at it and check
the decoder agrees on every entry the fast path accepts, and that verification finds the same problems on
the fast and the portable path.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest

from accessproof.ledger import Ledger, decode_entry, make_entry, verify_ledger
from accessproof.ledger import payloads as payloads_module
from accessproof.ledger.duckdb_storage import DuckDBLedgerStorage
from accessproof.ledger.entry import EntryError
from accessproof.ledger.payloads import DuckDBPayloads
from accessproof.ledger.storage import EntryIndex

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, params=["polars", "sql"])
def shape_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the shape tests in polars (``fastshape``) and in DuckDB SQL (``FAST_SHAPE``)."""
    if request.param == "polars" and not payloads_module.fastshape_in_polars():
        pytest.skip("polars-hash is not installed")
    monkeypatch.setattr(payloads_module, "USE_POLARS", request.param == "polars")
    return request.param


IDS = [
    "raw-1",
    "ünïcødé-ид-😀",
    "with space",
    "per%cent_under_",
    'quote"inside',
    "back\\slash",
    "tab\there",
    "nl\nhere",
    '","payload_sha256":"',
    "\u2028sep",
    "x" * 300,
    "del\x7f",
]


def _canonical() -> list[tuple[bytes, str, str, str]]:
    """(entry, type, id, retention) of real entries: every id above, with and without subject and time."""
    out = []
    for i, base in enumerate(IDS):
        for j, (subject, time) in enumerate(
            (s, t) for s in (None, "user@acme.com", 'o"dd') for t in (T, None)
        ):
            rid = f"{base}/{j}"  # ids are unique in a store
            rtype = ("raw", "quarantine", "control_result", "event")[i % 4]
            retention = ("provisioning_logs", "keep_%_", "r\\x")[i % 3]
            payload = f"payload of {rid}".encode()
            entry = make_entry(rtype, rid, "okta:acme", time, payload, retention, subject=subject, sealed=T)
            out.append((entry, rtype, rid, retention))
    return out


def _forged(entry: bytes) -> list[bytes]:
    """Hand-made near misses of one canonical entry (one with a time and no subject)."""
    text = entry.decode()
    salt = decode_entry(entry).salt
    return [
        e.encode() if isinstance(e, str) else e
        for e in [
            text.replace(',"source":', ',"id":"evil","source":'),  # a second id
            text.replace(',"time":', ',"type":"quarantine","time":'),  # a second type
            text.replace(',"time":"', ',"subject":"x","id":"evil","time":"').replace(',"subject":"x"', ""),
            text.replace('"source":"okta:acme"', '"source":"okta","id":"evil"'),
            text.replace('"source":"okta:acme"', '"source":"ok\x01ta"'),  # raw control character
            text.encode().replace(b"okta", b"ok\xfftt"),  # not UTF-8
            text.replace('"source":"okta:acme"', '"source":"ok\\u0022ta"'),  # an escape
            text.replace(salt, salt.upper()),
            text.replace(salt, "zz" + salt[2:]),
            text.replace(salt, salt[:-1]),
            text.replace(":", ": ", 1),
            text[:-1] + ',"extra":"x"}',
            text + " ",
            text[:-1],
            text.replace('"time":', '"subject":null,"time":'),
            text.replace('{"id":', '{"retention":"r","id":', 1),
            '{"payload_sha256":' + text.split('"payload_sha256":', 1)[1].replace("}", ',"id":"raw-1"}'),
            # two key literals sharing a '"', one '"' more elsewhere to keep the count
            text.replace('"source":"okta:acme","time":"', '"source":","time":"a"b'),
            text.replace('"source":"okta:acme"', '"source":"a","source":"b"'),  # a key twice
            text.replace('"source":"okta:acme"', '"source":"","time":"'),  # time twice
            text.replace(salt, ('","time":"' + "0" * 32)[:32]),  # a key literal inside the salt
            text.replace(',"source":"okta:acme","time":"', ',"time":"x","source":"okta:acme","subject":"'),
            text.replace(',"source":"okta:acme"', ""),  # no source
            text.replace('"sealed":"', '"sealed":",', 1),  # a value that is just ','
            # keys out of order: valid, and the decoder reads the same fields
            text.replace(',"source":"okta:acme","time":"', ',"time":"x","source":"okta:acme","subject":"'),
        ]
    ]


def _mutations(entries: list[bytes], n: int, seed: int = 9) -> list[bytes]:
    rnd = random.Random(seed)
    alphabet = [b'"', b"\\", b":", b",", b"{", b"}", b"\x01", b"\xff", b"a", b"0", b" ", b"%", b"_"]
    out = []
    for _ in range(n):
        e = bytearray(rnd.choice(entries))
        for _ in range(rnd.choice((1, 1, 2, 3))):
            pos = rnd.randrange(len(e))
            op = rnd.random()
            if op < 0.4:
                e[pos : pos + 1] = rnd.choice(alphabet)
            elif op < 0.8:
                e[pos:pos] = rnd.choice(alphabet)
            else:
                del e[pos]
        out.append(bytes(e))
    return out


def _rows(cases: list[tuple[bytes, str | None, str | None, str | None]]) -> pa.Table:
    """What ``entry_rows`` makes of entries stored with the given lookup columns."""
    conn = duckdb.connect()
    DuckDBLedgerStorage(conn).setup()
    conn.execute("CREATE TABLE raw_records (raw_id VARCHAR, data BLOB)")
    conn.execute("CREATE TABLE quarantine (quarantine_id VARCHAR, data BLOB)")
    table = pa.table(
        {
            "idx": pa.array(range(len(cases)), pa.int64()),
            "entry": pa.array([c[0] for c in cases], pa.binary()),
            "record_type": pa.array([c[1] or "" for c in cases], pa.string()),
            "record_id": pa.array([c[2] or "" for c in cases], pa.string()),
            "retention": pa.array([c[3] for c in cases], pa.string()),
        }
    )
    conn.register("cases", table)
    conn.execute(
        "INSERT INTO ledger_entries (idx, entry, record_type, record_id, retention) SELECT * FROM cases"
    )
    rows = pa.Table.from_batches(list(DuckDBPayloads(conn).entry_rows(len(cases))))
    conn.close()
    return rows.sort_by("idx")


def _assert_exact(rows: pa.Table, claims: dict[int, tuple[str, str]]) -> int:
    """Every row the fast path accepts decodes to exactly what it cut out; returns how many it accepted."""
    accepted = 0
    for i in range(rows.num_rows):
        row = rows.slice(i, 1)
        if row.column("shape")[0].as_py() is None:
            continue
        accepted += 1
        entry = row.column("entry")[0].as_py()
        try:
            e = decode_entry(entry, canonical=False)
        except EntryError as exc:  # pragma: no cover - would be a hole in the proof
            pytest.fail(f"fast path accepted an entry the decoder rejects ({exc}): {entry!r}")
        rtype, rid = claims[row.column("idx")[0].as_py()]
        assert (e.type, e.id) == (rtype, rid), entry
        assert e.payload_sha256 == row.column("digest")[0].as_py(), entry
        assert e.salt == row.column("salt")[0].as_py(), entry
    return accepted


def test_canonical_entries_take_the_fast_path_exactly() -> None:
    canonical = _canonical()
    rows = _rows([(e, t, r, ret) for e, t, r, ret in canonical])
    claims = {i: (t, r) for i, (_e, t, r, _ret) in enumerate(canonical)}
    accepted = _assert_exact(rows, claims)
    plain = sum(1 for e, *_ in canonical if b"\\" not in e and e.isascii() and b"\x7f" not in e)
    assert accepted == plain  # every entry of printable ASCII without an escape is fast; others are decoded
    assert plain >= 10


def test_wrong_lookup_columns_are_never_fast() -> None:
    entry, rtype, rid, retention = _canonical()[0]
    cases = [
        (entry, rtype, rid + "x", retention),
        (entry, rtype, rid[:-1], retention),
        (entry, "quarantine", rid, retention),
        (entry, rtype, rid, retention + "x"),
        (entry, rtype, rid, None),
        # an id holding what looks like a key, with lookup columns to match: never believed
        (entry.replace(b'{"id":"', b'{"id":"x","time":"y'), rtype, 'x","time":"y' + rid, retention),
    ]
    rows = _rows(cases)
    assert rows.column("shape").null_count == len(cases)


def test_forged_and_mutated_entries_are_never_misread() -> None:
    canonical = _canonical()
    base = [c for c in canonical if b"\\" not in c[0] and b'"subject"' not in c[0] and b'"time"' in c[0]]
    cases = []
    for entry, rtype, rid, retention in base:
        cases += [(f, rtype, rid, retention) for f in _forged(entry)]
        cases += [(f, "raw", "evil", retention) for f in _forged(entry)]
    by_entry = {c[0]: c for c in canonical}
    for m in _mutations([c[0] for c in canonical], 3000):
        # claims as stored for the entry it came from, when it still starts like one
        src = next((c for e, c in by_entry.items() if m[:20] == e[:20]), canonical[0])
        cases.append((m, src[1], src[2], src[3]))
    rows = _rows(cases)
    claims = {i: (c[1], c[2]) for i, c in enumerate(cases)}
    accepted = _assert_exact(rows, claims)
    changed = sum(1 for c in cases if c[0] not in by_entry)
    assert changed > 2500 and 20 < accepted < len(cases)  # mutations that keep the shape stay fast


def _cases() -> list[tuple[bytes, str | None, str | None, str | None]]:
    canonical = _canonical()
    cases = [(e, t, r, ret) for e, t, r, ret in canonical]
    for entry, rtype, rid, retention in canonical[:6]:
        cases += [(f, rtype, rid, retention) for f in _forged(entry)]
    cases += [(m, "raw", "x", "keep") for m in _mutations([c[0] for c in canonical], 1500)]
    cases += [(b"\xff\xfe not utf-8", "raw", "y", "keep"), (b"", "raw", "", None)]
    return cases


def test_polars_and_sql_give_the_same_columns(shape_engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two engines of ``entry_rows`` agree on every column of every row, odd input included."""
    if shape_engine != "polars":
        pytest.skip("compares the polars engine with SQL")
    cases = _cases()
    polars = _rows(cases)
    monkeypatch.setattr(payloads_module, "USE_POLARS", False)
    sql = _rows(cases)
    assert polars.schema == sql.schema
    for name in sql.column_names:
        assert polars.column(name).to_pylist() == sql.column(name).to_pylist(), name
    assert 0 < polars.column("shape").null_count < len(cases)


class _Portable:
    """The same store without the fast path."""

    def __init__(self, inner: DuckDBPayloads) -> None:
        self.inner = inner

    def get(self, refs):
        return self.inner.get(refs)

    def purge(self, refs):
        return self.inner.purge(refs)

    def record_ids(self):
        return self.inner.record_ids()


def test_fast_and_portable_paths_find_the_same(ledger: Ledger) -> None:
    """A ledger whose tree is sound but whose entries are odd: both paths must report the same things."""
    conn = ledger.storage.conn
    conn.execute("CREATE TABLE raw_records (raw_id VARCHAR, data BLOB)")
    canonical = [c for c in _canonical() if c[1] == "raw"]
    entries, types, ids, times, retentions = [], [], [], [], []
    rows = []
    for n, (entry, rtype, rid, retention) in enumerate(canonical):
        e = decode_entry(entry)
        entries.append(entry)
        types.append(rtype)
        ids.append(rid if n % 5 else rid + "-lie")  # every fifth lookup column lies
        times.append(e.record_time)
        retentions.append(retention)
        payload = f"payload of {rid}".encode()
        if n % 7 == 3:
            payload += b"!"  # changed payload
        if n % 11 != 4:  # else deleted payload
            rows.append((rid, payload))
    forged = _forged(canonical[0][0])
    for f in forged:
        entries.append(f)
        types.append("raw")
        ids.append(canonical[0][2])
        times.append(T.isoformat())
        retentions.append(canonical[0][3])
    rows.append(("never-sealed", b"x"))
    ledger._append(entries, EntryIndex(types, ids, times, retentions))
    table = pa.table({"raw_id": [r[0] for r in rows], "data": pa.array([r[1] for r in rows], pa.binary())})
    conn.register("rows_", table)
    conn.execute("INSERT INTO raw_records SELECT * FROM rows_")
    fast = verify_ledger(ledger, payloads=ledger.payloads)
    portable = verify_ledger(ledger, payloads=_Portable(ledger.payloads))
    assert not fast.ok
    assert [(p.index, p.kind, p.message) for p in fast.problems] == [
        (p.index, p.kind, p.message) for p in portable.problems
    ]
    counts = ("payloads_checked", "payloads_purged", "payloads_unchecked", "problem_count")
    assert [getattr(fast, c) for c in counts] == [getattr(portable, c) for c in counts]
    assert fast.payloads_checked > 0
