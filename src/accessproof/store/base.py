"""The storage interface: what ingest, linking, controls and audit need from a database.

Small on purpose (in the spirit of Tessera's storage drivers): write one batch atomically, run SQL,
read rows. DuckDB implements it for the embedded store; PostgreSQL will implement it for the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


@dataclass(slots=True)
class Batch:
    """Arrow tables for one atomic write. Each carries a ``_seq`` column (read order inside the batch)
    and ``raw`` a ``dedupe_key`` column; duplicates are decided by the backend against stored keys."""

    raw: pa.Table
    events: pa.Table | None
    workflow: pa.Table | None
    persons: pa.Table | None
    quarantine: pa.Table | None
    #: records recognised from their bytes, normalised in the database by ``bulk_sql`` (see
    #: ``sources.cloudtrail_bulk``): columns data, sha256, _seq, file, position
    bulk: pa.Table | None = None
    bulk_sql: str | None = None
    bulk_source_type: str | None = None
    source_name: str | None = None


@dataclass(slots=True)
class BatchResult:
    accepted: int
    duplicate: int
    quarantined: int


class Store(Protocol):
    """A canonical evidence store."""

    dir: Path
    dialect: str  # sqlglot dialect name of the backend ("duckdb", "postgres")

    def write_batch(self, batch: Batch, run_id: str, before_commit: Callable[[Any], None] | None = None
                    ) -> BatchResult: ...

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]: ...

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]: ...

    def stream(self, sql: str, params: Sequence[Any] | None = None, size: int = 10_000) -> Iterator[tuple]: ...

    def close(self) -> None: ...


class StoreError(RuntimeError):
    """A store that cannot be opened or used; the message is one line for the user."""
