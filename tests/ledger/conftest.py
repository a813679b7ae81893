from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from accessproof.ledger import Ledger, SealRecord, init_store, open_ledger
from tests.store.conftest import db_execute

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def raw_records(n: int, start: int = 0, *, days_apart: int = 0) -> list[SealRecord]:
    return [
        SealRecord(
            "raw",
            f"raw-{i:06d}",
            "okta:acme",
            T0 + timedelta(days=days_apart * i, seconds=i),
            f"payload {i} for someone".encode(),
            subject=f"user{i % 5}@acme.com",
            kind="event",
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def ledger(store_dir: Path) -> Iterator[Ledger]:
    led, _ = init_store(store_dir)
    yield led
    led.close()


@pytest.fixture
def any_ledger(store_url: str) -> Iterator[Ledger]:
    """A fresh ledger once per backend (DuckDB directory, PostgreSQL schema)."""
    led, _ = init_store(store_url)
    yield led
    led.close()


def reopen(store_dir: Path) -> Ledger:
    return open_ledger(store_dir)


def seal_raw(led: Ledger, records: list[SealRecord]) -> int:
    """Store raw payloads in the store's raw_records table and seal them, in one transaction."""
    from accessproof.store.schema import create_table_sql

    conn = led.storage.conn  # type: ignore[attr-defined]
    if isinstance(conn, duckdb.DuckDBPyConnection):
        conn.execute(create_table_sql("raw_records"))
    with led.storage.transaction():
        for r in records:
            db_execute(
                conn,
                "INSERT INTO raw_records (raw_id, source, record_type, data) VALUES (?, ?, ?, ?)",
                [r.record_id, r.source, r.kind, r.payload],
            )
        return led.seal(records)
