"""The server store: canonical evidence and the ledger in one PostgreSQL schema.

``open_store("postgresql://user@host:5432/db?schema=acme")`` (or libpq's own
``?options=-csearch_path%3Dacme``) opens the schema named in the URL (``public`` if none), creating it
and its tables on first use and upgrading an older one (``migrations``). A batch is one transaction, like
the embedded store's: duplicates are decided against the keys already stored (one indexed lookup per
batch), the new rows go in by binary COPY, and ingest seals them before the commit. Writers take an
advisory lock per schema for the transaction, because the ledger numbers its entries from the stored
size: two writers must not both append at the same index. Readers take no lock.

SQL arrives in DuckDB's dialect (linking, controls and queries are written for it) and runs after
``store.dialect.to_backend`` (whose compatibility functions are installed on open); parameters are then
numbered ``$1, $2…`` and bound by the server, so a ``%`` or ``?`` inside a string literal is left alone.

Local files of a PostgreSQL store — the ledger signing key (``keys/ledger.key``, mode 0600), the
verifier key and an optional ``retention.yaml`` — live in ``store_home(url)``:
``$ACCESSPROOF_HOME/postgres/<host>-<port>-<database>-<schema>`` (``ACCESSPROOF_HOME`` defaults to
``~/.accessproof``). The signing key is never put in the database: a dump or a database administrator
must not be able to sign checkpoints. The verifier key is also kept in ``ledger_meta``.

PostgreSQL text cannot hold a NUL character: in text columns it is stored as U+FFFD (the raw bytes, in
``raw_records.data``, are kept exactly).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql as pgsql

from accessproof.store.base import Batch, BatchResult, StoreError
from accessproof.store.migrations import MigrationError, current_version, upgrade
from accessproof.store.schema import TABLES

try:  # the DuckDB → PostgreSQL translation layer and its compatibility functions; without it SQL runs as written
    from accessproof.store.dialect import install_compat as _install_compat
    from accessproof.store.dialect import to_backend as _to_backend
except ImportError:  # pragma: no cover - depends on the checkout
    _install_compat = _to_backend = None

SCHEMES = ("postgresql://", "postgres://")
#: serialises writers of one schema (store batches and ledger appends) for the rest of the transaction
WRITE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('accessproof:write:' || current_schema()))"
_PG_TYPES = {"VARCHAR": "text", "BLOB": "bytea", "TIMESTAMPTZ": "timestamptz", "INTEGER": "int4",
             "BIGINT": "int8"}
_CANONICAL = {"events": "events", "workflow": "workflow_records", "persons": "persons"}
_SEARCH_PATH = re.compile(r"search_path\s*=\s*([^\s]+)")
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def _parts(url: str) -> tuple[str, str | None, dict[str, str]]:
    """(libpq URL without our ``schema`` parameter, that schema, the remaining query parameters)."""
    split = urlsplit(url)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    schema = query.pop("schema", None) or None
    return urlunsplit(split._replace(query=urlencode(query))), schema, query


def url_schema(url: str) -> str:
    """The schema a URL names: ``schema=`` or the first entry of ``options=-csearch_path=…``; else public."""
    _conninfo, schema, query = _parts(url)
    if schema:
        return schema
    m = _SEARCH_PATH.search(query.get("options", ""))
    if m:
        first = m.group(1).split(",")[0].strip().strip('"')
        if first and first != "$user":
            return first
    return "public"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    split = urlsplit(url)
    if split.password is None:
        return url
    netloc = split.netloc.replace(f":{split.password}@", ":***@", 1)
    return urlunsplit(split._replace(netloc=netloc))


def store_home(url: str) -> Path:
    """Where a PostgreSQL store's local files (signing key, verifier key, retention.yaml) live."""
    split = urlsplit(url)
    query = dict(parse_qsl(split.query))
    host = query.get("host") or split.hostname or "localhost"
    port = query.get("port") or (str(split.port) if split.port else "5432")
    db = query.get("dbname") or split.path.lstrip("/") or split.username or "postgres"
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", p) for p in (host, port, db, url_schema(url)))
    base = Path(os.environ.get("ACCESSPROOF_HOME") or Path.home() / ".accessproof")
    return base / "postgres" / name


def connect(url: str, *, create: bool = True) -> psycopg.Connection:
    """An autocommit connection to the store in ``url``'s schema, created (if ``create``) and upgraded to
    the latest schema version. Errors are ``StoreError`` with one line and no password."""
    conninfo, schema, query = _parts(url)
    target = url_schema(url)
    shown = redact(url)
    extra = {} if "connect_timeout" in query else {"connect_timeout": 10}
    try:
        # no server-side prepared statements: linking and controls rebuild tables, and a plan prepared
        # before a rebuild fails after it ("cached plan must not change result type")
        con = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **extra)
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to {shown}: {_first_line(e)}") from None
    try:
        con.execute("SET TIME ZONE 'UTC'")
        if schema:
            con.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema)))
        if con.execute("SELECT current_schema()").fetchone()[0] is None:
            if not create:
                raise StoreError(f"no store at {shown} (schema {target} does not exist)")
            con.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(target)))
        if current_version(con) is None and not create:
            raise StoreError(f"no store at {shown} (run 'accessproof init' or 'accessproof ingest' first)")
        upgrade(con)
        if _install_compat is not None:
            _install_compat(con)
    except (psycopg.Error, MigrationError) as e:
        con.close()
        raise StoreError(f"cannot open store {shown}: {_first_line(e)}") from None
    except BaseException:
        con.close()
        raise
    return con


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# ------------------------------------------------------------------------------------------------ SQL


@lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """SQL written for DuckDB as PostgreSQL runs it: translated by ``dialect.to_backend`` if present, then
    placeholders numbered for server-side binding (see ``number_placeholders``)."""
    if _to_backend is not None:
        sql = _to_backend(sql, "postgres")
    return number_placeholders(sql)


def number_placeholders(sql: str) -> str:
    """``?``, ``%s`` and ``%(n)s`` outside literals, identifiers and comments become ``$1, $2…`` (``$n``
    stays); everything inside quotes is left exactly as written."""
    if "?" not in sql and "%" not in sql:
        return sql
    out: list[str] = []
    i, n, size = 0, 0, len(sql)
    while i < size:
        c = sql[i]
        if c in "'\"":
            j = _quoted_end(sql, i, c, escapes=c == "'" and i > 0 and sql[i - 1] in "eE"
                            and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_")))
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = size if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = size if j < 0 else j + 2
        elif c == "$":
            m = _DOLLAR_QUOTE.match(sql, i)
            if m is not None:  # $tag$ … $tag$
                close = sql.find(m.group(0), m.end())
                j = size if close < 0 else close + len(m.group(0))
            else:
                j = i + 1
                while j < size and sql[j].isdigit():
                    j += 1
                if j > i + 1:
                    n = max(n, int(sql[i + 1 : j]))
        elif c == "?":
            n += 1
            out.append(f"${n}")
            i += 1
            continue
        elif sql.startswith("%s", i):
            n += 1
            out.append(f"${n}")
            i += 2
            continue
        elif c == "%" and (m := re.match(r"%\((\d+)\)s", sql[i : i + 16])) is not None:
            n = max(n, int(m.group(1)))
            out.append(f"${m.group(1)}")
            i += len(m.group(0))
            continue
        else:
            j = i + 1
        out.append(sql[i:j])
        i = j
    return "".join(out)


def _quoted_end(sql: str, start: int, quote: str, *, escapes: bool) -> int:
    """Index just past the literal or identifier opened at ``start`` (doubled quotes; E'' backslashes)."""
    i = start + 1
    while i < len(sql):
        c = sql[i]
        if escapes and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


# ----------------------------------------------------------------------------------------------- store


@dataclass(slots=True)
class Added:
    """The rows one batch added, handed to ``write_batch``'s ``before_commit`` inside its transaction, so
    ingest seals them from memory: ``raw`` (columns of ``raw_records``) and ``quarantine`` (of
    ``quarantine``, or None)."""

    con: psycopg.Connection
    raw: pa.Table
    quarantine: pa.Table | None


class PostgresStore:
    """Canonical evidence in one PostgreSQL schema (see the module docstring)."""

    dialect = "postgres"
    supports_bulk = False  # the bytes-recognised bulk path normalises in DuckDB SQL

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = url
        self.dir = store_home(url)
        self.read_only = read_only  # an existing store only; writes are not refused (no session lock-out)
        self.con = connect(url, create=not read_only)

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    # ---------------------------------------------------------------- writes

    def write_batch(self, batch: Batch, run_id: str,
                    before_commit: Callable[[Added], None] | None = None) -> BatchResult:
        """Write one batch in one transaction; ``before_commit(Added)`` runs inside it (ingest seals there)."""
        if batch.bulk is not None and batch.bulk.num_rows:
            raise StoreError("the bulk (SQL-normalised) path is DuckDB's; PostgreSQL takes parsed records")
        raw = batch.raw
        with self.con.transaction(), self.con.cursor() as cur:
            cur.execute(WRITE_LOCK)
            new_seqs = self._new_seqs(cur, raw)
            new_raw = raw.filter(pc.is_in(raw.column("_seq"), value_set=new_seqs))
            _copy(cur, "raw_records", new_raw, run_id)
            for attr, table in _CANONICAL.items():
                tbl = getattr(batch, attr)
                if tbl is not None and tbl.num_rows:
                    _copy(cur, table, tbl.filter(pc.is_in(tbl.column("_seq"), value_set=new_seqs)))
            new_q = None
            if batch.quarantine is not None and batch.quarantine.num_rows:
                new_q = self._new_quarantine(cur, batch.quarantine)
                _copy(cur, "quarantine", new_q, run_id)
            if before_commit is not None:
                before_commit(Added(self.con, new_raw, new_q))
        quarantined = batch.quarantine.num_rows if batch.quarantine is not None else 0
        return BatchResult(accepted=new_raw.num_rows, duplicate=raw.num_rows - new_raw.num_rows,
                           quarantined=quarantined)

    @staticmethod
    def _new_seqs(cur: psycopg.Cursor, raw: pa.Table) -> pa.Array:
        """``_seq`` of the first row of each raw id not already stored: the rows this batch adds."""
        ids = raw.column("raw_id").to_pylist()
        stored = {r[0] for r in cur.execute("SELECT raw_id FROM raw_records WHERE raw_id = ANY(%s)", [ids])}
        first: dict[str, int] = {}
        for rid, seq in zip(ids, raw.column("_seq").to_pylist(), strict=True):
            if rid not in stored and (rid not in first or seq < first[rid]):
                first[rid] = seq
        return pa.array(list(first.values()), pa.int64())

    @staticmethod
    def _new_quarantine(cur: psycopg.Cursor, q: pa.Table) -> pa.Table:
        ids = q.column("quarantine_id").to_pylist()
        seen = {r[0] for r in cur.execute(
            "SELECT quarantine_id FROM quarantine WHERE quarantine_id = ANY(%s)", [ids])}
        keep = []
        for qid in ids:
            keep.append(qid not in seen)
            seen.add(qid)
        return q.filter(pa.array(keep, pa.bool_()))

    # ---------------------------------------------------------------- reads

    def _cursor(self) -> psycopg.RawCursor:
        return psycopg.RawCursor(self.con)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._cursor() as cur:
            cur.execute(to_postgres(sql), list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._cursor() as cur:
            cur.execute(to_postgres(sql), list(params) if params else None)
            return cur.fetchall() if cur.description else []

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(to_postgres(sql), list(params) if params else None)
            if not cur.description:
                return []
            names = [d.name for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] | None = None, size: int = 10_000) -> Iterator[tuple]:
        with self._cursor() as cur:
            yield from cur.stream(to_postgres(sql), list(params) if params else None, size=size)

    def close(self) -> None:
        self.con.close()


def _copy(cur: psycopg.Cursor, table: str, rows: pa.Table, run_id: str | None = None) -> None:
    """Binary COPY of ``rows`` into ``table`` (columns in schema order; ``run_id`` filled in if absent)."""
    if not rows.num_rows:
        return
    columns = TABLES[table][0]
    values: list[Any] = []
    for name, _type in columns:
        if name == "run_id" and name not in rows.column_names:
            values.append([run_id] * rows.num_rows)
        else:
            values.append(_text_safe(rows.column(name)).to_pylist())
    names = ", ".join(name for name, _ in columns)
    with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types([_PG_TYPES[t] for _, t in columns])
        for row in zip(*values, strict=True):
            cp.write_row(row)


def _text_safe(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """NUL characters, which PostgreSQL text cannot hold, as U+FFFD (only text columns holding one)."""
    if not pa.types.is_string(col.type) or not pc.any(pc.match_substring(col, "\x00")).as_py():
        return col
    return pc.replace_substring(col, "\x00", "\ufffd")
