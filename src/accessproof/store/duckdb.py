"""The embedded store: one DuckDB file in the store directory.

Batches arrive as Arrow tables and are written in one transaction: a process killed mid-batch leaves the
previous batch as the last one on disk (DuckDB's write-ahead log rolls the open transaction back).
Duplicates are decided set-wise against the keys already stored, not row by row, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    supports_bulk = True

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
                self.con.execute(create_table_sql(name))

    # ---------------------------------------------------------------- writes

    def write_batch(self, batch: Batch, run_id: str,
                    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> BatchResult:
        """Write one batch atomically. ``before_commit`` runs inside the transaction with ``_new`` (the
        raw ids this batch added) in scope — ingest seals the new records there, so that records and
        their ledger entries commit together or not at all."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("b_raw", batch.raw)
            bulk_rows = 0
            bulk_bad = 0
            keys = "SELECT raw_id, _seq FROM b_raw"
            if batch.bulk is not None and batch.bulk.num_rows and batch.bulk_sql:
                bulk_rows, bulk_bad = self._bulk_events(batch, run_id)
                keys += " UNION ALL SELECT raw_id, _seq FROM _bulk_ev"
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _new AS
                    SELECT raw_id, min(_seq) AS _seq FROM ({keys}) b
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
            if bulk_rows:
                cols = ", ".join(f"e.{c}" for c, _ in TABLES["events"][0])
                con.execute(f"INSERT INTO events SELECT {cols} FROM _bulk_ev e "
                            "JOIN _new n ON e.raw_id = n.raw_id AND e._seq = n._seq")
                con.execute(
                    "INSERT INTO raw_records SELECT e.raw_id, ?, e.source, b.file, b.position, b.sha256, 'event', "
                    "e.time, b.data, ? FROM _bulk_ev e JOIN _new n ON e.raw_id = n.raw_id AND e._seq = n._seq "
                    "JOIN b_bulk b ON b._seq = e._seq",
                    [batch.bulk_source_type, run_id],
                )
            quarantined = bulk_bad
            if batch.quarantine is not None and batch.quarantine.num_rows:
                quarantined += batch.quarantine.num_rows
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
            accepted = con.execute("SELECT count(*) FROM _new").fetchall()[0][0]
            if before_commit is not None:
                before_commit(con)
            con.unregister("b_raw")
            if batch.bulk is not None:
                con.unregister("b_bulk")
            # temp tables hold a batch's copies: drop them so memory does not carry over between batches
            con.execute("DROP TABLE IF EXISTS _bulk_ev; DROP TABLE IF EXISTS _bulk_txt; DROP TABLE IF EXISTS _new")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return BatchResult(accepted=accepted, duplicate=batch.raw.num_rows + bulk_rows - accepted,
                           quarantined=quarantined)

    def _bulk_events(self, batch: Batch, run_id: str) -> tuple[int, int]:
        """Normalise bytes-recognised records in SQL; malformed JSON among them is quarantined."""
        con = self.con
        con.register("b_bulk", batch.bulk)
        con.execute("CREATE OR REPLACE TEMP TABLE _bulk_txt AS "
                    "SELECT _seq, sha256, file, position, data, decode(data) AS txt FROM b_bulk")
        con.execute("CREATE OR REPLACE TEMP VIEW bulk_json AS "
                    "SELECT _seq, sha256, txt AS j FROM _bulk_txt WHERE json_valid(txt)")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _bulk_ev AS
                SELECT * REPLACE (coalesce(?, source) AS source),
                       substr(sha256('ev|' || coalesce(?, source) || '|' || event_id || '|' || sha256), 1, 32)
                         AS raw_id
                FROM ({batch.bulk_sql}) x""",
            [batch.source_name, batch.source_name],
        )
        good = con.execute("SELECT count(*) FROM _bulk_ev").fetchall()[0][0]
        con.execute(
            """INSERT INTO quarantine
               SELECT substr(sha256('bulk|' || ? || '|' || file || '|' || position || '|' || sha256), 1, 32),
                      ?, file, position, 'malformed JSON', data, ?
               FROM _bulk_txt t WHERE NOT json_valid(txt) AND NOT EXISTS (
                 SELECT 1 FROM quarantine x WHERE x.quarantine_id =
                   substr(sha256('bulk|' || ? || '|' || t.file || '|' || t.position || '|' || t.sha256), 1, 32))""",
            [batch.bulk_source_type, batch.bulk_source_type, run_id, batch.bulk_source_type],
        )
        invalid = con.execute("SELECT count(*) FROM _bulk_txt WHERE NOT json_valid(txt)").fetchall()[0][0]
        return good, invalid

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
