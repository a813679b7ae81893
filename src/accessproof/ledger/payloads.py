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
            rows = self.conn.execute(
                f"SELECT t.{id_col}, t.{data_col} FROM {table} t JOIN {view} v ON t.{id_col} = v.id"
                f" WHERE TRUE{extra}",
                params,
            ).fetchall()
        finally:
            self.conn.unregister(view)
        return {r: None if d is None else bytes(d) for r, d in rows}

    def get(self, refs: Sequence[RecordRef]) -> dict[int, bytes | None]:
        by_type: dict[str, list[RecordRef]] = {}
        for ref in refs:
            if ref.record_type in self.tables:
                by_type.setdefault(ref.record_type, []).append(ref)
        out: dict[int, bytes | None] = {}
        for record_type, group in by_type.items():
            table = self.tables[record_type][0]
            if not self._exists(table):
                out.update((r.idx, None) for r in group)
                continue
            found = self._select(record_type, [r.record_id for r in group])
            out.update((r.idx, found.get(r.record_id)) for r in group)
        return out

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
