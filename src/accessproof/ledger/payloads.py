"""Where sealed payloads live, behind one small interface.

The ledger keeps only entries (with salted payload hashes). The bytes stay where the store put them:
raw input in ``raw_records.data`` (by ``raw_id``), quarantined input in ``quarantine.data`` (by
``quarantine_id``), and the ledger's own holds/releases/purge manifests in ``ledger_payloads``.
``PayloadStore`` lets verification read them and retention purge them without the ledger knowing
the store's schema beyond this mapping; the lead can pass a different mapping or implementation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

import duckdb
import pyarrow as pa


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
#: the ledger's own record types, whose payloads live in ledger_payloads
LEDGER_TYPES = ("hold", "release", "purge", "config")
_counter = itertools.count()


class DuckDBPayloads:
    """``PayloadStore`` over store tables in the same DuckDB database (missing tables hold nothing)."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, tables: dict[str, tuple[str, str, str]] | None = None
    ) -> None:
        self.conn = conn
        self.tables = dict(DEFAULT_TABLES if tables is None else tables)
        for t in LEDGER_TYPES:
            self.tables.setdefault(t, ("ledger_payloads", "record_id", "data"))

    def _exists(self, table: str) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()
        return bool(row and row[0][0])

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

    def checker(self) -> PayloadChecker:
        """Optional fast path for verification: collect every (idx, type, id, salt, hash) in a temp table
        and hash the payloads inside DuckDB in one join at the end (no payload bytes reach Python, and
        one pass over the store table instead of one per chunk)."""
        return PayloadChecker(self)

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


class PayloadChecker:
    """Whole-ledger payload check inside DuckDB; see ``DuckDBPayloads.checker``."""

    def __init__(self, store: DuckDBPayloads) -> None:
        self.store = store
        self.conn = store.conn
        self.name = f"_ledger_verify_{next(_counter)}"
        self.conn.execute(
            f"CREATE TEMP TABLE {self.name} (idx BIGINT, record_type VARCHAR, record_id VARCHAR, "
            "salt VARCHAR, expected VARCHAR)"
        )

    def add(self, items: Sequence[tuple[int, str, str, str, str]]) -> int:
        """Queue items of types the store holds; returns how many (the rest are not checked)."""
        held = [it for it in items if it[1] in self.store.tables]
        if held:
            cols = list(zip(*held, strict=True))
            batch = pa.table(
                {
                    "idx": pa.array(cols[0], pa.int64()),
                    "record_type": pa.array(cols[1], pa.string()),
                    "record_id": pa.array(cols[2], pa.string()),
                    "salt": pa.array(cols[3], pa.string()),
                    "expected": pa.array(cols[4], pa.string()),
                }
            )
            view = f"_ledger_items_{next(_counter)}"
            self.conn.register(view, batch)
            try:
                self.conn.execute(f"INSERT INTO {self.name} SELECT * FROM {view}")
            finally:
                self.conn.unregister(view)
        return len(held)

    def results(self) -> Iterator[tuple[int, str, str, bool | None]]:
        """(idx, type, id, ok) for every queued item: ok is None when the payload is gone."""
        for record_type, (table, id_col, data_col) in self.store.tables.items():
            if not self.store._exists(table):
                query = f"SELECT idx, record_type, record_id, NULL FROM {self.name} WHERE record_type = $1"
            else:
                extra = " AND t.record_type = v.record_type" if table == "ledger_payloads" else ""
                query = (
                    f"SELECT v.idx, v.record_type, v.record_id, CASE WHEN t.{data_col} IS NULL THEN NULL "
                    f"WHEN NOT regexp_full_match(v.salt, '[0-9a-f]{{32}}') THEN false "
                    f"ELSE sha256(unhex(v.salt) || t.{data_col}) = v.expected END "
                    f"FROM {self.name} v LEFT JOIN {table} t ON t.{id_col} = v.record_id{extra} "
                    f"WHERE v.record_type = $1"
                )
            reader = self.conn.sql(query, params=[record_type]).to_arrow_reader(100_000)
            for batch in reader:
                yield from zip(*(c.to_pylist() for c in batch.columns), strict=True)

    def unsealed(self, limit: int = 1000) -> list[tuple[str, str]]:
        """Store rows of held types that no queued item names (records never sealed)."""
        out: list[tuple[str, str]] = []
        for record_type, (table, id_col, _data) in self.store.tables.items():
            if table == "ledger_payloads" or not self.store._exists(table):
                continue
            rows = self.conn.execute(
                f"SELECT t.{id_col} FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM {self.name} v "
                f"WHERE v.record_type = $1 AND v.record_id = t.{id_col}) LIMIT {int(limit)}",
                [record_type],
            ).fetchall()
            out.extend((record_type, r[0]) for r in rows)
        return out

    def close(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {self.name}")
