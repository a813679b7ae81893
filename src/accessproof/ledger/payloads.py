"""Where sealed payloads live, behind one small interface.

The ledger keeps only entries (with salted payload hashes). The bytes stay where the store put them:
raw input in ``raw_records.data`` (by ``raw_id``), quarantined input in ``quarantine.data`` (by
``quarantine_id``), and the ledger's own holds/releases/purge manifests in ``ledger_payloads``.
``PayloadStore`` lets verification read them and retention purge them without the ledger knowing
the store's schema beyond this mapping; the lead can pass a different mapping or implementation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import NamedTuple, Protocol

import duckdb
import pyarrow as pa

from accessproof.ledger import vechash


class RecordRef(NamedTuple):
    idx: int
    record_type: str
    record_id: str


class PayloadStore(Protocol):
    def get(self, refs: Sequence[RecordRef]) -> dict[int, bytes | None]:
        """Payloads by ledger index for the refs this store holds; None where the payload is gone.

        Refs of record types the store does not hold are left out of the result (not checked).
        """

    def purge(self, refs: Sequence[RecordRef]) -> int:
        """Remove the payload bytes (the row stays, its data becomes NULL); returns how many."""

    def record_ids(self) -> Iterable[tuple[str, str]]:
        """(record_type, record_id) of every payload held, to find records that were never sealed."""


#: record type -> (table, id column, data column)
DEFAULT_TABLES: dict[str, tuple[str, str, str]] = {
    "raw": ("raw_records", "raw_id", "data"),
    "quarantine": ("quarantine", "quarantine_id", "data"),
}
#: the ledger's own record types, control results and sealed audit populations, whose payloads live in
#: ledger_payloads
LEDGER_TYPES = (
    "hold",
    "release",
    "purge",
    "config",
    "control_result",
    "population",
    "walkthrough_result",
    "schedule_run",
)
_counter = itertools.count()


def payload_tables(tables: dict[str, tuple[str, str, str]] | None = None) -> dict[str, tuple[str, str, str]]:
    """Where each record type's payloads live: ``tables`` (default ``DEFAULT_TABLES``) and the ledger's own
    types in ``ledger_payloads``."""
    out = dict(DEFAULT_TABLES if tables is None else tables)
    for t in LEDGER_TYPES:
        out.setdefault(t, ("ledger_payloads", "record_id", "data"))
    return out


class DuckDBPayloads:
    """``PayloadStore`` over store tables in the same DuckDB database (missing tables hold nothing)."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, tables: dict[str, tuple[str, str, str]] | None = None
    ) -> None:
        self.conn = conn
        self.tables = payload_tables(tables)

    def _exists(self, table: str) -> bool:
        return table in self._existing([table])

    def _existing(self, tables: Iterable[str]) -> set[str]:
        """Which of ``tables`` exist, in one catalogue query."""
        names = sorted(set(tables))
        if not names:
            return set()
        sql = "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_name IN "
        return {r[0] for r in self.conn.execute(f"{sql}({_sql_list(names)})").fetchall()}

    def _ids_view(self, ids: list[str]) -> str:
        name = f"_ledger_ids_{next(_counter)}"
        self.conn.register(name, pa.table({"id": pa.array(ids, pa.string())}))
        return name

    def _select(self, record_type: str, ids: list[str]) -> dict[str, bytes | None]:
        table, id_col, data_col = self.tables[record_type]
        if not self._exists(table):
            return {}
        extra = " AND t.record_type = ?" if table == "ledger_payloads" else ""
        params = [record_type] if extra else []
        view = self._ids_view(ids)
        try:
            found = self.conn.sql(
                f"SELECT t.{id_col}, t.{data_col} FROM {table} t JOIN {view} v ON t.{id_col} = v.id"
                f" WHERE TRUE{extra.replace('?', '$1')}",
                params=params or None,
            ).to_arrow_table()
        finally:
            self.conn.unregister(view)
        return dict(zip(found.column(0).to_pylist(), found.column(1).to_pylist(), strict=True))

    def get(self, refs: Sequence[RecordRef]) -> dict[int, bytes | None]:
        by_type: dict[str, list[tuple[int, str]]] = {}
        tables = self.tables
        for idx, record_type, record_id in refs:
            if record_type in tables:
                group = by_type.get(record_type)
                if group is None:
                    group = by_type[record_type] = []
                group.append((idx, record_id))
        out: dict[int, bytes | None] = {}
        for record_type, pairs in by_type.items():
            if not self._exists(tables[record_type][0]):
                out.update((idx, None) for idx, _ in pairs)
                continue
            found = self._select(record_type, [rid for _, rid in pairs])
            get = found.get
            out.update((idx, get(rid)) for idx, rid in pairs)
        return out

    def concurrent(self) -> DuckDBPayloads | None:
        """The same store on a cursor another thread may read from; None inside an open transaction (a
        cursor would not see its uncommitted rows)."""
        first = self.conn.execute("SELECT txid_current()").fetchall()
        if first == self.conn.execute("SELECT txid_current()").fetchall():
            return None
        return DuckDBPayloads(self.conn.cursor(), self.tables)

    def close(self) -> None:
        """Close a ``concurrent`` copy's cursor."""
        self.conn.close()

    def sees_ledger(self) -> bool:
        """Whether this store's connection holds the ledger too (``entry_rows`` joins the two)."""
        return self._exists("ledger_entries")

    def entry_rows(self, size: int, batch_rows: int = 1 << 14) -> pa.RecordBatchReader:
        """Verification's fast path: every ledger entry with 0 <= idx < size beside the payload that its
        lookup columns name, in one pass of hash joins (in no order; an entry comes more than once only if
        its table holds that id twice).

        Columns: idx, entry, shape, digest, salt, salted, gone, held, purge, record_type, record_id,
        data. Where the entry bytes have the canonical shape *and* agree with the stored lookup columns
        (``FAST_SHAPE``), ``shape`` says which optional keys it holds, ``digest`` / ``salt`` are the
        payload_sha256 and salt texts cut out of the entry and ``salted`` is salt ‖ payload, ready to
        hash (when the salt is hex); elsewhere they are NULL and the verifier decodes the entry itself
        from ``data``, sent only then. ``gone`` says the payload row or its bytes are gone (or the type
        has no table here), ``held`` whether this store keeps payloads of the entry's type, ``purge``
        whether it is a purge manifest. The lookup columns (never trusted alone) come only where the
        verifier needs them: entries not of the fast shape, payloads gone, purge manifests (``lookup``
        finds the rest).
        """
        reader, finish = self.entry_batches(size, batch_rows)
        if finish is None:
            return reader
        from accessproof.ledger import fastshape

        return pa.RecordBatchReader.from_batches(fastshape.SCHEMA, (finish(b) for b in reader if b.num_rows))

    def entry_batches(
        self, size: int, batch_rows: int = 1 << 14
    ) -> tuple[pa.RecordBatchReader, Callable[[pa.RecordBatch], pa.RecordBatch] | None]:
        """``entry_rows`` in two steps, so that a caller can spread the second over threads: the join's
        batches, and the function that turns each into ``entry_rows`` columns (None when the join gives
        them already). The function runs in polars and pyarrow, outside the GIL for the most part."""
        in_polars = fastshape_in_polars()
        part = _bare_sql if in_polars else _shape_sql
        groups: dict[tuple[str, str, str], list[str]] = {}
        for record_type, where in self.tables.items():
            groups.setdefault(where, []).append(record_type)
        scope = f"e.idx >= 0 AND e.idx < {int(size)}"
        parts: list[str] = []
        joined: list[str] = []
        existing = self._existing(table for table, _id, _data in groups)
        for (table, id_col, data_col), types in groups.items():
            if table not in existing:
                continue
            joined.extend(types)
            on = f"t.{id_col} = e.record_id"
            if table == "ledger_payloads":
                on += " AND t.record_type = e.record_type"
            source = f"ledger_entries e LEFT JOIN {table} t ON {on}"
            where = f"{scope} AND e.record_type IN ({_sql_list(types)})"
            parts.append(part(f"t.{data_col}", source, where, "TRUE"))
        rest = f" AND e.record_type NOT IN ({_sql_list(joined)})" if joined else ""
        tableless = [t for t in self.tables if t not in joined]  # held, but their table is missing
        held = f"record_type IN ({_sql_list(tableless)})" if tableless else "FALSE"
        parts.append(part("NULL::BLOB", "ledger_entries e", scope + rest, held))
        reader = self.conn.sql(" UNION ALL ".join(parts)).to_arrow_reader(batch_rows)
        if not in_polars:
            return reader, None
        from accessproof.ledger import fastshape

        return reader, partial(
            fastshape.shaped, source_key=SOURCE_KEY, subject_key=SUBJECT_KEY, time_key=TIME_KEY
        )

    def unsealed_rows(
        self, skip_idx: Sequence[int], sealed: Iterable[tuple[str, str]], limit: int = 1000
    ) -> list[tuple[str, str]]:
        """Store rows (outside ledger_payloads) that no ledger entry's lookup columns name, leaving out
        the entries in ``skip_idx`` (whose lookup columns disagree with their bytes) and counting instead
        the (type, id) pairs in ``sealed`` (what those entries really seal)."""
        really = set(sealed)
        skip = ""
        view = None
        if skip_idx:
            view = f"_ledger_skip_{next(_counter)}"
            self.conn.register(view, pa.table({"idx": pa.array(list(skip_idx), pa.int64())}))
            skip = f" AND e.idx NOT IN (SELECT idx FROM {view})"
        out: list[tuple[str, str]] = []
        existing = self._existing(table for table, _id, _data in self.tables.values())
        try:
            for record_type, (table, id_col, _data) in self.tables.items():
                if table == "ledger_payloads" or table not in existing:
                    continue
                rows = self.conn.execute(
                    f"SELECT t.{id_col} FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e "
                    f"WHERE e.record_type = $1 AND e.record_id = t.{id_col} AND e.idx >= 0{skip}) "
                    f"LIMIT {int(limit) + len(really)}",
                    [record_type],
                ).fetchall()
                found = [(record_type, r[0]) for r in rows if (record_type, r[0]) not in really]
                out.extend(found[: max(0, limit - len(out))])
        finally:
            if view is not None:
                self.conn.unregister(view)
        return out

    def lookup(self, idxs: Sequence[int]) -> dict[int, tuple[str, str]]:
        """(record_type, record_id) lookup columns of the given ledger indexes."""
        if not idxs:
            return {}
        view = f"_ledger_look_{next(_counter)}"
        self.conn.register(view, pa.table({"idx": pa.array(list(idxs), pa.int64())}))
        try:
            rows = self.conn.execute(
                f"SELECT e.idx, e.record_type, e.record_id FROM ledger_entries e JOIN {view} v ON e.idx = v.idx"
            ).fetchall()
        finally:
            self.conn.unregister(view)
        return {int(i): (t, r) for i, t, r in rows}

    def purge(self, refs: Sequence[RecordRef]) -> int:
        count = 0
        by_type: dict[str, list[str]] = {}
        for ref in refs:
            if ref.record_type in self.tables:
                by_type.setdefault(ref.record_type, []).append(ref.record_id)
        for record_type, ids in by_type.items():
            table, id_col, data_col = self.tables[record_type]
            if not self._exists(table):
                continue
            extra = " AND record_type = ?" if table == "ledger_payloads" else ""
            view = self._ids_view(ids)
            try:
                row = self.conn.execute(
                    f"UPDATE {table} SET {data_col} = NULL WHERE {id_col} IN (SELECT id FROM {view})"
                    f" AND {data_col} IS NOT NULL{extra}",
                    [record_type] if extra else [],
                ).fetchall()
            finally:
                self.conn.unregister(view)
            count += int(row[0][0]) if row else 0
        return count

    def record_ids(self) -> Iterable[tuple[str, str]]:
        for record_type, (table, id_col, _data) in self.tables.items():
            if table == "ledger_payloads" or not self._exists(table):
                continue
            for (rid,) in self.conn.execute(f"SELECT {id_col} FROM {table}").fetchall():
                yield record_type, rid


#: The key literals an entry of the canonical shape holds between its ``sealed`` and ``type`` values.
SOURCE_KEY, SUBJECT_KEY, TIME_KEY = '","source":"', '","subject":"', '","time":"'

#: SQL for one part of ``entry_rows``. ``s`` is the entry as text (NULL unless valid UTF-8). An entry has
#: the fast shape when it is printable ASCII (no control byte), begins
#: ``{"id":"<record_id>","payload_sha256":"`` + 64 characters with no '"' +
#: ``","retention":"<retention>","salt":"`` + 32 characters with no '"' + ``","sealed":"``, ends
#: ``","type":"<record_type>"}``, holds no backslash and no '":","' (two literals sharing a '"'), its
#: lookup columns hold no '"', and it holds the source key literal; ``shape`` then says whether it holds
#: the subject (1) and the time (2) key literal. Such an entry holds the 28 '"' of its fixed literals and
#: 4 more for each optional key literal it holds; it must hold not one '"' more. Then every '"' is one of
#: those literals', every value is a plain JSON string with no quote or escape in it, the keys are exactly
#: ``Entry`` fields, each once, and what is cut out is what ``decode_entry`` reads
#: (tests/ledger/test_ledger_fast_payloads.py checks this against the decoder on crafted and mutated
#: entries).
FAST_SHAPE = """
SELECT idx, entry, shape, digest, salt, salted, data IS NULL AS gone, {held} AS held,
       record_type = 'purge' AS purge,
       CASE WHEN shape IS NULL OR data IS NULL OR record_type = 'purge' THEN record_type END AS record_type,
       CASE WHEN shape IS NULL OR data IS NULL OR record_type = 'purge' THEN record_id END AS record_id,
       CASE WHEN salted IS NULL THEN data END AS data
FROM (
SELECT *, CASE WHEN data IS NOT NULL AND regexp_full_match(salt, '[0-9a-fA-F]{{32}}')
               THEN unhex(salt) || data END AS salted
FROM (
SELECT idx, entry, shape, record_type, record_id, data,
       CASE WHEN shape IS NOT NULL THEN substr(s, l1 + 1, 64) END AS digest,
       CASE WHEN shape IS NOT NULL THEN substr(s, l1 + 65 + length(p2), 32) END AS salt
FROM (
  SELECT idx, entry, record_type, record_id, data, l1, p2, s,
         CASE WHEN starts_with(s, p1) AND substr(s, l1 + 65, length(p2)) = p2
                   AND NOT contains(substr(s, l1 + 1, 64), '"')
                   AND NOT contains(substr(s, l1 + 65 + length(p2), 32), '"')
                   AND regexp_full_match(s, '[ -~]*')
                   AND length(s) - length(replace(s, '"', ''))
                       = 28 + 4 * contains(s, '{subject}')::INTEGER + 4 * contains(s, '{time}')::INTEGER
                   AND substr(s, l1 + 97 + length(p2), 12) = '","sealed":"'
                   AND ends_with(s, '","type":"' || record_type || '"}}') AND NOT contains(s, '\\')
                   AND plain_claims
                   AND contains(s, '{source}') AND NOT contains(s, '":","')
              THEN (contains(s, '{subject}')::TINYINT + 2 * contains(s, '{time}')::TINYINT)::TINYINT
         END AS shape
  FROM (
    SELECT e.idx, e.entry, e.record_type, e.record_id, {data} AS data, try(decode(e.entry)) AS s,
           NOT contains(e.record_id || e.retention || e.record_type, '"') AS plain_claims,
           '{{"id":"' || e.record_id || '","payload_sha256":"' AS p1, length(p1) AS l1,
           '","retention":"' || e.retention || '","salt":"' AS p2
    FROM {source_} WHERE {where}))))
"""


#: the shape tests of ``FAST_SHAPE`` run in polars (``fastshape``) over this bare join where polars-hash
#: is installed: the same columns (tests/ledger/test_ledger_fast_payloads.py compares them), in about two
#: thirds of the time DuckDB's string functions take
USE_POLARS = True


def fastshape_in_polars() -> bool:
    return USE_POLARS and vechash.AVAILABLE


def _bare_sql(data: str, source: str, where: str, held: str) -> str:
    return (
        "SELECT e.idx, e.entry, "
        f"e.record_type, e.record_id, e.retention, {data} AS data, {held} AS held "
        f"FROM {source} WHERE {where}"
    )


def _shape_sql(data: str, source: str, where: str, held: str) -> str:
    return FAST_SHAPE.format(
        data=data,
        source_=source,
        where=where,
        held=held,
        source=SOURCE_KEY,
        subject=SUBJECT_KEY,
        time=TIME_KEY,
    )


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)
