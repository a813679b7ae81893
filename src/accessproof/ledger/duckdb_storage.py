"""DuckDB implementation of ``LedgerStorage`` on a connection the caller opened.

Full tiles go to ``ledger_tiles``, insert-only; the one partial tile per level lives in the tiny
``ledger_partial_tiles`` and is replaced on every append. Keeping deletes out of the big table matters:
DuckDB rewrites a row group that has deleted rows at checkpoint, which at a million entries cost over a
second per checkpoint when partial tiles were replaced in place.

Bulk writes go through Arrow (one INSERT per batch), because row-by-row inserts are what would keep
appends from reaching 100k entries/s. ``compact_database`` rewrites the database file: DuckDB leaves freed
blocks on disk after DELETE/UPDATE + CHECKPOINT, so purged bytes are only really gone after a rewrite.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger.storage import CheckpointRow, EntryIndex

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ledger_entries (
        idx BIGINT NOT NULL, entry BLOB NOT NULL, record_type VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL, record_time TIMESTAMPTZ, retention VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ledger_tiles (
        level INTEGER NOT NULL, idx BIGINT NOT NULL, width INTEGER NOT NULL, hashes BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_partial_tiles (
        level INTEGER PRIMARY KEY, idx BIGINT NOT NULL, width INTEGER NOT NULL, hashes BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_checkpoints (
        size BIGINT PRIMARY KEY, root BLOB NOT NULL, note VARCHAR NOT NULL, created TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_payloads (
        record_type VARCHAR NOT NULL, record_id VARCHAR NOT NULL, data BLOB,
        PRIMARY KEY (record_type, record_id))""",
    """CREATE TABLE IF NOT EXISTS ledger_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
]

_ENTRY_SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("entry", pa.binary()),
        ("record_type", pa.string()),
        ("record_id", pa.string()),
        ("record_time", pa.string()),
        ("retention", pa.string()),
    ]
)
_counter = itertools.count()
TILE_BYTES = 256 * 32


class DuckDBLedgerStorage:
    """Ledger tables inside the store's DuckDB database."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def setup(self) -> None:
        """Create missing ledger tables (nothing to do, and so fine on a read-only connection, if all exist)."""
        have = {r[0] for r in self.conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if {ddl.split()[5] for ddl in SCHEMA} <= have:
            return
        with self.transaction():
            for ddl in SCHEMA:
                self.conn.execute(ddl)

    def in_transaction(self) -> bool:
        """True inside an explicit transaction: autocommit gives every statement a new txid."""
        first = self.conn.execute("SELECT txid_current()").fetchall()
        second = self.conn.execute("SELECT txid_current()").fetchall()
        return first == second

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.in_transaction():
            yield  # the caller's transaction: it commits or rolls back
            return
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _insert_arrow(self, table: str, data: pa.Table, select: str = "*") -> None:
        name = f"_ledger_arrow_{next(_counter)}"
        self.conn.register(name, data)
        try:
            self.conn.execute(f"INSERT INTO {table} SELECT {select} FROM {name}")
        finally:
            self.conn.unregister(name)

    def concurrent_reader(self) -> DuckDBLedgerStorage | None:
        """A cursor (its own DuckDB connection) for read-ahead in a thread; it sees committed data only."""
        if self.in_transaction():
            return None
        return DuckDBLedgerStorage(self.conn.cursor())

    def close(self) -> None:
        self.conn.close()

    def size(self) -> int:
        rows = self.conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries").fetchall()
        return int(rows[0][0])

    def write_entries(self, start: int, entries: list[bytes], index: EntryIndex) -> None:
        n = len(entries)
        data = pa.Table.from_arrays(
            [
                pa.array(range(start, start + n), pa.int64()),
                pa.array(entries, pa.binary()),
                pa.array(index.record_types, pa.string()),
                pa.array(index.record_ids, pa.string()),
                pa.array(index.record_times, pa.string()),
                pa.array(index.retentions, pa.string()),
            ],
            schema=_ENTRY_SCHEMA,
        )
        self._insert_arrow(
            "ledger_entries",
            data,
            "idx, entry, record_type, record_id, CAST(record_time AS TIMESTAMPTZ), retention",
        )

    def read_entries(self, start: int, end: int) -> tuple[list[int], list[bytes]]:
        # no ORDER BY: a scan returns rows in the order they were appended, which is idx order; sorting
        # in DuckDB cost more than the read. Anything else (rows moved by an UPDATE) is sorted here.
        table = self.conn.sql(
            f"SELECT idx, entry FROM ledger_entries WHERE idx >= {int(start)} AND idx < {int(end)}"
        ).to_arrow_table()
        idxs, entries = table.column(0).to_pylist(), table.column(1).to_pylist()
        if idxs and idxs != list(range(idxs[0], idxs[0] + len(idxs))):
            order = sorted(range(len(idxs)), key=idxs.__getitem__)
            idxs, entries = [idxs[i] for i in order], [entries[i] for i in order]
        return idxs, entries

    def entries_arrow(self, start: int, end: int) -> pa.Array | None:
        """Entries [start, end) as one Arrow binary array in idx order, without a Python object per entry;
        None unless exactly those indexes are stored, once each (``read_entries`` then shows the gap)."""
        table = self.conn.sql(
            f"SELECT idx, entry FROM ledger_entries WHERE idx >= {int(start)} AND idx < {int(end)}"
        ).to_arrow_table()
        if table.num_rows != end - start:
            return None
        if not _consecutive(table.column(0), start):  # rows moved by an UPDATE: sort them here
            table = table.sort_by("idx")
            if not _consecutive(table.column(0), start):
                return None
        entries = table.column(1).combine_chunks()
        return entries if entries.null_count == 0 else None

    def leaf_hashes_blob(self, start: int, end: int) -> bytes | None:
        """SHA-256(0x00 ‖ entry) of entries [start, end) concatenated, computed by DuckDB; None unless
        exactly those indexes are stored, once each (the caller then locates the gap itself)."""
        rows = self.conn.execute(
            "SELECT count(*), count(DISTINCT idx), min(idx), max(idx), "
            "string_agg(sha256('\\x00'::BLOB || entry), '' ORDER BY idx) "
            f"FROM ledger_entries WHERE idx >= {int(start)} AND idx < {int(end)}"
        ).fetchall()
        n, distinct, lo, hi, hexes = rows[0]
        if n != end - start or distinct != n or lo != start or hi != end - 1:
            return None
        return bytes.fromhex(hexes)

    def find_entries(
        self, *, record_id: str | None = None, record_types: list[str] | None = None
    ) -> list[tuple[int, bytes]]:
        where, params = [], []
        if record_id is not None:
            where.append("record_id = ?")
            params.append(record_id)
        if record_types:
            where.append(f"record_type IN ({', '.join('?' for _ in record_types)})")
            params.extend(record_types)
        sql = "SELECT idx, entry FROM ledger_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self.conn.execute(sql + " ORDER BY idx", params).fetchall()

    def expired_candidates(self, retention: str, before: object) -> list[tuple[int, bytes]]:
        return self.conn.execute(
            "SELECT idx, entry FROM ledger_entries WHERE retention = ? AND record_time < ? ORDER BY idx",
            [retention, before],
        ).fetchall()

    def read_tile(self, level: int, index: int) -> bytes | None:
        # integer literals, not parameters: DuckDB prunes row groups on them (3x faster here)
        where = f"level = {int(level)} AND idx = {int(index)}"
        row = self.conn.execute(
            f"SELECT hashes FROM ledger_tiles WHERE {where} UNION ALL "
            f"SELECT hashes FROM ledger_partial_tiles WHERE {where}"
        ).fetchall()
        return bytes(row[0][0]) if row else None

    def read_tile_set(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(int(level), []).append(int(index))
        where = " OR ".join(
            f"(level = {level} AND idx IN ({', '.join(map(str, idxs))}))" for level, idxs in by_level.items()
        )
        rows = self.conn.execute(
            f"SELECT level, idx, hashes FROM ledger_tiles WHERE {where} UNION ALL "
            f"SELECT level, idx, hashes FROM ledger_partial_tiles WHERE {where}"
        ).fetchall()
        return {(int(lv), int(i)): bytes(h) for lv, i, h in rows}

    def read_tiles(self, level: int, first: int, last: int) -> dict[int, bytes]:
        where = f"level = {int(level)} AND idx >= {int(first)} AND idx < {int(last)}"
        rows = self.conn.execute(
            f"SELECT idx, hashes FROM ledger_tiles WHERE {where} UNION ALL "
            f"SELECT idx, hashes FROM ledger_partial_tiles WHERE {where}"
        ).fetchall()
        return {int(i): bytes(h) for i, h in rows}

    def tile_keys(self) -> list[tuple[int, int, int]]:
        return self.conn.execute(
            "SELECT level, idx, width FROM ledger_tiles UNION ALL "
            "SELECT level, idx, width FROM ledger_partial_tiles ORDER BY level, idx"
        ).fetchall()

    def write_tiles(self, tiles: list[tuple[int, int, bytes]]) -> None:
        """Full tiles are inserted once; each level's partial tile replaces the previous one."""
        full = [t for t in tiles if len(t[2]) == TILE_BYTES]
        if full:
            self._insert_arrow(
                "ledger_tiles",
                pa.table(
                    {
                        "level": pa.array([t[0] for t in full], pa.int32()),
                        "idx": pa.array([t[1] for t in full], pa.int64()),
                        "width": pa.array([256] * len(full), pa.int32()),
                        "hashes": pa.array([t[2] for t in full], pa.binary()),
                    }
                ),
            )
        levels = {t[0] for t in tiles}
        if levels:
            self.conn.execute(
                f"DELETE FROM ledger_partial_tiles WHERE level IN ({', '.join(str(int(lv)) for lv in levels)})"
            )
        for level, index, hashes in tiles:
            if len(hashes) != TILE_BYTES:
                self.conn.execute(
                    "INSERT INTO ledger_partial_tiles (level, idx, width, hashes) VALUES (?, ?, ?, ?)",
                    [level, index, len(hashes) // 32, hashes],
                )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self.conn.execute(
            "INSERT INTO ledger_checkpoints (size, root, note, created) VALUES (?, ?, ?, ?)",
            [row.size, row.root, row.note, row.created],
        )

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self.conn.execute(
            "SELECT size, root, note, created FROM ledger_checkpoints ORDER BY size"
        ).fetchall()
        return [CheckpointRow(int(s), bytes(r), n, c) for s, r, n, c in rows]

    def get_meta(self, key: str) -> str | None:
        rows = self.conn.execute("SELECT value FROM ledger_meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM ledger_meta WHERE key = ?", [key])
            self.conn.execute("INSERT INTO ledger_meta (key, value) VALUES (?, ?)", [key, value])

    def put_payloads(self, rows: list[tuple[str, str, bytes]]) -> None:
        if not rows:
            return
        types, ids, data = zip(*rows, strict=True)
        self._insert_arrow(
            "ledger_payloads",
            pa.table(
                {
                    "record_type": pa.array(types, pa.string()),
                    "record_id": pa.array(ids, pa.string()),
                    "data": pa.array(data, pa.binary()),
                }
            ),
            "record_type, record_id, data",
        )

    def get_payloads(self, record_type: str, record_ids: list[str]) -> dict[str, bytes | None]:
        if not record_ids:
            return {}
        found: dict[str, bytes | None] = {}
        for i in range(0, len(record_ids), 1000):
            chunk = record_ids[i : i + 1000]
            rows = self.conn.execute(
                "SELECT record_id, data FROM ledger_payloads WHERE record_type = ? AND record_id IN "
                f"({', '.join('?' for _ in chunk)})",
                [record_type, *chunk],
            ).fetchall()
            found.update({r: None if d is None else bytes(d) for r, d in rows})
        return found


def _consecutive(idx: pa.ChunkedArray, start: int) -> bool:
    """Whether ``idx`` is start, start + 1, ... in this order."""
    if not len(idx):
        return True
    arr = idx.combine_chunks()
    if arr.null_count or arr[0].as_py() != start:
        return False
    return len(arr) == 1 or bool(pc.all(pc.equal(pc.pairwise_diff(arr), 1)).as_py())


def compact_database(path: str | os.PathLike[str]) -> None:
    """Rewrite a DuckDB file so that deleted and nulled bytes are no longer anywhere in it.

    DuckDB does not zero freed blocks, so after a purge the old payload bytes stay in the file until the
    block happens to be reused. Copying the live data into a fresh file and swapping it in removes them.
    No connection to ``path`` may be open (DuckDB shares one instance per file inside a process).
    """
    src = Path(path)
    tmp = src.with_name(src.name + ".compact")
    for stale in (tmp, Path(str(tmp) + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{_sql_str(src)}' AS ap_src (READ_ONLY)")
        con.execute(f"ATTACH '{_sql_str(tmp)}' AS ap_dst")
        con.execute("COPY FROM DATABASE ap_src TO ap_dst")
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'ap_src'"
        ).fetchall()
        for schema, table in tables:
            q = f'"{schema}"."{table}"'
            a = con.execute(f"SELECT count(*) FROM ap_src.{q}").fetchall()
            b = con.execute(f"SELECT count(*) FROM ap_dst.{q}").fetchall()
            if a != b:
                raise RuntimeError(f"compaction lost rows in {schema}.{table}; original kept")
        con.execute("CHECKPOINT ap_dst")
        con.execute("DETACH ap_src")
        con.execute("DETACH ap_dst")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, src)
    Path(str(src) + ".wal").unlink(missing_ok=True)


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")
