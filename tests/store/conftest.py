"""Backends for tests: each PostgreSQL test gets a fresh schema (dropped afterwards) and a home directory of
its own for key files; ``store_url`` runs a test once per backend (a DuckDB directory, a PostgreSQL URL).

PostgreSQL is expected on 127.0.0.1:5432 (trust auth, database ``test``; ``scripts/services.sh`` starts
it, ``ACCESSPROOF_TEST_PG`` names another server). A test that needs it fails when it is not there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

PG_SERVER = os.environ.get("ACCESSPROOF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER} (run scripts/services.sh): {e}")


def schema_url(schema: str) -> str:
    """The server URL naming ``schema`` the libpq way (options=-csearch_path=…)."""
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL naming a schema no other test uses; the schema (and its backup copy) is dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("ACCESSPROOF_HOME", str(tmp_path / "home"))
    admin = pg_admin()
    admin.close()
    yield schema_url(schema)
    admin = pg_admin()
    try:
        admin.execute("SET lock_timeout = '20s'")
        for name in (schema, schema + "_bk"):
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        admin.close()


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, once per backend: a fresh DuckDB directory or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        return str(tmp_path / "store")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def backend_store(store_url: str) -> Iterator[Any]:
    from accessproof.store import open_store

    s = open_store(store_url)
    yield s
    s.close()


def is_postgres(location: str) -> bool:
    return location.startswith("postgresql://")


def db_execute(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Test SQL written for DuckDB (``?`` parameters, ``::BLOB``) on a DuckDB or PostgreSQL connection."""
    if isinstance(conn, duckdb.DuckDBPyConnection):
        return conn.execute(sql, list(params)).fetchall()
    import psycopg

    from accessproof.store.postgres import number_placeholders

    cur = psycopg.RawCursor(conn).execute(number_placeholders(sql.replace("::BLOB", "::bytea")), list(params) or None)
    return cur.fetchall() if cur.description else []


def backup_store(location: str, into: Path) -> None:
    """Copy the whole store aside (DuckDB: the file, no connection open; PostgreSQL: a sibling schema)."""
    if not is_postgres(location):
        shutil.copy(Path(location) / "accessproof.duckdb", into)
        return
    schema = _schema(location)
    admin = pg_admin()
    try:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}_bk" CASCADE; CREATE SCHEMA "{schema}_bk"')
        for table in _tables(admin, schema):
            admin.execute(f'CREATE TABLE "{schema}_bk"."{table}" AS TABLE "{schema}"."{table}"')
    finally:
        admin.close()


def restore_store(location: str, backup: Path) -> None:
    """Put back what ``backup_store`` copied: every table as it was, the ledger's included."""
    if not is_postgres(location):
        shutil.copy(backup, Path(location) / "accessproof.duckdb")
        return
    schema = _schema(location)
    admin = pg_admin()
    try:
        with admin.transaction():
            for table in _tables(admin, schema + "_bk"):
                admin.execute(f'TRUNCATE "{schema}"."{table}"')
                admin.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{schema}_bk"."{table}"')
    finally:
        admin.close()


def _schema(location: str) -> str:
    from accessproof.store.postgres import url_schema

    return url_schema(location)


def _tables(admin: Any, schema: str) -> list[str]:
    rows = admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]
