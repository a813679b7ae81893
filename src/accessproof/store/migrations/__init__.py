"""Numbered migrations of a PostgreSQL store: ``NNNN_name.sql`` files applied in order, each recorded in
``schema_version`` (version, name, applied).

A numbered runner rather than Alembic: the schema is plain SQL owned by this package and applied when a
store is opened, so a version table and files read in order are all it takes, with nothing to configure
and no second copy of the tables in SQLAlchemy. A released migration is never edited; a change is a new
file. An upgrade runs in one transaction under an advisory lock: two processes opening an old store at
once apply each step once, and a step that fails leaves the store at its old version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('accessproof:migrate:' || current_schema()))"


class MigrationError(RuntimeError):
    """The migration files are inconsistent, or the store is newer than this accessproof."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration, by version; versions must run 1, 2, 3… with no gap."""
    found = []
    for path in sorted(HERE.glob("*.sql")):
        m = _FILE.match(path.name)
        if m is None:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(f"migration {mig.version:04d} follows {expected - 1:04d}: versions must not skip")
    return tuple(found)


def latest() -> int:
    return len(migrations())


def current_version(conn: Any) -> int | None:
    """The schema version of the store in ``conn``'s current schema; None when there is no store there."""
    row = conn.execute(
        "SELECT to_regclass(quote_ident(current_schema()) || '.schema_version') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return None
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def upgrade(conn: Any, target: int | None = None) -> tuple[int, int]:
    """Bring the store in ``conn``'s current schema to ``target`` (default: the latest version), creating it
    if there is none; returns (version before, version after)."""
    target = latest() if target is None else target
    before = current_version(conn)
    if before is not None and before > latest():
        raise MigrationError(
            f"store schema is at version {before}, newer than this accessproof knows ({latest()}); upgrade accessproof"
        )
    if before is not None and before >= target:
        return before, before
    with conn.transaction():
        conn.execute(_LOCK)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        now = current_version(conn) or 0  # another process may have upgraded while we waited for the lock
        for mig in migrations():
            if now < mig.version <= target:
                conn.execute(mig.sql)
                conn.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", [mig.version, mig.name])
        after = current_version(conn) or 0
    return before or 0, after
