"""Sealing straight from a query: DuckDB builds the canonical entries, Python only draws the salts.

``make_entries`` costs ~10 µs a record in Python, which halved ingest throughput. Here the rows never
become Python objects: the SELECT's result comes back as Arrow, the salts are one ``os.urandom`` call
handed in as an Arrow column, hashlib computes SHA-256(salt ‖ payload) (the one per-row Python step:
OpenSSL's SHA-256 is several times faster than DuckDB's), and DuckDB assembles the entry text
with exactly the bytes ``make_entries`` writes (RFC 8785: sorted keys, minimal escaping). Strings are
escaped with DuckDB's ``to_json``, except strings holding control characters: ``to_json`` spells some of
those with upper-case hex (``\\u001F``) where RFC 8785 wants lower case, so those few are escaped by an
explicit ``replace`` chain built from msgspec's own escapes. Retention classes are resolved in Python
once per distinct (type, source, kind). Tests check byte equality with ``make_entries``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger import vechash
from accessproof.ledger.entry import MAX_ENTRY_BYTES, SALT_BYTES, EntryError, _check, iso_utc
from accessproof.ledger.storage import EntryIndex

if TYPE_CHECKING:
    from accessproof.ledger.ledger import Ledger

COLUMNS = ("record_type", "record_id", "source", "time", "payload", "kind")
#: the columns of a query whose payloads were hashed beforehand (``with_payload_digests``)
DIGESTED_COLUMNS = ("record_type", "record_id", "source", "time", "salt", "payload_sha256", "kind")
_HEX64 = "^[0-9a-f]{64}$"
_TIME_TYPE = pa.timestamp("us", tz="UTC")
_counter = itertools.count()
_json = msgspec.json.Encoder()


def _escape_chain(col: str) -> str:
    """JSON string of ``col`` by explicit replaces: backslash and quote first, then each control char."""
    expr = f"replace(replace({col}, '\\', '\\\\'), '\"', '\\\"')"
    for code in range(32):
        esc = msgspec.json.encode(chr(code)).decode()[1:-1]
        expr = f"replace({expr}, chr({code}), '{esc}')"
    return f"('\"' || {expr} || '\"')"


def _json_str(col: str, json_col: str) -> str:
    """SQL for the RFC 8785 JSON string of VARCHAR ``col`` (as msgspec writes it), given ``json_col`` =
    ``to_json(col)``. A control character always shows as ``\\u00`` there; only then (rare) the
    explicit chain runs, since ``to_json`` writes some of them in upper-case hex."""
    return f"CASE WHEN contains({json_col}, '\\u00') THEN {_escape_chain(col)} ELSE {json_col} END"


def _time_text(col: str) -> str:
    """``iso_utc`` in SQL: UTC, seconds, and six fraction digits only when there are microseconds."""
    ts = f"make_timestamp(epoch_us({col}))"
    return (
        f"CASE WHEN epoch_us({col}) % 1000000 = 0 THEN strftime({ts}, '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime({ts}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def _entry_sql(rows: str, classes: str) -> str:
    """The entries, in row order. The per-class pieces (retention, source, type: few distinct values) are
    written by msgspec in Python; the per-row ones (id, digest, salt, time) here."""
    entry = (
        f"""'{{"id":' || {_json_str("q.record_id", "q.id_json")} || ',"payload_sha256":"'"""
        " || q.digest || c.after_digest || lower(hex(q.salt)) || c.after_salt"
        """ || coalesce(',"time":"' || q.time_text || '"', '') || c.tail"""
    )
    return f"""
        SELECT q.record_type, q.record_id, coalesce(q.time_text, $sealed) AS index_time, c.retention,
               encode({entry}) AS entry
        FROM (SELECT *, {_time_text("time")} AS time_text, CAST(to_json(record_id) AS VARCHAR) AS id_json
              FROM {rows}) q
        JOIN {classes} c ON q.record_type = c.record_type AND q.source = c.source
             AND q.kind IS NOT DISTINCT FROM c.kind
        ORDER BY q._i"""


def _class_table(classes: list[tuple[str, str, str | None, str]], sealed_text: str) -> pa.Table:
    """One row per (type, source, kind) with its retention and the constant pieces of its entries."""

    def j(text: str) -> str:
        return _json.encode(text).decode()

    return pa.table(
        {
            "record_type": pa.array([c[0] for c in classes], pa.string()),
            "source": pa.array([c[1] for c in classes], pa.string()),
            "kind": pa.array([c[2] for c in classes], pa.string()),
            "retention": pa.array([c[3] for c in classes], pa.string()),
            "after_digest": pa.array([f'","retention":{j(c[3])},"salt":"' for c in classes], pa.string()),
            "after_salt": pa.array(
                [f'","sealed":{j(sealed_text)},"source":{j(c[1])}' for c in classes], pa.string()
            ),
            "tail": pa.array([f',"type":{j(c[0])}}}' for c in classes], pa.string()),
        }
    )


def _registered(con: Any, table: pa.Table) -> tuple[str, Callable[[], None]]:
    name = f"_sqlseal_{os.getpid()}_{next(_counter)}"
    con.register(name, table)

    def drop() -> None:
        with contextlib.suppress(Exception):  # an aborted transaction must not hide the original error
            con.unregister(name)

    return name, drop


def _salt_array(n: int, data: bytes) -> pa.Array:
    if len(data) != SALT_BYTES * n:
        raise EntryError(f"need {SALT_BYTES * n} salt bytes, got {len(data)}")
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(SALT_BYTES), n, [None, pa.py_buffer(data)])


def _salted_digests(salts: bytes, payloads: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Hex SHA-256(salt ‖ payload) of each row: a column at a time with polars-hash (``vechash``) for
    large batches, else by hashlib (OpenSSL uses the CPU's SHA instructions, several times faster than
    DuckDB's portable ``sha256`` over payloads of a kilobyte)."""
    n = len(payloads)
    if vechash.AVAILABLE and n >= vechash.MIN_VALUES:
        if isinstance(payloads, pa.ChunkedArray):
            payloads = payloads.combine_chunks()
        salted = pc.binary_join_element_wise(
            _salt_array(n, salts).cast(pa.binary()), payloads.cast(pa.binary()), pa.scalar(b"", pa.binary())
        )
        return vechash.hex_digests(salted).cast(pa.string())
    sha = hashlib.sha256
    payloads = payloads.to_pylist()
    at = range(0, len(salts), SALT_BYTES)
    return pa.array([sha(salts[i : i + SALT_BYTES] + p).hexdigest() for i, p in zip(at, payloads, strict=True)],
                    pa.string())


def with_payload_digests(table: pa.Table, payload: str = "data") -> pa.Table:
    """``table`` with ``salt`` (16 bytes from ``os.urandom`` a row) and ``payload_sha256`` (hex
    SHA-256(salt ‖ payload)) appended, for ``query_entries(..., digested=True)``. Hashing the payloads is
    the one per-row step of sealing, and this way it can run before (and away from) the sealing
    transaction: ingest does it while the previous batch is being written."""
    n = table.num_rows
    col = table.column(payload)
    if col.null_count:
        raise EntryError(f"{col.null_count} record(s) have no payload")
    salts = os.urandom(SALT_BYTES * n)
    return table.append_column("salt", _salt_array(n, salts)).append_column(
        "payload_sha256", _salted_digests(salts, col))


def _time_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_null(t):
        return col.cast(_TIME_TYPE)
    if pa.types.is_timestamp(t) and t.tz is not None:
        return col.cast(_TIME_TYPE, safe=False) if t.unit != "us" else col
    if col.null_count == len(col):
        return (
            col.cast(_TIME_TYPE)
            if pa.types.is_timestamp(t)
            else pa.chunked_array([pa.nulls(len(col), _TIME_TYPE)])
        )
    raise EntryError(f"time column is {t}, not a timestamp with time zone")


def query_entries(
    con: Any,
    select_sql: str,
    params: Sequence[Any] | None = None,
    *,
    classify: Callable[[str, str, str | None, str], str],
    sealed: datetime | None = None,
    salts: bytes | None = None,
    digested: bool = False,
) -> tuple[list[bytes], EntryIndex]:
    """Entries (and their index columns) for the rows of ``select_sql``, which yields record_type,
    record_id, source, time (TIMESTAMPTZ or NULL), payload (BLOB) and kind, in that order — or, with
    ``digested``, ``DIGESTED_COLUMNS``: the salt and SHA-256(salt ‖ payload) in place of the payload.

    ``classify(type, source, kind, record_id)`` gives the retention class of each distinct
    (type, source, kind). ``salts`` (tests only) are the 16-byte salts of the rows in the SELECT's order.
    """
    cols = ", ".join(DIGESTED_COLUMNS if digested else COLUMNS)
    rows = con.sql(f"SELECT * FROM ({select_sql}) AS _q({cols})", params=list(params or [])).to_arrow_table()
    n = rows.num_rows
    if n == 0:
        return [], EntryIndex([], [], [], [])
    rows = rows.set_column(3, "time", _time_column(rows.column("time")))
    if digested:
        salt, digest = rows.column("salt"), rows.column("payload_sha256")
        if (salt.null_count or digest.null_count or not pc.all(pc.equal(pc.binary_length(salt), SALT_BYTES)).as_py()
                or not pc.all(pc.match_substring_regex(digest, _HEX64)).as_py()):
            raise EntryError("each record needs a 16-byte salt and the hex SHA-256 of its salted payload")
        rows = rows.set_column(4, "salt", salt.cast(pa.binary(SALT_BYTES))).rename_columns(
            [*COLUMNS[:4], "salt", "digest", "kind"])
    else:
        salt_bytes = os.urandom(SALT_BYTES * n) if salts is None else salts
        payload = rows.column("payload")
        if payload.null_count:
            raise EntryError(f"{payload.null_count} record(s) have no payload")
        rows = rows.append_column("salt", _salt_array(n, salt_bytes)).append_column(
            "digest", _salted_digests(salt_bytes, payload)).drop_columns(["payload"])
    rows = rows.append_column("_i", pa.array(range(n), pa.int64()))
    sealed_text = iso_utc(sealed or datetime.now(UTC))
    rows_name, drop_rows = _registered(con, rows)
    try:
        bad = con.execute(
            f"""SELECT count(*) FILTER (record_id IS NULL OR record_id = ''),
                       count(*) FILTER (time IS NOT NULL AND NOT (year(make_timestamp(epoch_us(time)))
                                        BETWEEN 1 AND 9999))
                FROM {rows_name}"""
        ).fetchall()[0]
        if bad[0]:
            raise EntryError("empty record id")
        if bad[1]:
            raise EntryError(f"{bad[1]} record(s) have a time outside years 1-9999")
        keys = con.execute(
            f"SELECT record_type, source, kind, any_value(record_id) FROM {rows_name} GROUP BY ALL"
        ).fetchall()
        classes: list[tuple[str, str, str | None, str]] = []
        for record_type, source, kind, some_id in keys:
            if record_type is None:
                raise EntryError("bad record type None")
            if not source:
                raise EntryError(f"record {some_id!r} needs a source and a retention class")
            retention = classify(record_type, source, kind, some_id)
            _check(record_type, "-", source, retention)
            classes.append((record_type, source, kind, retention))
        cls_name, drop_cls = _registered(con, _class_table(classes, sealed_text))
        try:
            out = con.sql(_entry_sql(rows_name, cls_name), params={"sealed": sealed_text}).to_arrow_table()
        finally:
            drop_cls()
    finally:
        drop_rows()
    if out.num_rows != n:
        raise EntryError(f"sealing query made {out.num_rows} entries for {n} records")
    entries = out.column("entry").to_pylist()
    longest = max(map(len, entries))
    if longest > MAX_ENTRY_BYTES:
        raise EntryError(f"an entry is {longest} bytes (max {MAX_ENTRY_BYTES})")
    index = EntryIndex(
        record_types=out.column("record_type").to_pylist(),
        record_ids=out.column("record_id").to_pylist(),
        record_times=out.column("index_time").to_pylist(),
        retentions=out.column("retention").to_pylist(),
    )
    return entries, index


def seal_query(
    ledger: Ledger,
    con: Any,
    select_sql: str,
    params: Sequence[Any] | None = None,
    *,
    sealed: datetime | None = None,
    salts: bytes | None = None,
    digested: bool = False,
) -> int:
    """Seal the rows of ``select_sql`` (see ``query_entries``) in ``ledger``; returns the first index."""
    entries, index = query_entries(
        con, select_sql, params, classify=ledger._classify, sealed=sealed, salts=salts, digested=digested
    )
    if not entries:
        return ledger.storage.size()
    return ledger._append(entries, index)
