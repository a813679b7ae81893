"""Full verification: recompute the whole tree from the stored entries and check everything against it.

Nothing stored is trusted: leaf hashes are recomputed from entry bytes and compared with every tile,
upper levels are rebuilt from the recomputed leaves, each checkpoint's signature is checked and its root
compared with the recomputed tree, consecutive checkpoints are proven consistent, payloads are rehashed
with their salts (set-based on DuckDB: see ``_PayloadPass``), and a missing payload is only accepted when
a sealed purge manifest lists it. An exported checkpoint (``against``) catches a store rolled back
together with its own checkpoints.
"""

from __future__ import annotations

import hashlib
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger import vechash
from accessproof.ledger.entry import MAX_ENTRY_BYTES, Entry, EntryError, decode_entry
from accessproof.ledger.ledger import Ledger, LedgerError
from accessproof.ledger.merkle import (
    ProofError,
    consistency_proof,
    leaf_hash,
    leaf_hashes,
    leaf_hashes_at,
    pair_level,
    verify_consistency,
)
from accessproof.ledger.note import NoteError, Verifier, open_note, parse_checkpoint
from accessproof.ledger.payloads import PayloadStore, RecordRef
from accessproof.ledger.storage import LedgerStorage
from accessproof.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileError, TileReader, tile_keys, tile_width

CHUNK = 256 * TILE_WIDTH  # most entries per read: 256 level-0 tiles
FIRST_CHUNK = 16 * TILE_WIDTH  # the first read: small, as nothing overlaps it
AHEAD = 2  # chunks read ahead
VECTOR_THREADS = 2  # threads reading and hashing chunks with vechash (one per core here)
VECTOR_AHEAD = 4  # chunks in flight then
VECTOR_CHUNK = 64 * TILE_WIDTH  # most entries per chunk then: the tail two threads share stays short
SHAPERS = 2  # threads finishing the payload join's batches (``entry_batches``) while one reads them
ROW_BATCH = 1 << 14  # rows per batch of the payload join
_decode_entry = msgspec.json.Decoder(Entry).decode  # the decoder decode_entry uses


@dataclass(frozen=True)
class Problem:
    index: int | None  # first ledger index concerned, None when no single entry is
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"index {self.index}: " if self.index is not None else ""
        return f"{where}{self.message}"


@dataclass
class VerifyReport:
    size: int = 0
    checkpoints: int = 0
    payloads_checked: int = 0
    payloads_purged: int = 0
    payloads_unchecked: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first ``max_problems`` found
    problem_count: int = 0
    earliest: Problem | None = None  # lowest index seen, kept even past max_problems

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_index(self) -> int | None:
        return self.earliest.index if self.earliest else None

    def first_problem(self) -> Problem | None:
        return self.earliest or (self.problems[0] if self.problems else None)

    def summary(self) -> str:
        if self.ok:
            return (
                f"ok: {self.size} entries, {self.checkpoints} checkpoints, {self.payloads_checked} payloads "
                f"checked, {self.payloads_purged} purged, {self.payloads_unchecked} not held by the payload store"
            )
        first = self.first_problem()
        lead = f"first bad index {self.first_bad_index}: " if self.first_bad_index is not None else ""
        return f"FAILED ({self.problem_count} problems) {lead}{first.message if first else ''}"


class _Collector:
    def __init__(self, report: VerifyReport, limit: int) -> None:
        self.report, self.limit = report, limit
        self.bad_entries: list[int] = []  # entries found bad at level 0, to not re-report them higher up

    def add(self, index: int | None, kind: str, message: str) -> None:
        if kind in ("entry", "missing", "duplicate") and index is not None:
            self.bad_entries.append(index)
        problem = Problem(index, kind, message)
        report = self.report
        report.problem_count += 1
        if len(report.problems) < self.limit:
            report.problems.append(problem)
        if index is not None and (report.earliest is None or index < (report.earliest.index or 0)):
            report.earliest = problem


def verify_ledger(
    ledger: Ledger,
    *,
    payloads: PayloadStore | None = None,
    against: str | None = None,
    verifiers: list[Verifier] | None = None,
    max_problems: int = 100,
    progress: Callable[[int, int], None] | None = None,
    db_hashing: bool | None = None,
) -> VerifyReport:
    """Check the whole ledger; ``payloads`` adds payload checks, ``against`` an exported checkpoint.

    With ``db_hashing`` a storage that offers ``leaf_hashes_blob`` computes the leaf hashes itself (DuckDB,
    on every core); False hashes every entry here with hashlib, one call each, while a second handle
    reads the next chunks (the same checks). None, the default, hashes whole columns with ``vechash``
    (polars-hash, outside the GIL) where it is installed and the storage hands out Arrow chunks: two
    threads each read a chunk on a handle of their own and hash its leaves and node hashes up to the
    tile roots, which measured 1.7-2x the hashlib path in bench/ledger. Without it the default is the
    hashlib path, and the database hashes when there is no second handle and no set-based payload checks
    (PostgreSQL, an open transaction). Tiles, upper levels and signatures are always checked here.
    """
    storage = ledger.storage
    report = VerifyReport()
    out = _Collector(report, max_problems)
    verifiers = verifiers or ledger.verifiers
    size = storage.size()
    report.size = size

    with _short_switches():
        payload_pass = _PayloadPass(payloads, report, out, size) if payloads is not None else None
        try:
            _check_tree(ledger, size, report, out, verifiers, against, payload_pass, progress, db_hashing)
            if payload_pass is not None:
                payload_pass.finish()
        finally:
            if payload_pass is not None:
                payload_pass.close()
    report.problems.sort(key=lambda p: (p.index is None, p.index or 0))
    return report


_SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def _short_switches() -> Iterator[None]:
    """A shorter GIL switch interval while verification runs. The reading threads (DuckDB works without
    the GIL) need it for a moment after each query, and by default wait up to 5 ms for the hashing thread
    to hand it over: per chunk that added up to more than the hashing. Restored when the last concurrent
    verification ends."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, _SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def _check_tree(
    ledger: Ledger,
    size: int,
    report: VerifyReport,
    out: _Collector,
    verifiers: list[Verifier],
    against: str | None,
    payload_pass: _PayloadPass | None,
    progress: Callable[[int, int], None] | None,
    db_hashing: bool | None,
) -> None:
    """Leaves, tiles, upper levels, checkpoints and ``against``; hands entries to a chunked payload pass."""
    storage = ledger.storage
    upper: list[bytes | None] = []  # recomputed hashes of height 8 (level-1 tile contents)

    entries_too = payload_pass is not None and payload_pass.needs_entries
    in_db = bool(db_hashing) and hasattr(storage, "leaf_hashes_blob")
    db_alone = (
        db_hashing is None
        and hasattr(storage, "leaf_hashes_blob")
        and not (payload_pass is not None and not payload_pass.needs_entries)
    )
    vector = db_hashing is None and not entries_too and vechash.AVAILABLE
    for c in _prefetched(storage, size, entries_too, in_db, db_alone, vector):
        start, end = c.start, c.end
        entries: list[bytes | None] | None = c.data  # type: ignore[assignment]
        if c.leaf_blob is not None and c.root_blob is not None:
            _check_tiles(c.tiles, 0, start, size, c.leaf_blob, out, "entry")
            upper.extend(_split(c.root_blob))
            if payload_pass is not None:
                payload_pass.poll()
            if progress:
                progress(end, size)
            continue
        if c.arrow is not None:
            leaves: list[bytes | None] = _arrow_leaves(c.arrow)  # type: ignore[assignment]
        elif c.data is not None and c.idxs != list(range(start, end)):
            entries, leaves = _place(start, end, c.idxs, c.data, out)  # type: ignore[arg-type]
        elif c.blob is not None:
            leaves = _split(c.blob)  # type: ignore[assignment]
        else:
            leaves = leaf_hashes(c.data)  # type: ignore[arg-type,assignment]
        _check_tiles(c.tiles, 0, start, size, leaves, out, "entry")
        upper.extend(_tile_roots(leaves, end - start))
        if entries_too:
            payload_pass.add_chunk(start, entries)  # type: ignore[union-attr,arg-type]
        elif payload_pass is not None:
            payload_pass.poll()
        if progress:
            progress(end, size)

    # upper levels: compare stored tiles with the level rebuilt from recomputed leaves
    level, hashes = 1, upper
    while (size >> (TILE_HEIGHT * level)) > 0:
        count = size >> (TILE_HEIGHT * level)
        hashes = hashes[:count]
        stored = storage.read_tiles(level, 0, (count + TILE_WIDTH - 1) // TILE_WIDTH)
        _check_tiles(stored, level, 0, size, hashes, out, "tree")
        hashes = _tile_roots(hashes, count)
        level += 1

    _check_extra_tiles(storage.tile_keys(), size, out)
    reader = TileReader(storage.read_tile, size, {})
    _check_checkpoints(ledger, reader, verifiers, size, report, out)
    if against is not None:
        _check_against(ledger, reader, verifiers, against, size, out)


@dataclass
class _Chunk:
    """What one chunk [start, end) needs, read ahead: its level-0 tiles, and its entries (an Arrow array in
    idx order, or Python lists that may show gaps and repeats) and/or the database's leaf hashes."""

    start: int
    end: int
    tiles: dict[int, bytes]
    arrow: pa.Array | None = None
    idxs: list[int] | None = None
    data: list[bytes] | None = None
    blob: bytes | None = None
    leaf_blob: bytes | None = None  # leaf hashes back to back, hashed where the chunk was read
    root_blob: bytes | None = None  # and the height-8 roots of its full tiles


def _read_chunk(
    storage: LedgerStorage, start: int, end: int, entries: bool, in_db: bool, vector: bool = False
) -> _Chunk:
    """Entries as lists when ``entries`` (the portable payload path takes them), else in Arrow when the
    storage offers it; database leaf hashes when ``in_db``; lists wherever indexes have gaps or repeats.
    With ``vector`` a clean Arrow chunk is hashed right here (``vechash``: outside the GIL, so two reading
    threads hash two chunks at once), leaves and height-8 roots, and its entries dropped."""
    chunk = _Chunk(
        start, end, storage.read_tiles(0, start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH)
    )
    if in_db:
        chunk.blob = storage.leaf_hashes_blob(start, end)  # type: ignore[attr-defined]
        if chunk.blob is not None and not entries:
            return chunk
    elif not entries and hasattr(storage, "entries_arrow"):
        chunk.arrow = storage.entries_arrow(start, end)
        if chunk.arrow is not None:
            if vector:
                chunk.leaf_blob = vechash.leaf_hashes(chunk.arrow)
                chunk.root_blob = vechash.tile_roots(chunk.leaf_blob)
                chunk.arrow = None
            return chunk
    chunk.idxs, chunk.data = storage.read_entries(start, end)
    return chunk


def _ranges(size: int, most: int = CHUNK) -> list[tuple[int, int]]:
    """Chunks of whole level-0 tiles, ``FIRST_CHUNK`` entries first and twice as many each time up to
    ``most``: the first read (which nothing overlaps) is short, and later reads are few."""
    out: list[tuple[int, int]] = []
    start, step = 0, FIRST_CHUNK
    while start < size:
        out.append((start, min(size, start + step)))
        start, step = start + step, min(most, 2 * step)
    return out


def _prefetched(
    storage: LedgerStorage,
    size: int,
    entries: bool,
    in_db: bool,
    db_alone: bool = False,
    vector: bool = False,
) -> Iterator[_Chunk]:
    """Chunks in order, the next ones read on a second handle while the caller hashes this one. With no
    second handle (PostgreSQL, an open DuckDB transaction) the caller reads each chunk itself, and with
    ``db_alone`` the database hashes the leaves then (it works beside Python only on a second handle).
    With ``vector`` the reading threads hash too (see ``_read_chunk``): two of them, a handle each."""
    ranges = _ranges(size)
    second = storage.concurrent_reader()
    if second is None or len(ranges) < 2:
        if second is not None:
            second.close()
        elif db_alone and not vector:
            in_db = True
        for start, end in ranges:
            yield _read_chunk(storage, start, end, entries, in_db, vector)
        return
    if vector:
        second.close()
        yield from _prefetched_hashed(storage, _ranges(size, VECTOR_CHUNK))
        return
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = deque(pool.submit(_read_chunk, second, s, e, entries, in_db) for s, e in ranges[:AHEAD])
            for s, e in ranges[AHEAD:]:
                chunk = pending.popleft().result()
                pending.append(pool.submit(_read_chunk, second, s, e, entries, in_db))
                yield chunk
            while pending:
                yield pending.popleft().result()
    finally:
        second.close()


def _prefetched_hashed(storage: LedgerStorage, ranges: list[tuple[int, int]]) -> Iterator[_Chunk]:
    """Chunks in order, each read and hashed by one of ``VECTOR_THREADS`` threads on a handle of its own."""
    handles: queue.SimpleQueue[LedgerStorage] = queue.SimpleQueue()
    opened: list[LedgerStorage] = []
    for _ in range(VECTOR_THREADS):
        handle = storage.concurrent_reader()
        if handle is None:
            break
        opened.append(handle)
        handles.put(handle)

    def task(start: int, end: int) -> _Chunk:
        handle = handles.get()
        try:
            return _read_chunk(handle, start, end, False, False, True)
        finally:
            handles.put(handle)

    try:
        with ThreadPoolExecutor(max_workers=len(opened)) as pool:
            pending = deque(pool.submit(task, s, e) for s, e in ranges[:VECTOR_AHEAD])
            for s, e in ranges[VECTOR_AHEAD:]:
                chunk = pending.popleft().result()
                pending.append(pool.submit(task, s, e))
                yield chunk
            while pending:
                yield pending.popleft().result()
    finally:
        for handle in opened:
            handle.close()


def _packed(values: pa.Array) -> tuple[memoryview, list[int]]:
    """A binary Arrow array without nulls as its data buffer and value offsets (no object per value)."""
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        values = values.cast(pa.binary())
    if values.null_count:
        raise ValueError("null values")
    if not len(values):
        return memoryview(b""), [0]
    _validity, offsets, data = values.buffers()
    cut = memoryview(offsets).cast("q" if pa.types.is_large_binary(values.type) else "i")
    return memoryview(data if data is not None else b""), cut[
        values.offset : values.offset + len(values) + 1
    ].tolist()


def _arrow_leaves(entries: pa.Array) -> list[bytes]:
    """Leaf hashes of a binary Arrow array without nulls, hashed straight from its data buffer."""
    return leaf_hashes_at(*_packed(entries))


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


def _place(
    start: int, end: int, idxs: list[int], data: list[bytes], out: _Collector
) -> tuple[list[bytes | None], list[bytes | None]]:
    """Entries and leaves by position when indexes have gaps or repeats (each one reported)."""
    entries: list[bytes | None] = [None] * (end - start)
    expected = start
    for idx, e in zip(idxs, data, strict=True):
        if idx != expected:
            if idx < expected:
                out.add(idx, "duplicate", f"entry {idx} is stored twice")
                continue
            out.add(expected, "missing", f"entries {expected}..{idx - 1} are missing (deleted)")
        entries[idx - start] = e
        expected = idx + 1
    if expected < end:
        out.add(expected, "missing", f"entries {expected}..{end - 1} are missing (deleted or truncated)")
    leaves: list[bytes | None] = [None if e is None else leaf_hash(e) for e in entries]
    return entries, leaves


def _tile_roots(hashes: list[bytes | None], count: int) -> list[bytes | None]:
    """Roots of the full 256-wide groups in ``hashes`` (None where a group has a hole)."""
    full = count // TILE_WIDTH * TILE_WIDTH
    part = hashes[:full]
    if None not in part:
        level: list[bytes] = part  # type: ignore[assignment]
        for _ in range(TILE_HEIGHT):
            level = pair_level(level)
        return list(level)
    roots: list[bytes | None] = []
    for t in range(0, full, TILE_WIDTH):
        group = part[t : t + TILE_WIDTH]
        if None in group:
            roots.append(None)
            continue
        level = group  # type: ignore[assignment]
        for _ in range(TILE_HEIGHT):
            level = pair_level(level)
        roots.append(level[0])
    return roots


def _check_tiles(
    stored: dict[int, bytes],
    level: int,
    first_pos: int,
    size: int,
    hashes: list[bytes | None] | bytes,
    out: _Collector,
    what: str,
) -> None:
    """Compare recomputed hashes (level positions from ``first_pos``; a list, or 32-byte hashes back to
    back) with the stored tiles."""
    span = 1 << (TILE_HEIGHT * level)  # leaves under one hash of this level
    packed = isinstance(hashes, bytes)
    count = len(hashes) // 32 if packed else len(hashes)
    for offset in range(0, count, TILE_WIDTH):
        pos = first_pos + offset
        t = pos // TILE_WIDTH
        want = tile_width(size, level, t)
        if packed:
            blob = stored.get(t)
            part = hashes[32 * offset : 32 * (offset + want)]
            if blob is not None and len(blob) == 32 * want and part == blob:
                continue
            computed: list[bytes | None] = _split(part)  # type: ignore[arg-type,assignment]
        else:
            computed = hashes[offset : offset + want]  # type: ignore[assignment]
        blob = stored.get(t)
        if blob is None:
            out.add(pos * span, "tile", f"tile {level}/{t} is missing")
            continue
        have = len(blob) // 32
        if have > want:
            out.add(
                size,
                "truncated",
                f"tile {level}/{t} covers more entries than the {size} stored: the log was truncated",
            )
            blob = blob[: want * 32]
        elif have < want:
            out.add(
                (pos + have) * span, "tile", f"tile {level}/{t} holds {have} hashes, the tree needs {want}"
            )
            continue
        if None not in computed and b"".join(computed) == blob:  # type: ignore[arg-type]
            continue
        for i, h in enumerate(computed):
            if h is not None and blob[i * 32 : i * 32 + 32] != h:
                first = (pos + i) * span
                if level == 0:
                    out.add(
                        first,
                        what,
                        f"entry {first} does not match the tree "
                        "(changed, swapped or inserted entry, or altered tile)",
                    )
                elif not any(first <= b < first + span for b in out.bad_entries):
                    out.add(
                        first,
                        what,
                        f"tree hash over entries {first}..{first + span - 1} does not match tile {level}/{t}",
                    )
                break


class _PayloadPass:
    """Payload checks across the whole run: rehash each payload with its entry's salt.

    A store with ``entry_rows`` (DuckDB, on the ledger's database) hands over every entry beside its
    payload in one set-based pass of hash joins, read ahead on a cursor of its own while the tree is being
    checked (``poll`` between tree chunks). For entries of the canonical shape (``payloads.FAST_SHAPE``:
    tests on each entry's bytes proving that what is cut out is what the decoder reads) the join cuts out
    the digest and salt and joins salt ‖ payload; they are hashed a column at a time (``vechash``, else
    hashlib) and a batch's digests compared at once. Every other entry is decoded
    here (``_hash_rows``), exactly as the portable path does. Other stores are asked chunk by chunk
    (``add_chunk``) for the payloads of the entries the tree pass read.

    The two passes read on two connections: run verification on a store nobody writes to meanwhile (as
    for any point-in-time check), or an entry changed between the reads is judged on the bytes each saw.
    """

    def __init__(self, payloads: PayloadStore, report: VerifyReport, out: _Collector, size: int) -> None:
        self.payloads, self.report, self.out = payloads, report, out
        self.missing: list[RecordRef] = []  # fine only if a purge manifest lists them
        self.manifests: list[RecordRef] = []
        self.sealed: dict[str, set[str]] = {}  # portable path: what the entries seal, by type
        self.rows: _ReadAhead | None = None
        self.held = frozenset(getattr(payloads, "tables", ()))
        self.odd: list[tuple[int, str, str, str, str]] = []  # entries whose lookup columns disagree with them
        self.skip: list[int] = []  # entries whose lookup columns are not to be believed (odd or malformed)
        self.bad_fast: list[int] = []  # fast-shape entries whose payload does not match
        if hasattr(payloads, "entry_rows") and payloads.sees_ledger():  # type: ignore[attr-defined]
            self.rows = _ReadAhead(payloads, size)  # starts the joins now, beside the tree pass

    @property
    def needs_entries(self) -> bool:
        return self.rows is None

    def add_chunk(self, start: int, entries: list[bytes | None]) -> None:
        """The portable path: payloads of one chunk of entries, fetched with ``get`` and hashed here."""
        items: list[tuple[int, str, str, str, str]] = []
        for i, data in enumerate(entries):
            if data is None:
                continue
            try:
                e = decode_entry(data, canonical=False)  # the leaf hash already pins these exact bytes
            except EntryError as exc:
                self.out.add(start + i, "entry", f"entry {start + i} is malformed: {exc}")
                continue
            items.append((start + i, e.type, e.id, e.salt, e.payload_sha256))
        self._check_items(items)

    def _check_items(self, items: list[tuple[int, str, str, str, str]]) -> None:
        results = _check_here(self.payloads, items)
        for idx, record_type, record_id, _s, _e in items:
            if idx not in results:
                self.report.payloads_unchecked += 1
                continue
            self.sealed.setdefault(record_type, set()).add(record_id)
            self._result(idx, record_type, record_id, results[idx])

    def _result(self, idx: int, record_type: str, record_id: str, ok: bool | None) -> None:
        if ok is None:
            self.missing.append(RecordRef(idx, record_type, record_id))
        elif not ok:
            self.out.add(
                idx, "payload", f"payload of {record_type} {record_id!r} does not match its sealed hash"
            )
        else:
            self.report.payloads_checked += 1
            if record_type == "purge":
                self.manifests.append(RecordRef(idx, record_type, record_id))

    def poll(self) -> None:
        """Check the payload batches already fetched (called between tree chunks, so the joins for the
        next ones run in DuckDB while Python hashes)."""
        if self.rows is not None:
            for batch in self.rows.ready():
                self._check_batch(batch)

    def _check_batch(self, batch: pa.RecordBatch) -> None:
        """One batch of ``entry_rows``: rows of the fast shape (its tests, per row, are in
        ``payloads.FAST_SHAPE``) are hashed straight from the cut-out salt and digest; the rest are
        decoded one by one."""
        fast = pc.is_valid(batch.column("shape"))
        if pc.all(fast).as_py():
            self._check_fast(batch)
            return
        self._check_fast(batch.filter(fast))
        slow = batch.filter(pc.invert(fast))
        names = ("idx", "entry", "record_type", "record_id", "data")
        idxs, entries, types, ids, datas = (slow.column(n).to_pylist() for n in names)
        malformed = self._hash_rows(idxs, entries, types, ids, datas, self.held, self.odd, True)
        self._malformed(malformed)

    def _malformed(self, rows: list[tuple[int, bytes]]) -> None:
        for idx, entry in rows:
            self.skip.append(idx)
            try:
                decode_entry(entry, canonical=False)
            except EntryError as exc:
                self.out.add(idx, "entry", f"entry {idx} is malformed: {exc}")

    def _check_fast(self, rows: pa.RecordBatch) -> None:
        """Rows of the proven fast shape: hash each salt ‖ payload, compare the batch's digests at once."""
        if not rows.num_rows:
            return
        col = dict(zip(rows.schema.names, rows.columns, strict=True))
        if pc.any(
            col["gone"]
        ).as_py():  # payload row or bytes gone: missing if the type is held, else unchecked
            gone = rows.filter(col["gone"])
            names = ("idx", "record_type", "record_id", "held")
            for idx, record_type, record_id, held in zip(
                *(gone.column(n).to_pylist() for n in names), strict=True
            ):
                if held:
                    self.missing.append(RecordRef(idx, record_type, record_id))
                else:
                    self.report.payloads_unchecked += 1
            rows = rows.filter(pc.invert(col["gone"]))
            col = dict(zip(rows.schema.names, rows.columns, strict=True))
        if col["salted"].null_count:  # a salt that is not hex: as the decoder's path does it
            odd = rows.filter(pc.is_null(col["salted"]))
            names = ("idx", "salt", "data", "digest", "purge", "record_type", "record_id")
            for idx, salt, data, digest, purge, record_type, record_id in zip(
                *(odd.column(n).to_pylist() for n in names), strict=True
            ):
                if _salted_hex(salt, data) != digest:
                    self.bad_fast.append(idx)
                    continue
                self.report.payloads_checked += 1
                if purge:
                    self.manifests.append(RecordRef(idx, record_type, record_id))
            rows = rows.filter(pc.is_valid(col["salted"]))
            col = dict(zip(rows.schema.names, rows.columns, strict=True))
        bad = _mismatched_digests(col["salted"], col["digest"])
        self.bad_fast.extend(col["idx"][i].as_py() for i in bad)
        self.report.payloads_checked += rows.num_rows - len(bad)
        if pc.any(col["purge"]).as_py():
            failed = set(bad)
            names = ("idx", "record_type", "record_id", "purge")
            for i, (idx, record_type, record_id, purge) in enumerate(
                zip(*(col[n].to_pylist() for n in names), strict=True)
            ):
                if purge and i not in failed:
                    self.manifests.append(RecordRef(idx, record_type, record_id))

    def _check_rows(self, rows: _ReadAhead) -> list[tuple[str, str]]:
        """The rest of the set-based path; returns the store rows that no entry seals."""
        for batch in rows:
            self._check_batch(batch)
        found = self.payloads.lookup(self.bad_fast)  # type: ignore[attr-defined]
        for idx in self.bad_fast:
            record_type, record_id = found.get(idx, ("?", "?"))
            self.out.add(
                idx, "payload", f"payload of {record_type} {record_id!r} does not match its sealed hash"
            )
        self.skip.extend(item[0] for item in self.odd)
        self._check_items(self.odd)
        sealed = [(t, r) for t, ids in self.sealed.items() for r in ids]
        return self.payloads.unsealed_rows(self.skip, sealed)  # type: ignore[attr-defined]

    def _hash_rows(
        self,
        idxs: list[int],
        entries: list[bytes],
        types: list[str],
        ids: list[str],
        datas: list[bytes | None],
        held: frozenset[str],
        odd: list[tuple[int, str, str, str, str]],
        check_size: bool,
    ) -> list[tuple[int, bytes]]:
        """The hot loop: decode, confirm the lookup columns, hash salt ‖ payload. Returns malformed entries."""
        decode, sha, fromhex = _decode_entry, hashlib.sha256, bytes.fromhex
        missing, manifests, out = self.missing, self.manifests, self.out
        checked = unchecked = 0
        malformed: list[tuple[int, bytes]] = []
        for idx, entry, record_type, record_id, data in zip(idxs, entries, types, ids, datas, strict=True):
            try:
                e = decode(entry)
            except (msgspec.DecodeError, UnicodeDecodeError):
                malformed.append((idx, entry))
                continue
            if check_size and len(entry) > MAX_ENTRY_BYTES:
                malformed.append((idx, entry))
                continue
            if e.type != record_type or e.id != record_id:
                odd.append((idx, e.type, e.id, e.salt, e.payload_sha256))
                continue
            if data is None:
                if record_type in held:
                    missing.append(RecordRef(idx, record_type, record_id))
                else:
                    unchecked += 1
                continue
            try:
                ok = sha(fromhex(e.salt) + data).hexdigest() == e.payload_sha256
            except ValueError:  # salt is not hex
                ok = False
            if ok:
                checked += 1
                if record_type == "purge":
                    manifests.append(RecordRef(idx, record_type, record_id))
            else:
                out.add(
                    idx, "payload", f"payload of {record_type} {record_id!r} does not match its sealed hash"
                )
        self.report.payloads_checked += checked
        self.report.payloads_unchecked += unchecked
        return malformed

    def close(self) -> None:
        if self.rows is not None:
            self.rows.close()

    def finish(self) -> None:
        if self.rows is not None:
            unsealed = self._check_rows(self.rows)
        else:
            unsealed = _unsealed_by_listing(self.payloads, self.sealed)
        purged: set[int] = set()
        for idx, data in self.payloads.get(self.manifests).items():  # verified above
            try:
                purged.update(int(r[0]) for r in orjson.loads(data or b"")["records"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.out.add(idx, "payload", f"purge manifest at index {idx} is unreadable")
        for ref in self.missing:
            if ref.idx in purged:
                self.report.payloads_purged += 1
            else:
                self.out.add(
                    ref.idx,
                    "payload",
                    f"payload of {ref.record_type} {ref.record_id!r} is missing and no purge manifest lists it",
                )
        for record_type, record_id in unsealed:
            self.out.add(
                None, "unsealed", f"{record_type} {record_id!r} is in the store but was never sealed"
            )


def _mismatched_digests(salted: pa.Array, digests: pa.Array) -> list[int]:
    """Positions where SHA-256(salted) is not the hex digest beside it: hashed a column at a time with
    ``vechash`` where it is installed, else with hashlib value by value; the batch is compared at once."""
    if vechash.AVAILABLE:
        got = vechash.hex_digests(salted)
        same = pc.equal(got, digests.cast(pa.large_string()))
        if same.null_count == 0 and pc.all(same).as_py():
            return []
        return [i for i, ok in enumerate(same.to_pylist()) if not ok]
    sha = hashlib.sha256
    view, offsets = _packed(salted)
    hashes = [sha(view[a:b]).digest() for a, b in pairwise(offsets)]
    if b"".join(hashes).hex().encode() == _binary_bytes(digests.cast(pa.binary())):
        return []
    return [i for i, (g, d) in enumerate(zip(hashes, digests.to_pylist(), strict=True)) if g.hex() != d]


def _binary_bytes(arr: pa.Array) -> bytes:
    """The concatenated values of a binary column (nulls add nothing), without a Python object per value."""
    if arr.null_count or (not pa.types.is_binary(arr.type) and not pa.types.is_large_binary(arr.type)):
        return b"".join(v for v in arr.to_pylist() if v is not None)
    _validity, offsets, data = arr.buffers()
    if data is None or not len(arr):
        return b""
    cut = memoryview(offsets).cast("q" if pa.types.is_large_binary(arr.type) else "i")
    start, end = cut[arr.offset], cut[arr.offset + len(arr)]
    return data[start:end].to_pybytes()


def _salted_hex(salt: str, data: bytes) -> str | None:
    try:
        return hashlib.sha256(bytes.fromhex(salt) + data).hexdigest()
    except ValueError:
        return None


class _ReadAhead:
    """Batches of ``payloads.entry_rows(size)``, fetched by a thread on a cursor of their own (the joins
    run inside DuckDB without the GIL, beside the Python hashing), or in the caller's thread when the
    store is inside an open transaction."""

    def __init__(self, payloads: PayloadStore, size: int) -> None:
        self.size = size
        self.own = payloads.concurrent() if hasattr(payloads, "concurrent") else None  # type: ignore[attr-defined]
        self.source = self.own or payloads
        self.queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.done = False
        if self.own is not None:
            self.thread = threading.Thread(target=self._run, name="ledger-verify-rows", daemon=True)
            self.thread.start()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The batches in order. Where the store finishes the join's batches in a second step
        (``entry_batches``: polars, outside the GIL) and there is a thread, ``SHAPERS`` threads do that
        step while this one pulls the next batches from DuckDB."""
        if self.thread is None or not hasattr(self.source, "entry_batches"):
            for batch in self.source.entry_rows(self.size, ROW_BATCH):  # type: ignore[attr-defined]
                if batch.num_rows:
                    yield batch
            return
        reader, finish = self.source.entry_batches(self.size, ROW_BATCH)  # type: ignore[attr-defined]
        if finish is None:
            yield from (batch for batch in reader if batch.num_rows)
            return
        with ThreadPoolExecutor(max_workers=SHAPERS) as pool:
            pending: deque[Future[pa.RecordBatch]] = deque()
            for batch in reader:
                if batch.num_rows:
                    pending.append(pool.submit(finish, batch))
                if len(pending) > SHAPERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _run(self) -> None:
        batches = self._batches()
        try:
            for batch in batches:
                if not self._put(batch):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            batches.close()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _take(self, block: bool) -> pa.RecordBatch | None:
        """The next batch from the thread, None when there is none yet (or none left)."""
        if self.done:
            return None
        try:
            item = self.queue.get(block=block)
        except queue.Empty:
            return None
        if item is _DONE:
            self.done = True
            return None
        if isinstance(item, BaseException):
            self.done = True
            raise item
        return item  # type: ignore[return-value]

    def ready(self) -> Iterator[pa.RecordBatch]:
        """Batches already fetched, without waiting (nothing when there is no thread)."""
        if self.thread is None:
            return
        while (batch := self._take(block=False)) is not None:
            yield batch

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """The batches not yet taken, waiting for each."""
        if self.thread is None:
            if not self.done:
                self.done = True
                yield from self._batches()
            return
        while (batch := self._take(block=True)) is not None:
            yield batch

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.own is not None:
            self.own.close()
            self.own = None


_DONE = object()


def _check_here(
    payloads: PayloadStore, items: list[tuple[int, str, str, str, str]]
) -> dict[int, bool | None]:
    """The portable path: fetch payloads and hash them in Python."""
    got = payloads.get([RecordRef(i, t, r) for i, t, r, _, _ in items])
    sha = hashlib.sha256
    out: dict[int, bool | None] = {}
    for idx, _t, _r, salt, expected in items:
        if idx in got:
            data = got[idx]
            try:
                out[idx] = None if data is None else sha(bytes.fromhex(salt) + data).hexdigest() == expected
            except ValueError:  # salt is not hex
                out[idx] = False
    return out


def _unsealed_by_listing(payloads: PayloadStore, sealed: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(t, r) for t, r in payloads.record_ids() if r not in sealed.get(t, ())]


def _check_extra_tiles(keys: list[tuple[int, int, int]], size: int, out: _Collector) -> None:
    expected = {(lv, i) for lv, i, _w in tile_keys(size)}
    for level, index, _width in keys:
        if (int(level), int(index)) not in expected:
            out.add(
                size,
                "truncated",
                f"tile {level}/{index} lies beyond the {size} stored entries: the log was truncated",
            )


def _check_checkpoints(
    ledger: Ledger,
    reader: TileReader,
    verifiers: list[Verifier],
    size: int,
    report: VerifyReport,
    out: _Collector,
) -> None:
    previous: tuple[int, bytes] | None = None
    rows = ledger.storage.checkpoints()
    report.checkpoints = len(rows)
    for row in rows:
        try:
            origin, csize, croot = parse_checkpoint(open_note(row.note, verifiers))
        except NoteError as exc:
            out.add(None, "checkpoint", f"checkpoint at size {row.size} is not validly signed: {exc}")
            continue
        if origin != ledger.origin:
            out.add(None, "checkpoint", f"checkpoint at size {row.size} names log {origin!r}")
        if (csize, croot) != (row.size, row.root):
            out.add(None, "checkpoint", f"checkpoint row at size {row.size} does not match its signed note")
        if csize > size:
            out.add(
                size,
                "truncated",
                f"checkpoint at size {csize} but only {size} entries are stored: truncated or rolled back",
            )
        else:
            try:
                root = _root_at(reader, csize)
            except (TileError, ProofError) as exc:
                out.add(None, "checkpoint", f"cannot rebuild the root at size {csize}: {exc}")
            else:
                if root != croot:
                    out.add(None, "checkpoint", f"checkpoint at size {csize} does not match the stored tree")
            if previous is not None:
                _check_consistency(reader, previous, (csize, croot), out, "checkpoint")
        previous = (csize, croot)


def _root_at(reader: TileReader, size: int) -> bytes:
    """Root of the tree's first ``size`` leaves, from the same tiles."""
    return TileReader(reader.get_tile, size, reader.full_cache).root()


def _check_consistency(
    reader: TileReader, old: tuple[int, bytes], new: tuple[int, bytes], out: _Collector, kind: str
) -> None:
    try:
        sub = TileReader(reader.get_tile, new[0], reader.full_cache)
        proof = consistency_proof(old[0], new[0], sub.subtree)
        verify_consistency(old[0], new[0], old[1], new[1], proof)
    except (ProofError, TileError) as exc:
        out.add(None, kind, f"checkpoints at sizes {old[0]} and {new[0]} are not consistent: {exc}")


def _check_against(
    ledger: Ledger, reader: TileReader, verifiers: list[Verifier], note: str, size: int, out: _Collector
) -> None:
    try:
        origin, csize, croot = parse_checkpoint(open_note(note, verifiers))
    except NoteError as exc:
        out.add(None, "against", f"exported checkpoint is not validly signed: {exc}")
        return
    if origin != ledger.origin:
        out.add(None, "against", f"exported checkpoint is for log {origin!r}, not {ledger.origin!r}")
        return
    if csize > size:
        out.add(
            size,
            "rollback",
            f"store holds {size} entries but the exported checkpoint is at size {csize}: "
            "the store was rolled back or truncated",
        )
        return
    try:
        root = _root_at(reader, csize)
    except (TileError, ProofError, LedgerError) as exc:
        out.add(None, "against", f"cannot rebuild the root at size {csize}: {exc}")
        return
    if root != croot:
        out.add(
            None,
            "rollback",
            f"store differs from the exported checkpoint at size {csize}: it was rewritten or rolled back",
        )
