"""Where sealed payloads live, behind one small interface.

The ledger keeps only entries (with salted payload hashes). The bytes stay where the store put them:
raw input in ``raw_records.data`` (by ``raw_id``), quarantined input in ``quarantine.data`` (by
``quarantine_id``), and the ledger's own holds/releases/purge manifests in ``ledger_payloads``.
``PayloadStore`` lets verification read them and retention purge them without the ledger knowing
the store's schema beyond this mapping; the lead can pass a different mapping or implementation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
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

    def check(self, items: Sequence[tuple[int, str, str, str, str]]) -> dict[int, bool | None]:
        """Optional fast path: for (idx, type, id, salt hex, expected sha256 hex), whether
        SHA-256(salt ‖ payload) matches, computed where the payload lives (None: payload gone).
        Items of types the store does not hold are left out."""

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

    def check(self, items: Sequence[tuple[int, str, str, str, str]]) -> dict[int, bool | None]:
        """Hash payloads inside DuckDB (vectorised, multi-threaded): no payload bytes cross into Python."""
        by_type: dict[str, list[tuple[int, str, str, str, str]]] = {}
        for item in items:
            if item[1] in self.tables:
                group = by_type.get(item[1])
                if group is None:
                    group = by_type[item[1]] = []
                group.append(item)
        out: dict[int, bool | None] = {}
        for record_type, group in by_type.items():
            table, id_col, data_col = self.tables[record_type]
            if not self._exists(table):
                out.update((it[0], None) for it in group)
                continue
            name = f"_ledger_check_{next(_counter)}"
            cols = list(zip(*group, strict=True))
            self.conn.register(
                name,
                pa.table(
                    {
                        "idx": pa.array(cols[0], pa.int64()),
                        "id": pa.array(cols[2], pa.string()),
                        "salt": pa.array(cols[3], pa.string()),
                        "expected": pa.array(cols[4], pa.string()),
                    }
                ),
            )
            extra = f" AND t.record_type = '{record_type}'" if table == "ledger_payloads" else ""
            try:
                result = self.conn.sql(
                    f"SELECT v.idx, CASE WHEN t.{data_col} IS NULL THEN NULL "
                    f"WHEN NOT regexp_full_match(v.salt, '[0-9a-f]{{32}}') THEN false "
                    f"ELSE sha256(unhex(v.salt) || t.{data_col}) = v.expected END "
                    f"FROM {name} v LEFT JOIN {table} t ON t.{id_col} = v.id{extra}"
                ).to_arrow_table()
            finally:
                self.conn.unregister(name)
            idxs, oks = result.column(0).to_pylist(), result.column(1).to_pylist()
            if len(idxs) == len(group):
                out.update(zip(idxs, oks, strict=True))
            else:  # an id stored twice: any mismatch wins
                for idx, ok in zip(idxs, oks, strict=True):
                    out[idx] = ok if out.get(idx, True) is not False else False
        return out

    def count(self, record_type: str) -> int | None:
        """Rows holding payloads of ``record_type``, purged ones included (None: not counted here)."""
        table, _id, _data = self.tables[record_type]
        if table == "ledger_payloads":
            return None
        if not self._exists(table):
            return 0
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

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
