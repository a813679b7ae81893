"""The embedded store: one DuckDB file in the store directory.

Batches arrive as Arrow tables and are written in one transaction: a process killed mid-batch leaves the
previous batch as the last one on disk (DuckDB's write-ahead log rolls the open transaction back).
Duplicates are decided set-wise against the keys already stored, not row by row, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from accessproof.store.base import Batch, BatchResult, StoreError
from accessproof.store.schema import TABLES, create_table_sql

DB_FILE = "accessproof.duckdb"

_CANONICAL = {
    "events": "events",
    "workflow": "workflow_records",
    "persons": "persons",
}


class DuckDBStore:
    """Canonical evidence in ``<dir>/accessproof.duckdb``."""

    dialect = "duckdb"

    def __init__(self, directory: Path, *, read_only: bool = False, memory_limit: str | None = "2GB"):
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
                self.con.execute(create_table_sql(name))

    # ---------------------------------------------------------------- writes

    def write_batch(self, batch: Batch, run_id: str) -> BatchResult:
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
            raw_cols = ", ".join(f"b.{c}" for c, _ in TABLES["raw_records"][0] if c != "run_id")
            con.execute(
                f"INSERT INTO raw_records SELECT {raw_cols}, ? FROM b_raw b "
                "JOIN _new n ON b.raw_id = n.raw_id AND b._seq = n._seq",
                [run_id],
            )
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
                qcols = ", ".join(f"q.{c}" for c, _ in TABLES["quarantine"][0] if c != "run_id")
                con.execute(
                    f"""INSERT INTO quarantine
                        SELECT {qcols}, ? FROM (
                          SELECT *, row_number() OVER (PARTITION BY quarantine_id) AS rn FROM b_q
                        ) q
                        WHERE q.rn = 1 AND NOT EXISTS
                          (SELECT 1 FROM quarantine x WHERE x.quarantine_id = q.quarantine_id)""",
                    [run_id],
                )
                con.unregister("b_q")
            new_ids = [r[0] for r in con.execute("SELECT raw_id FROM _new").fetchall()]
            con.unregister("b_raw")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        accepted = len(new_ids)
        return BatchResult(accepted=accepted, duplicate=batch.raw.num_rows - accepted,
                           quarantined=quarantined, new_raw_ids=new_ids)

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
