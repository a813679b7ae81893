"""What the ledger needs from a database: a small protocol, so DuckDB now and PostgreSQL later fit.

Tables (all prefixed ``ledger_``, plain SQL types):

* ``ledger_entries(idx, entry, record_type, record_id, record_time, retention)`` — the sealed leaves;
  the columns after ``entry`` are a lookup index copied from the entry and are never trusted alone:
  every reader that acts on them re-reads the entry bytes, which the tree covers.
* ``ledger_tiles(level, idx, width, hashes)`` — full hash tiles (see ``tiles``), written once; the
  partial tile of each level lives in ``ledger_partial_tiles`` and is replaced as the log grows.
* ``ledger_checkpoints(size, root, note, created)`` — every signed checkpoint ever issued.
* ``ledger_payloads(record_type, record_id, data)`` — payloads of the ledger's own records (holds,
  releases, purge manifests). Payloads of ingested records stay in the store's tables (see ``payloads``).
* ``ledger_meta(key, value)`` — the log origin and verifier key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root: bytes
    note: str
    created: datetime


@dataclass
class EntryIndex:
    """Lookup columns for a batch of entries, parallel to the entries (times as the entries' ISO text)."""

    record_types: list[str]
    record_ids: list[str]
    record_times: list[str]
    retentions: list[str]


class LedgerStorage(Protocol):
    def setup(self) -> None:
        """Create the ledger tables if they do not exist."""

    def transaction(self) -> AbstractContextManager[None]:
        """Atomic scope; joins the caller's open transaction instead of nesting one."""

    def size(self) -> int:
        """Number of stored entries (max idx + 1)."""

    def concurrent_reader(self) -> LedgerStorage | None:
        """A second handle another thread may read from (None if the backend cannot give one)."""

    def close(self) -> None:
        """Release a handle from ``concurrent_reader`` (the main storage belongs to its caller)."""

    def write_entries(self, start: int, entries: list[bytes], index: EntryIndex) -> None: ...

    def read_entries(self, start: int, end: int) -> tuple[list[int], list[bytes]]:
        """Indexes and entries with start <= idx < end, ordered by idx: gaps and duplicates show through."""

    def find_entries(
        self, *, record_id: str | None = None, record_types: list[str] | None = None
    ) -> list[tuple[int, bytes]]: ...

    def expired_candidates(self, retention: str, before: datetime) -> list[tuple[int, bytes]]:
        """Entries of retention class ``retention`` whose record time is before ``before``."""

    def read_tile(self, level: int, index: int) -> bytes | None: ...

    def read_tile_set(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Several tiles by (level, index) in one round trip (a proof needs a handful)."""

    def read_tiles(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Tiles first <= index < last of one level (verification reads them in bulk)."""

    def tile_keys(self) -> list[tuple[int, int, int]]:
        """(level, index, width) of every stored tile."""

    def write_tiles(self, tiles: list[tuple[int, int, bytes]]) -> None:
        """Insert or replace tiles (level, index, concatenated hashes)."""

    def add_checkpoint(self, row: CheckpointRow) -> None: ...

    def checkpoints(self) -> list[CheckpointRow]:
        """All checkpoints, oldest (smallest size) first."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def put_payloads(self, rows: list[tuple[str, str, bytes]]) -> None:
        """Store ledger-own payloads (record_type, record_id, data)."""

    def get_payloads(self, record_type: str, record_ids: list[str]) -> dict[str, bytes | None]: ...
