"""The embedded store: one DuckDB file in the store directory.

Batches arrive as Arrow tables and are written in one transaction: a process killed mid-batch leaves the
previous batch as the last one on disk (DuckDB's write-ahead log rolls the open transaction back).
Duplicates are decided set-wise against the keys already stored, not row by row, so memory stays flat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from accessproof.store.base import Batch, BatchResult, StoreError
from accessproof.store.schema import TABLES, create_table_sql

DB_FILE = "accessproof.duckdb"

#: columns of a batch's raw rows that are not stored but handed on to sealing (``sqlseal.with_payload_digests``)
_SEAL_COLUMNS = ("salt", "payload_sha256")

_CANONICAL = {
    "events": "events",
    "workflow": "workflow_records",
    "persons": "persons",
}


#: columns a new store keeps with ZSTD instead of DuckDB's own pick (FSST): raw JSON compresses several
#: times faster that way, and smaller (an 80k-event CloudTrail store: 47 MB against 49 MB)
_ZSTD_COLUMNS = {"raw_records": ("data",)}


def _create_table_sql(name: str) -> str:
    sql = create_table_sql(name)
    for column in _ZSTD_COLUMNS.get(name, ()):
        assert f"{column} BLOB" in sql, (name, column)
        sql = sql.replace(f"{column} BLOB", f"{column} BLOB USING COMPRESSION zstd", 1)
    return sql


class DuckDBStore:
    """Canonical evidence in ``<dir>/accessproof.duckdb``."""

    dialect = "duckdb"
    supports_bulk = True  # ingest may send CloudTrail noise through its SQL-normalised bulk path

    def __init__(self, directory: Path, *, read_only: bool = False, memory_limit: str | None = "1GB"):
        self.dir = Path(directory)
        self.read_only = read_only
        if not read_only:
            self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / DB_FILE
        if read_only and not path.exists():
            raise StoreError(f"no store at {self.dir} (run 'accessproof ingest' or 'accessproof demo' first)")
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as e:
            raise StoreError(f"cannot open store {path}: {str(e).splitlines()[0]}") from None
        if memory_limit:
            self.con.execute(f"SET memory_limit='{memory_limit}'")
        self.con.execute("SET preserve_insertion_order=false")
        if not read_only:
            for name in TABLES:
                self.con.execute(_create_table_sql(name))

    # ---------------------------------------------------------------- writes

    @contextlib.contextmanager
    def bulk_load(self, memory_limit: str = "128MB", checkpoint_threshold: str = "128MB") -> Iterator[None]:
        """Settings for a long ingest, restored afterwards. A small memory limit: DuckDB keeps every block
        it wrote cached up to the limit, so with the default a million-event ingest ends with a gigabyte
        resident that a hundred-thousand one does not. A large checkpoint threshold: each checkpoint
        compresses and writes what changed since the last, and one per batch (a batch's WAL is bigger
        than the default 16 MiB) cost more than the batch itself. The WAL still makes every commit durable."""
        con = self.con
        names = ("memory_limit", "checkpoint_threshold")
        old = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN (?, ?)", list(names))
                   .fetchall())
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
        try:
            yield
        finally:
            for name in names:
                con.execute(f"SET {name} = '{old[name]}'")


    def write_batch(self, batch: Batch, run_id: str,
                    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> BatchResult:
        """Write one batch atomically. ``before_commit`` runs inside the transaction with ``_added`` (the
        raw_records rows this batch added, without run_id and data, with their read order ``_seq``, with the raw rows' ``_SEAL_COLUMNS`` if they
        have them) and ``_added_q`` (its new quarantine rows) in scope — ingest seals them there, so that
        records and their ledger entries commit together or not at all, and without reading back the
        tables they went into."""
        if batch.bulk is not None and batch.bulk.num_rows:
            raise StoreError("bulk rows reach the store normalised (ingest runs their SQL), not as bytes")
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("b_raw", batch.raw)
            con.execute(
                """CREATE OR REPLACE TEMP TABLE _new AS
                   SELECT raw_id, min(_seq) AS _seq FROM b_raw b
                   WHERE NOT EXISTS (SELECT 1 FROM raw_records r WHERE r.raw_id = b.raw_id)
                   GROUP BY raw_id"""
            )
            names = [c for c, _ in TABLES["raw_records"][0] if c != "run_id"]
            carried = [c for c in _SEAL_COLUMNS if c in batch.raw.column_names]
            new_rows = "FROM b_raw b JOIN _new n ON b.raw_id = n.raw_id AND b._seq = n._seq"
            con.execute(f"INSERT INTO raw_records SELECT {', '.join('b.' + c for c in names)}, ? {new_rows}",
                        [run_id])
            # what sealing reads, without the payloads (copying those again cost as much as storing them)
            kept = [c for c in names if c != "data"] + carried + ["_seq"]
            con.execute(f"CREATE OR REPLACE TEMP TABLE _added AS SELECT {', '.join('b.' + c for c in kept)} {new_rows}")
            for attr, table in _CANONICAL.items():
                tbl = getattr(batch, attr)
                if tbl is None or tbl.num_rows == 0:
                    continue
                con.register("b_rec", tbl)
                cols = ", ".join(f"b.{c}" for c, _ in TABLES[table][0])
                con.execute(
                    f"INSERT INTO {table} SELECT {cols} FROM b_rec b "
                    "JOIN _new n ON b.raw_id = n.raw_id AND b._seq = n._seq"
                )
                con.unregister("b_rec")
            quarantined = 0
            if batch.quarantine is not None and batch.quarantine.num_rows:
                quarantined = batch.quarantine.num_rows
                con.register("b_q", batch.quarantine)
            self._quarantine(quarantined > 0, run_id)
            accepted = con.execute("SELECT count(*) FROM _new").fetchall()[0][0]
            if before_commit is not None:
                before_commit(con)
            con.unregister("b_raw")
            if quarantined:
                con.unregister("b_q")
            # temp tables hold a batch's copies: drop them so memory does not carry over between batches
            con.execute("DROP TABLE IF EXISTS _new; DROP TABLE IF EXISTS _added; DROP TABLE IF EXISTS _added_q")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return BatchResult(accepted=accepted, duplicate=batch.raw.num_rows - accepted, quarantined=quarantined)

    def _quarantine(self, any_rows: bool, run_id: str) -> None:
        """Store the batch's quarantine rows (``b_q``) not already stored, once each; they stay as
        ``_added_q``."""
        con = self.con
        if not any_rows:
            con.execute("CREATE OR REPLACE TEMP TABLE _added_q AS SELECT * EXCLUDE (run_id) FROM quarantine "
                        "LIMIT 0")
            return
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _added_q AS
               SELECT * EXCLUDE (rn) FROM (
                 SELECT *, row_number() OVER (PARTITION BY quarantine_id) AS rn FROM b_q
               ) q
               WHERE q.rn = 1 AND NOT EXISTS
                 (SELECT 1 FROM quarantine x WHERE x.quarantine_id = q.quarantine_id)"""
        )
        con.execute("INSERT INTO quarantine SELECT *, ? FROM _added_q", [run_id])

    # ---------------------------------------------------------------- reads

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] | None = None, size: int = 10_000) -> Iterator[tuple]:
        cur = self.con.execute(sql, params or [])
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        self.con.close()
