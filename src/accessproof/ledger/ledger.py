"""The ledger: one sequencer that appends entries, keeps tiles current, proves and signs.

Appends run in one database transaction (or join the caller's, so ingest can seal records in the same
transaction that stores them). The right edge of the tree is cached between appends and reloaded when the
stored size is not the one it expects (another writer, or a caller's rollback), so each batch costs its
own hashing plus a handful of tile writes, never a rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from accessproof.ledger import sqlseal, vechash
from accessproof.ledger.entry import (
    MAX_ENTRY_BYTES,
    EntryError,
    decode_entry,
    iso_many,
    iso_utc,
    make_entries,
)
from accessproof.ledger.merkle import (
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    leaf_hashes,
    verify_consistency,
)
from accessproof.ledger.note import (
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
)
from accessproof.ledger.storage import CheckpointRow, EntryIndex, LedgerStorage
from accessproof.ledger.tiles import Edge, TileError, TileReader, _Tile

if TYPE_CHECKING:
    from accessproof.ledger.payloads import PayloadStore
    from accessproof.ledger.retention import RetentionPolicy


class LedgerError(Exception):
    """A ledger operation that cannot proceed; the message is one line a person can act on."""


class SealRecord(NamedTuple):
    """One record to seal. ``retention`` defaults to the policy's class for (type, source, kind)."""

    record_type: str
    record_id: str
    source: str
    time: datetime | None  # None when the source gave no time
    payload: bytes
    subject: str | None = None
    retention: str | None = None
    kind: str | None = None


_FULL_CACHE_MAX = 4096


class Ledger:
    def __init__(
        self,
        storage: LedgerStorage,
        *,
        origin: str,
        signer: Signer | None = None,
        verifiers: Sequence[Verifier] = (),
        policy: RetentionPolicy | None = None,
        payloads: PayloadStore | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.storage = storage
        self.payloads = payloads
        self._on_close = on_close
        self.origin = origin
        self.signer = signer
        self.verifiers = list(verifiers) or ([signer.verifier] if signer else [])
        self.policy = policy
        self._lock = threading.RLock()
        self._edge: Edge | None = None
        self._full: dict[tuple[int, int], _Tile] = {}

    def close(self) -> None:
        """Close the connection if ``open_ledger`` opened it (a caller's connection stays open)."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.storage.size()

    def _edge_for(self, size: int) -> Edge:
        if self._edge is None or self._edge.size != size:
            self._full.clear()  # a rollback may have taken away tiles we cached
            self._edge = Edge.load(size, self.storage.read_tile)
        return self._edge

    def reader(self, size: int | None = None) -> TileReader:
        size = self.storage.size() if size is None else size
        if len(self._full) > _FULL_CACHE_MAX:
            self._full.clear()
        return TileReader(self.storage.read_tile, size, self._full)

    # -- appending ---------------------------------------------------------------------------------------

    def append(self, entries: list[bytes]) -> int:
        """Append ready-made entries (each checked to be a canonical entry); returns the first index."""
        parsed = [decode_entry(e) for e in entries]
        index = EntryIndex(
            record_types=[p.type for p in parsed],
            record_ids=[p.id for p in parsed],
            record_times=[p.record_time for p in parsed],
            retentions=[p.retention for p in parsed],
        )
        return self._append(entries, index)

    def seal(self, records: Sequence[SealRecord], *, sealed: datetime | None = None) -> int:
        """Make entries for ``records`` and append them; returns the index of the first one."""
        if not records:
            return self.storage.size()
        return self.seal_columns(
            [r.record_type for r in records],
            [r.record_id for r in records],
            [r.source for r in records],
            [r.time for r in records],
            [r.payload for r in records],
            subjects=[r.subject for r in records],
            kinds=[r.kind for r in records],
            retentions=[r.retention for r in records],
            sealed=sealed,
        )

    def seal_table(self, table: pa.Table, *, sealed: datetime | None = None) -> int:
        """Seal the rows of an Arrow table with columns record_type, record_id, source, time, payload and
        optionally subject, kind, retention (e.g. straight from a query over the rows just stored)."""
        names = set(table.column_names)

        def col(name: str) -> list[Any] | None:
            return table.column(name).to_pylist() if name in names else None

        missing = {"record_type", "record_id", "source", "time", "payload"} - names
        if missing:
            raise LedgerError(f"seal_table: missing columns {sorted(missing)}")
        return self.seal_columns(
            col("record_type"),
            col("record_id"),
            col("source"),
            col("time"),
            col("payload"),  # type: ignore[arg-type]
            subjects=col("subject"),
            kinds=col("kind"),
            retentions=col("retention"),
            sealed=sealed,
        )

    def seal_columns(
        self,
        record_types: list[str],
        record_ids: list[str],
        sources: list[str],
        times: list[datetime | None],
        payloads: list[bytes],
        *,
        subjects: list[str | None] | None = None,
        kinds: list[str | None] | None = None,
        retentions: list[str | None] | None = None,
        sealed: datetime | None = None,
    ) -> int:
        """Columnar sealing (no per-record objects); retention classes are looked up once per
        (type, source, kind). Returns the index of the first entry."""
        n = len(record_ids)
        if n == 0:
            return self.storage.size()
        kinds = kinds or [None] * n
        given = retentions or [None] * n
        cache: dict[tuple[str, str, str | None], str] = {}
        classes: list[str] = []
        for i in range(n):
            r = given[i]
            if r is None:
                key = (record_types[i], sources[i], kinds[i])
                r = cache.get(key)
                if r is None:
                    r = cache[key] = self._classify(*key, record_ids[i])
            classes.append(r)
        sealed = sealed or datetime.now(UTC)
        texts = iso_many(times)
        entries = make_entries(
            record_types, record_ids, sources, texts, payloads, classes, subjects, sealed=sealed
        )
        sealed_text = iso_utc(sealed)
        index_times = [t or sealed_text for t in texts]
        return self._append(entries, EntryIndex(list(record_types), list(record_ids), index_times, classes))

    def seal_query(
        self,
        con: Any,
        select_sql: str,
        params: Sequence[Any] | None = None,
        *,
        sealed: datetime | None = None,
    ) -> int:
        """Seal the rows of a query run on ``con`` (the ledger's own connection, or one inside the same
        DuckDB transaction): columns record_type, record_id, source, time, payload, kind. DuckDB builds
        the entries (see ``sqlseal``), so no per-record Python work. Returns the index of the first one."""
        return sqlseal.seal_query(self, con, select_sql, params, sealed=sealed)

    def _classify(self, record_type: str, source: str, kind: str | None, record_id: str) -> str:
        if self.policy is None:
            raise LedgerError(f"no retention class for {record_type} {record_id!r} and no policy loaded")
        return self.policy.classify(record_type, source, kind)

    def _append(self, entries: list[bytes], index: EntryIndex) -> int:
        for e in entries:
            if len(e) > MAX_ENTRY_BYTES:
                raise EntryError(f"entry of {len(e)} bytes is over the {MAX_ENTRY_BYTES} byte limit")
        if not entries:
            return self.storage.size()
        hashes = vechash.leaf_hash_list(entries) or leaf_hashes(entries)
        with self._lock:
            with self.storage.transaction():
                start = self.storage.size()
                new_edge, writes = self._edge_for(start).extend(hashes)
                self.storage.write_entries(start, entries, index)
                self.storage.write_tiles(writes)
            self._edge = new_edge
            return start

    def append_own(
        self,
        record_type: str,
        record_id: str,
        payload: bytes,
        *,
        time: datetime | None = None,
        subject: str | None = None,
    ) -> int:
        """Seal one of the ledger's own records (hold, release, purge…) and keep its payload."""
        with self._lock, self.storage.transaction():
            self.storage.put_payloads([(record_type, record_id, payload)])
            rec = SealRecord(
                record_type, record_id, "accessproof", time or datetime.now(UTC), payload, subject
            )
            return self.seal([rec])

    # -- reading and proving -----------------------------------------------------------------------------

    def entry(self, index: int) -> bytes:
        _, entries = self.storage.read_entries(index, index + 1)
        if not entries:
            raise LedgerError(f"no entry at index {index}")
        return bytes(entries[0])

    def find(self, record_id: str, record_type: str | None = None) -> list[int]:
        """Indexes of entries sealing ``record_id``, confirmed against the entry bytes."""
        rows = self.storage.find_entries(
            record_id=record_id, record_types=[record_type] if record_type else None
        )
        found = []
        for idx, data in rows:
            e = decode_entry(bytes(data))
            if e.id == record_id and (record_type is None or e.type == record_type):
                found.append(int(idx))
        return found

    def root(self, size: int | None = None) -> bytes:
        with self._lock:
            current = self.storage.size()
            size = current if size is None else size
            if size > current:
                raise LedgerError(f"tree size {size} is beyond the {current} entries stored")
            if size == current:
                return self._edge_for(current).root()
            return self.reader(size).root()

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size``; its tiles come in one query."""
        with self._lock:
            return self._proof(inclusion_ranges, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency path from ``old_size`` to ``new_size`` (default: now); tiles in one query."""
        with self._lock:
            return self._proof(consistency_ranges, old_size, new_size)

    def _proof(
        self, ranges_of: Callable[[int, int], list[tuple[int, int]]], first: int, size: int | None
    ) -> list[bytes]:
        reader = self.reader(size)
        try:
            ranges = ranges_of(first, reader.size)
            reader.prefetch(ranges, self.storage.read_tile_set)
            return [reader.subtree(lo, hi) for lo, hi in ranges]
        except (ProofError, TileError) as exc:
            raise LedgerError(str(exc)) from None

    # -- checkpoints -------------------------------------------------------------------------------------

    def open_checkpoint(self, note: str) -> tuple[str, int, bytes]:
        """(origin, size, root) of a checkpoint note signed by one of our verifier keys."""
        if not self.verifiers:
            raise LedgerError("no verifier key: run `accessproof init` or pass --key")
        try:
            origin, size, root = parse_checkpoint(open_note(note, self.verifiers))
        except NoteError as exc:
            raise LedgerError(f"checkpoint rejected: {exc}") from None
        if origin != self.origin:
            raise LedgerError(f"checkpoint is for log {origin!r}, not {self.origin!r}")
        return origin, size, root

    def checkpoints(self) -> list[CheckpointRow]:
        return self.storage.checkpoints()

    def checkpoint_at(self, size: int) -> CheckpointRow | None:
        return next((c for c in self.storage.checkpoints() if c.size == size), None)

    def checkpoint(self, now: datetime | None = None) -> CheckpointRow:
        """Sign the current tree head, after proving it extends the last checkpoint; returns the row."""
        if self.signer is None:
            raise LedgerError("no signing key: run `accessproof init` first")
        with self._lock, self.storage.transaction():
            size = self.storage.size()
            root = self._edge_for(size).root()
            previous = self.storage.checkpoints()
            if previous:
                last = previous[-1]
                _, old_size, old_root = self.open_checkpoint(last.note)
                if (old_size, old_root) != (last.size, last.root):
                    raise LedgerError(f"checkpoint row at size {last.size} does not match its signed note")
                if old_size > size:
                    raise LedgerError(
                        f"store holds {size} entries but was checkpointed at {old_size}: it was rolled back"
                    )
                try:
                    proof = self.consistency_proof(old_size, size)
                    verify_consistency(old_size, size, old_root, root, proof)
                except (ProofError, LedgerError) as exc:
                    raise LedgerError(
                        f"refusing to sign: tree is not consistent with checkpoint at size {old_size} ({exc})"
                    ) from None
                if old_size == size:
                    return last
            note = self.signer.sign(format_checkpoint(self.origin, size, root))
            row = CheckpointRow(size, root, note, now or datetime.now(UTC))
            self.storage.add_checkpoint(row)
            return row

    def latest_checkpoint(self) -> CheckpointRow | None:
        cps = self.storage.checkpoints()
        return cps[-1] if cps else None
