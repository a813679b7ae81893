"""PostgreSQL implementation of ``LedgerStorage`` and ``PayloadStore``, in the store's schema.

The tables are created by the store's migrations (``store/migrations``), with the keys DuckDB leaves
implicit: one row per index, tile, checkpoint and meta key. Every transaction the ledger opens — or joins —
takes the store's per-schema write lock first (``store.postgres.WRITE_LOCK``): entries are numbered from
the stored size, so appends from two processes (a CLI ingest beside the server) must not interleave.
Entries go in by COPY; each level's partial tile is an upsert. Payload checks take the portable path of
``verify`` (payloads fetched by id, hashed in Python); the leaf hashes can be computed by the server
(``leaf_hashes_blob``), as on DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg.pq import TransactionStatus

from accessproof.ledger.payloads import DEFAULT_TABLES, RecordRef, payload_tables
from accessproof.ledger.storage import CheckpointRow, EntryIndex
from accessproof.store.migrations import upgrade
from accessproof.store.postgres import WRITE_LOCK

TILE_BYTES = 256 * 32
_CHUNK = 10_000  # ids per ANY(…) lookup


def is_postgres_connection(conn: object) -> bool:
    return isinstance(conn, psycopg.Connection)


class PostgresLedgerStorage:
    """Ledger tables inside the store's PostgreSQL schema, on the caller's (autocommit) connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def setup(self) -> None:
        """Create or upgrade the store's tables (the ledger's among them); nothing to do when current."""
        upgrade(self.conn)

    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The caller's transaction if one is open (it commits or rolls back), else a new one; the write
        lock is taken either way (it is held until that transaction ends)."""
        if self.in_transaction():
            self.conn.execute(WRITE_LOCK)
            yield
            return
        with self.conn.transaction():
            self.conn.execute(WRITE_LOCK)
            yield

    def concurrent_reader(self) -> None:
        return None  # one connection: verification reads ahead in the same session

    def close(self) -> None:
        self.conn.close()

    def size(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries").fetchone()[0])

    def write_entries(self, start: int, entries: list[bytes], index: EntryIndex) -> None:
        times = [datetime.fromisoformat(t) for t in index.record_times]  # binary COPY: a third faster
        rows = zip(range(start, start + len(entries)), entries, index.record_types, index.record_ids,
                   times, index.retentions, strict=True)
        with self.conn.cursor() as cur, cur.copy(
            "COPY ledger_entries (idx, entry, record_type, record_id, record_time, retention) "
            "FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.set_types(["int8", "bytea", "text", "text", "timestamptz", "text"])
            for row in rows:
                cp.write_row(row)

    def read_entries(self, start: int, end: int) -> tuple[list[int], list[bytes]]:
        rows = self.conn.execute(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= %s AND idx < %s ORDER BY idx", [start, end]
        ).fetchall()
        return [int(r[0]) for r in rows], [r[1] for r in rows]

    def leaf_hashes_blob(self, start: int, end: int) -> bytes | None:
        """SHA-256(0x00 ‖ entry) of entries [start, end) concatenated, computed by the server; None unless
        exactly those indexes are stored, once each."""
        n, distinct, lo, hi, blob = self.conn.execute(
            "SELECT count(*), count(DISTINCT idx), min(idx), max(idx), "
            "string_agg(sha256('\\x00'::bytea || entry), ''::bytea ORDER BY idx) "
            "FROM ledger_entries WHERE idx >= %s AND idx < %s",
            [start, end],
        ).fetchone()
        if n != end - start or distinct != n or lo != start or hi != end - 1:
            return None
        return bytes(blob)

    def find_entries(
        self, *, record_id: str | None = None, record_types: list[str] | None = None
    ) -> list[tuple[int, bytes]]:
        where, params = [], []
        if record_id is not None:
            where.append("record_id = %s")
            params.append(record_id)
        if record_types:
            where.append("record_type = ANY(%s)")
            params.append(list(record_types))
            if not {"raw", "quarantine"} & set(record_types):  # the partial index of the ledger's own types
                where.append("record_type NOT IN ('raw', 'quarantine')")
        sql = "SELECT idx, entry FROM ledger_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self.conn.execute(sql + " ORDER BY idx", params).fetchall()

    def expired_candidates(self, retention: str, before: datetime) -> list[tuple[int, bytes]]:
        return self.conn.execute(
            "SELECT idx, entry FROM ledger_entries WHERE retention = %s AND record_time < %s ORDER BY idx",
            [retention, before],
        ).fetchall()

    def read_tile(self, level: int, index: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT hashes FROM ledger_tiles WHERE level = %s AND idx = %s UNION ALL "
            "SELECT hashes FROM ledger_partial_tiles WHERE level = %s AND idx = %s",
            [level, index, level, index],
        ).fetchone()
        return bytes(row[0]) if row else None

    def read_tile_set(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        levels, idxs = [int(k[0]) for k in keys], [int(k[1]) for k in keys]
        rows = self.conn.execute(
            "WITH k AS (SELECT * FROM unnest(%s::int[], %s::bigint[]) AS k(level, idx)) "
            "SELECT t.level, t.idx, t.hashes FROM ledger_tiles t JOIN k USING (level, idx) UNION ALL "
            "SELECT t.level, t.idx, t.hashes FROM ledger_partial_tiles t JOIN k USING (level, idx)",
            [levels, idxs],
        ).fetchall()
        return {(int(lv), int(i)): bytes(h) for lv, i, h in rows}

    def read_tiles(self, level: int, first: int, last: int) -> dict[int, bytes]:
        rows = self.conn.execute(
            "SELECT idx, hashes FROM ledger_tiles WHERE level = %s AND idx >= %s AND idx < %s UNION ALL "
            "SELECT idx, hashes FROM ledger_partial_tiles WHERE level = %s AND idx >= %s AND idx < %s",
            [level, first, last, level, first, last],
        ).fetchall()
        return {int(i): bytes(h) for i, h in rows}

    def tile_keys(self) -> list[tuple[int, int, int]]:
        return self.conn.execute(
            "SELECT level, idx, width FROM ledger_tiles UNION ALL "
            "SELECT level, idx, width FROM ledger_partial_tiles ORDER BY level, idx"
        ).fetchall()

    def write_tiles(self, tiles: list[tuple[int, int, bytes]]) -> None:
        """Full tiles are inserted once; each level's partial tile replaces the previous one."""
        full = [(lv, i, 256, h) for lv, i, h in tiles if len(h) == TILE_BYTES]
        with self.conn.cursor() as cur:
            if full:
                cur.executemany("INSERT INTO ledger_tiles (level, idx, width, hashes) VALUES (%s, %s, %s, %s)",
                                full)
            levels = sorted({int(t[0]) for t in tiles})
            if levels:
                cur.execute("DELETE FROM ledger_partial_tiles WHERE level = ANY(%s)", [levels])
            partial = [(lv, i, len(h) // 32, h) for lv, i, h in tiles if len(h) != TILE_BYTES]
            if partial:
                cur.executemany(
                    "INSERT INTO ledger_partial_tiles (level, idx, width, hashes) VALUES (%s, %s, %s, %s)",
                    partial,
                )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self.conn.execute(
            "INSERT INTO ledger_checkpoints (size, root, note, created) VALUES (%s, %s, %s, %s)",
            [row.size, row.root, row.note, row.created],
        )

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self.conn.execute("SELECT size, root, note, created FROM ledger_checkpoints ORDER BY size")
        return [CheckpointRow(int(s), bytes(r), n, c) for s, r, n, c in rows.fetchall()]

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = %s", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO ledger_meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def put_payloads(self, rows: list[tuple[str, str, bytes]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ledger_payloads (record_type, record_id, data) VALUES (%s, %s, %s)", rows
                )

    def get_payloads(self, record_type: str, record_ids: list[str]) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for i in range(0, len(record_ids), _CHUNK):
            rows = self.conn.execute(
                "SELECT record_id, data FROM ledger_payloads WHERE record_type = %s AND record_id = ANY(%s)",
                [record_type, record_ids[i : i + _CHUNK]],
            ).fetchall()
            found.update({r: None if d is None else bytes(d) for r, d in rows})
        return found


class PostgresPayloads:
    """``PayloadStore`` over the store's tables in the same schema (missing tables hold nothing)."""

    def __init__(
        self, conn: psycopg.Connection, tables: dict[str, tuple[str, str, str]] | None = None
    ) -> None:
        self.conn = conn
        self.tables = payload_tables(tables)

    def _exists(self, table: str) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
        return bool(row and row[0])

    def _where(self, record_type: str) -> tuple[str, str, str, str, list[str]]:
        """(table, id column, data column, extra condition, its parameters) for one record type."""
        table, id_col, data_col = self.tables[record_type]
        if table == "ledger_payloads":
            return table, id_col, data_col, " AND record_type = %s", [record_type]
        return table, id_col, data_col, "", []

    def get(self, refs: Sequence[RecordRef]) -> dict[int, bytes | None]:
        by_type: dict[str, list[tuple[int, str]]] = {}
        for idx, record_type, record_id in refs:
            if record_type in self.tables:
                by_type.setdefault(record_type, []).append((idx, record_id))
        out: dict[int, bytes | None] = {}
        for record_type, pairs in by_type.items():
            table, id_col, data_col, extra, params = self._where(record_type)
            if not self._exists(table):
                out.update((idx, None) for idx, _ in pairs)
                continue
            found: dict[str, bytes | None] = {}
            ids = [rid for _, rid in pairs]
            for i in range(0, len(ids), _CHUNK):
                rows = self.conn.execute(
                    f"SELECT {id_col}, {data_col} FROM {table} WHERE {id_col} = ANY(%s){extra}",
                    [ids[i : i + _CHUNK], *params],
                ).fetchall()
                found.update(rows)
            out.update((idx, found.get(rid)) for idx, rid in pairs)
        return out

    def purge(self, refs: Sequence[RecordRef]) -> int:
        by_type: dict[str, list[str]] = {}
        for ref in refs:
            if ref.record_type in self.tables:
                by_type.setdefault(ref.record_type, []).append(ref.record_id)
        count = 0
        for record_type, ids in by_type.items():
            table, id_col, data_col, extra, params = self._where(record_type)
            if not self._exists(table):
                continue
            cur = self.conn.execute(
                f"UPDATE {table} SET {data_col} = NULL WHERE {id_col} = ANY(%s) AND {data_col} IS NOT NULL"
                f"{extra}",
                [ids, *params],
            )
            count += cur.rowcount
        return count

    def record_ids(self) -> Iterable[tuple[str, str]]:
        for record_type, (table, id_col, _data) in self.tables.items():
            if table == "ledger_payloads" or not self._exists(table):
                continue
            for (rid,) in self.conn.execute(f"SELECT {id_col} FROM {table}").fetchall():
                yield record_type, rid


def vacuum_payloads(conn: psycopg.Connection) -> None:
    """Rewrite the tables that hold payloads, so purged bytes leave the table files (``VACUUM FULL``: an
    exclusive lock on each table while it is rewritten). Backups and WAL archives keep their own copies."""
    for table in sorted({t for t, _i, _d in DEFAULT_TABLES.values()} | {"ledger_payloads"}):
        conn.execute(f"VACUUM FULL {table}")
