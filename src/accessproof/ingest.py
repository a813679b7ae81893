"""The one path in: bytes → raw record + canonical record(s), or a quarantine entry with a reason.

CLI files, API batches and webhooks all come through ``Ingestor``, so every record read is accounted
for the same way: accepted, duplicate, or quarantined with its position and reason. Records are
buffered into column lists and written a batch at a time (one transaction per batch), which keeps memory
flat and makes a killed run safe to repeat: keys already stored count as duplicates.

Noise a source can recognise from its bytes (CloudTrail's read-only calls) takes a bulk path: JSON Lines
come a block at a time, the source's recogniser picks those lines out with Arrow kernels, and its SQL
normalises them in a private DuckDB — on the reading thread, while the writer thread stores and seals
the previous batch. Anything the recogniser or the SQL is unsure of takes the per-record Python path.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger import open_ledger, sqlseal
from accessproof.model import IdentityEvent, Person, WorkflowRecord
from accessproof.sources import get_source
from accessproof.sources.base import (
    Chunk,
    Context,
    LineBlock,
    Reject,
    Source,
    iter_json_records,
    iter_paths,
    line_chunk,
)
from accessproof.store.base import Batch, Store
from accessproof.store.schema import (
    EVENT_COLUMNS,
    PERSON_COLUMNS,
    QUARANTINE_COLUMNS,
    RAW_COLUMNS,
    WORKFLOW_COLUMNS,
)

DEFAULT_BATCH = 10_000
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BLOB": pa.binary(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
}
_json = msgspec.json.Encoder()


def _schema(columns: list[tuple[str, str]], extra: tuple[str, ...] = ("_seq",)) -> pa.Schema:
    fields = [pa.field(c, _ARROW_TYPES[t]) for c, t in columns]
    fields += [pa.field(e, pa.int64()) for e in extra]
    return pa.schema(fields)


_RAW_SCHEMA = _schema([c for c in RAW_COLUMNS if c[0] != "run_id"])
_EVENT_SCHEMA = _schema(EVENT_COLUMNS)
_WORKFLOW_SCHEMA = _schema(WORKFLOW_COLUMNS)
_PERSON_SCHEMA = _schema(PERSON_COLUMNS)
_QUARANTINE_SCHEMA = _schema([c for c in QUARANTINE_COLUMNS if c[0] != "run_id"], extra=())
_BULK_SCHEMA = pa.schema([pa.field("data", pa.binary()), pa.field("sha256", pa.string()),
                          pa.field("_seq", pa.int64()), pa.field("file", pa.string()),
                          pa.field("position", pa.string())])


@dataclass
class IngestSummary:
    """What one ingest run did. ``read == accepted + duplicate + quarantined`` always holds."""

    run_id: str
    source_type: str
    files: int = 0
    read: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    file_errors: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source_type": self.source_type,
            "files": self.files,
            "read": self.read,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "quarantined": self.quarantined,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "file_errors": self.file_errors,
        }


def _j(value: Any) -> str | None:
    if value is None:
        return None
    return _json.encode(value).decode()


def _event_row(e: IdentityEvent, seq: int) -> tuple:
    a, t, n = e.actor, e.target, e.entitlement
    return (
        e.event_id, e.source, e.source_type, e.time, str(e.action), e.vendor_action,
        a.id, a.name, a.type, t.system, t.id, t.name, n.type, n.id, n.name,
        e.resource, e.approval_ref, e.environment, e.business_unit, str(e.outcome),
        _j(e.before), _j(e.after), e.class_uid, e.activity_id, e.src_ip, e.user_agent, e.raw_id,
        _j(e.attributes), seq,
    )


def _workflow_row(w: WorkflowRecord, seq: int) -> tuple:
    return (
        w.record_id, w.system, str(w.kind), w.subject, w.scope, w.requester,
        _j(w.approvers) if w.approvers else None, w.opened, w.decided, w.effective, w.expires, w.status,
        _j(w.history) if w.history else None, w.parent_id, w.decision, w.environment, w.business_unit,
        w.owner, w.compensating_control, w.course, w.completed, w.valid_until, w.qualification_status,
        w.contract_start, w.contract_end, w.next_review, w.event_type, w.raw_id, _j(w.attributes), seq,
    )


def _person_row(p: Person, seq: int) -> tuple:
    return (
        p.person_id, p.system, p.display_name, p.email, _j(p.emails) if p.emails else None,
        _j(p.usernames) if p.usernames else None, p.worker_type, p.supplier_id, p.manager_id,
        p.business_unit, p.title, p.hired, p.terminated, p.raw_id, seq,
    )


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table | None:
    if not rows:
        return None
    cols = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)],
                                schema=schema)


def _concat(a: pa.Table | None, b: pa.Table | None) -> pa.Table | None:
    return a if b is None else b if a is None else pa.concat_tables([a, b])


def _key_of(rec: Any, sha: str) -> tuple[str, str, str, datetime | None]:
    """(dedupe key, record type, source, record time) of a canonical record.

    A duplicate is the same record delivered again: same source, same id, same bytes. Two records that
    share a vendor id but differ in content are both kept (``sources`` reports such id conflicts).
    """
    if isinstance(rec, IdentityEvent):
        return f"ev|{rec.source}|{rec.event_id}|{sha}", "event", rec.source, rec.time
    if isinstance(rec, WorkflowRecord):
        when = rec.decided or rec.opened or rec.effective or rec.completed or rec.contract_start
        return f"wf|{rec.system}|{rec.record_id}|{sha}", "workflow", rec.system, when
    if isinstance(rec, Person):
        return f"person|{rec.system}|{rec.person_id}|{sha}", "person", rec.system or "hr", rec.hired
    raise TypeError(f"source returned {type(rec).__name__}, not a canonical record")


class Ingestor:
    """Accounts for, normalises and batches records of one source type into a store."""

    def __init__(self, store: Store, source_type: str, *, source_name: str | None = None,
                 batch_size: int = DEFAULT_BATCH, options: dict[str, Any] | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None,
                 source: Source | None = None, seal: bool = True):
        self.store = store
        self.source_type = source_type
        self.options = dict(options or {})
        self.source = source or get_source(source_type, **self.options)
        self.source_name = source_name
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.summary = IngestSummary(run_id=uuid.uuid4().hex, source_type=source_type)
        self._fast = getattr(self.source, "normalize_bytes", None)
        # Records the source can recognise from their bytes take the bulk path, where the store supports
        # it: normalised by the source's SQL (``BULK_SQL``) in a private in-memory DuckDB; and a source
        # that recognises a whole block of lines at once (``mask``) takes JSON Lines that way.
        self._bulk_sql = getattr(self.source, "BULK_SQL", None)
        self._bulk_ok = (getattr(self.source, "bulk_accepts", None)
                         if self._bulk_sql and getattr(store, "supports_bulk", False) else None)
        self._bulk_mask = getattr(self._bulk_ok, "mask", None)
        self._db: duckdb.DuckDBPyConnection | None = None  # opened on first use
        self._seq = 0  # read order of every line and record, across batches
        self.ledger = open_ledger(store.dir, store.con) if seal else None
        # DuckDB seals in SQL over the batch's new rows, which carry their salted payload digests from
        # here (PostgreSQL seals from memory on the writer thread)
        self._digest_here = self.ledger is not None and store.dialect == "duckdb"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accessproof-writer")
        self._writing: Future | None = None
        self._reset()

    def _reset(self) -> None:
        self._raw: list[tuple] = []
        self._events: list[tuple] = []
        self._workflow: list[tuple] = []
        self._persons: list[tuple] = []
        self._quarantine: list[tuple] = []
        self._bulk: list[tuple] = []
        self._bulk_parts: list[pa.Table] = []
        self._pending = 0

    # ------------------------------------------------------------ records

    def add(self, chunk: Chunk, file: str) -> None:
        """Account for one record read from ``file``."""
        self._seq += 1
        self._account(chunk, file, self._seq)
        if self._pending >= self.batch_size:
            self.flush()

    def add_block(self, block: LineBlock, file: str) -> None:
        """Account for the lines of a JSON Lines block: the ones the source recognises as bulk noise go to
        the bulk path as Arrow, with no Python per line; every other line takes ``add``'s path."""
        assert self._bulk_mask is not None
        lines = pc.split_pattern(pa.array([block.data], pa.binary()), b"\n").flatten()
        base = self._seq + 1  # _seq of the block's first line
        self._seq += len(lines)
        mask = self._bulk_mask(lines)
        bulk = lines.filter(mask)
        if n := len(bulk):
            at = pc.indices_nonzero(mask).cast(pa.int64())
            self._bulk_parts.append(pa.table([
                bulk,
                pa.array([hashlib.sha256(d).hexdigest() for d in bulk.to_pylist()], pa.string()),
                pc.add(at, base),
                pa.array([file] * n, pa.string()),
                pc.binary_join_element_wise(f"{file}:", pc.cast(pc.add(at, block.first_line), pa.string()), ""),
            ], schema=_BULK_SCHEMA))
            self.summary.read += n
            self._pending += n
        if n < len(lines):
            rest = pc.invert(mask)
            for i, line in zip(pc.indices_nonzero(rest).to_pylist(), lines.filter(rest).to_pylist(), strict=True):
                chunk = line_chunk(line, file, block.first_line + i)
                if chunk is not None:  # the recogniser has said no already: straight to the full parse
                    self._account(chunk, file, base + i, bulk=False)
        if self._pending >= self.batch_size:
            self.flush()

    def _account(self, chunk: Chunk, file: str, seq: int, bulk: bool = True, counted: bool = False) -> None:
        """Parse and batch one record, or set it aside (``counted``: it was counted as read already)."""
        if not counted:
            self.summary.read += 1
            self._pending += 1
        if chunk.error:
            self._set_aside(chunk, file, chunk.error)
        elif bulk and self._bulk_ok is not None and self._bulk_ok(chunk.data):
            data = chunk.data
            self._bulk.append((data, hashlib.sha256(data).hexdigest(), seq, file, chunk.position))
        else:
            data = chunk.data
            sha = hashlib.sha256(data).hexdigest()
            ctx = Context(self.source_type, file, chunk.position, "", sha, self.source_name, self.options)
            try:
                records = self._fast(data, ctx) if self._fast is not None else None
                if records is None:
                    obj = chunk.obj
                    if obj is None:
                        obj = orjson.loads(data)
                    if not isinstance(obj, dict):
                        raise Reject(f"record is a JSON {type(obj).__name__}, not an object")
                    records = self.source.normalize(obj, ctx)
                if not records:
                    raise Reject("source produced no record")
                key, rtype, source, when = _key_of(records[0], sha)
            except Reject as r:
                self._set_aside(chunk, file, str(r) or "rejected")
            except orjson.JSONDecodeError as e:
                self._set_aside(chunk, file, f"malformed JSON: {str(e).split(':')[0]}")
            except Exception as e:  # a parser bug must not lose the record or stop the run
                self._set_aside(chunk, file, f"parser error: {type(e).__name__}: {str(e)[:200]}")
            else:
                raw_id = hashlib.sha256(key.encode()).hexdigest()[:32]
                self._raw.append((raw_id, self.source_type, source, file, chunk.position, sha, rtype, when,
                                  data, seq))
                for rec in records:
                    rec.raw_id = raw_id
                    if isinstance(rec, IdentityEvent):
                        self._events.append(_event_row(rec, seq))
                    elif isinstance(rec, WorkflowRecord):
                        self._workflow.append(_workflow_row(rec, seq))
                    elif isinstance(rec, Person):
                        self._persons.append(_person_row(rec, seq))

    def _set_aside(self, chunk: Chunk, file: str, reason: str) -> None:
        data = chunk.data or b""
        line = chunk.position.rsplit(":", 1)[-1] if ":" in chunk.position else chunk.position
        qid = hashlib.sha256(
            b"|".join([self.source_type.encode(), Path(file).name.encode(), line.encode(),
                       hashlib.sha256(data).digest(), reason.encode()])
        ).hexdigest()[:32]
        self._quarantine.append((qid, self.source_type, file, chunk.position, reason, data))

    def flush(self) -> None:
        if not self._pending:
            return
        bulk_raw = bulk_events = None
        bulk = self._bulk_table()
        if bulk is not None:
            bulk_raw, bulk_events = self._normalise_bulk(bulk)
        raw = _concat(_table(self._raw, _RAW_SCHEMA), bulk_raw) or _RAW_SCHEMA.empty_table()
        if self._digest_here:  # even with no rows, so that sealing finds the columns it reads
            raw = sqlseal.with_payload_digests(raw)  # the hashing of sealing, done on this thread
        batch = Batch(
            raw=raw,
            events=_concat(_table(self._events, _EVENT_SCHEMA), bulk_events),
            workflow=_table(self._workflow, _WORKFLOW_SCHEMA),
            persons=_table(self._persons, _PERSON_SCHEMA),
            quarantine=_table(self._quarantine, _QUARANTINE_SCHEMA),
            source_name=self.source_name,
        )
        may_quarantine = bool(self._quarantine)
        self._reset()
        # One batch is written in the background while the next is parsed (DuckDB releases the GIL);
        # at most two batches are in memory at once.
        self._wait()
        seal = (lambda con: self._seal(con, may_quarantine)) if self.ledger is not None else None
        self._writing = self._writer.submit(self.store.write_batch, batch, self.summary.run_id, seal)

    def _bulk_table(self) -> pa.Table | None:
        parts = self._bulk_parts
        if self._bulk:
            parts = [*parts, _table(self._bulk, _BULK_SCHEMA)]
        return pa.concat_tables(parts) if parts else None

    def _own_db(self) -> duckdb.DuckDBPyConnection:
        """This thread's in-memory DuckDB (one thread of its own: the other core is the writer's)."""
        if self._db is None:
            self._db = duckdb.connect(config={"threads": 1, "memory_limit": "128MB"})
        return self._db

    def _normalise_bulk(self, bulk: pa.Table) -> tuple[pa.Table | None, pa.Table | None]:
        """Raw rows and events of the bytes-recognised records, made by the source's ``BULK_SQL`` in the
        private DuckDB: C++ that releases the GIL, on this thread, while the writer stores the previous
        batch. A record whose JSON does not parse there goes through the per-record path instead."""
        assert self._bulk_sql is not None
        db = self._own_db()
        try:  # the recognisers pass ASCII only, so the JSON text is the bytes themselves
            text = pa.chunked_array([c.view(pa.string()) for c in bulk.column("data").chunks], pa.string())
            text.validate(full=True)
        except pa.ArrowInvalid:
            text = pa.chunked_array([pa.nulls(bulk.num_rows, pa.string())])  # all to the per-record path
        db.register("bulk_json", pa.table({"_seq": bulk.column("_seq"), "sha256": bulk.column("sha256"),
                                           "j": text}))
        try:
            out = db.sql(self._bulk_sql, params={"source_name": self.source_name}).to_arrow_table()
        finally:
            db.unregister("bulk_json")
        if not out.column("_seq").equals(bulk.column("_seq")):  # a projection keeps the order; make sure
            out = out.sort_by("_seq")
            bulk = bulk.sort_by("_seq")
        parsed = out.column("parsed")
        if not pc.all(parsed).as_py():
            for data, seq, file, position in zip(*(bulk.filter(pc.invert(parsed)).column(c).to_pylist()
                                                   for c in ("data", "_seq", "file", "position")), strict=True):
                self._account(Chunk(data, position), file, seq, bulk=False, counted=True)
            out, bulk = out.filter(parsed), bulk.filter(parsed)
        n = out.num_rows
        if not n:
            return None, None
        raw = pa.Table.from_arrays(
            [out.column("raw_id"), pa.repeat(self.source_type, n), out.column("source"), bulk.column("file"),
             bulk.column("position"), bulk.column("sha256"), pa.repeat("event", n), out.column("time"),
             bulk.column("data"), bulk.column("_seq")],
            names=_RAW_SCHEMA.names,
        ).cast(_RAW_SCHEMA)
        return raw, out.select(_EVENT_SCHEMA.names).cast(_EVENT_SCHEMA)

    def _seal(self, con: Any, may_quarantine: bool) -> None:
        """Seal, inside the batch's transaction, every raw record and quarantined record it added.

        ``con`` is the DuckDB connection with the batch's new rows in ``_added`` and ``_added_q``, or for
        PostgreSQL the rows the batch added (``store.postgres.Added``), sealed from memory."""
        assert self.ledger is not None
        if self.store.dialect != "duckdb":
            self._seal_added(con)
            return
        # DuckDB builds the entries; the payloads were hashed with the batch (``with_payload_digests``).
        # Sealed in read order, as PostgreSQL seals them: the same input gets the same ledger positions.
        sqlseal.seal_query(self.ledger, con, "SELECT 'raw', raw_id, source, record_time, salt, payload_sha256, "
                                             "record_type FROM _added ORDER BY _seq", digested=True)
        if may_quarantine:
            self.ledger.seal_query(con, "SELECT 'quarantine', quarantine_id, source_type, NULL::TIMESTAMPTZ, data, "
                                        "'quarantine' FROM _added_q")

    def _seal_added(self, added: Any) -> None:
        """The entries ``_seal`` makes in DuckDB, made in Python (``make_entries``) from the added rows."""
        assert self.ledger is not None
        raw = added.raw
        if raw.num_rows:
            n = raw.num_rows
            self.ledger.seal_columns(
                ["raw"] * n, raw.column("raw_id").to_pylist(), raw.column("source").to_pylist(),
                raw.column("record_time").to_pylist(), raw.column("data").to_pylist(),
                kinds=raw.column("record_type").to_pylist(),
            )
        q = added.quarantine
        if q is not None and q.num_rows:
            m = q.num_rows
            self.ledger.seal_columns(
                ["quarantine"] * m, q.column("quarantine_id").to_pylist(), q.column("source_type").to_pylist(),
                [None] * m, q.column("data").to_pylist(), kinds=["quarantine"] * m,
            )

    def _wait(self) -> None:
        if self._writing is None:
            return
        result = self._writing.result()
        self._writing = None
        self.summary.accepted += result.accepted
        self.summary.duplicate += result.duplicate
        self.summary.quarantined += result.quarantined
        if self.on_batch:
            self.on_batch(self.summary)

    # ------------------------------------------------------------ files

    def read_file(self, path: Path, on_progress: Callable[[int], None] | None = None
                  ) -> Iterator[Chunk | LineBlock]:
        reader = getattr(self.source, "read", None)
        display = str(path)
        if reader is not None:
            return reader(path, display)
        return iter_json_records(path, display, on_progress=on_progress, line_blocks=self._bulk_mask is not None)

    def ingest_file(self, path: Path, on_progress: Callable[[int], None] | None = None) -> None:
        self.summary.files += 1
        for item in self.read_file(path, on_progress):
            if isinstance(item, LineBlock):
                self.add_block(item, str(path))
                continue
            self.add(item, str(path))
            if item.file_level:
                self.summary.file_errors.append(f"{item.position}: {item.error}")

    def ingest_chunks(self, chunks: Iterable[Chunk], file: str) -> None:
        for chunk in chunks:
            self.add(chunk, file)

    def finish(self, started: float) -> IngestSummary:
        self.flush()
        self._wait()
        self._writer.shutdown()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self.ledger is not None and self.ledger.signer is not None:
            self.ledger.checkpoint()  # sign the new tree head (after proving it extends the last one)
        self.summary.seconds = time.perf_counter() - started
        s = self.summary
        self.store.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [s.run_id, s.source_type, datetime.now(UTC), datetime.now(UTC), s.files, s.read, s.accepted,
             s.duplicate, s.quarantined, "complete"],
        )
        return s


def ingest_paths(store: Store, source_type: str, paths: list[Path], *, source_name: str | None = None,
                 options: dict[str, Any] | None = None, batch_size: int = DEFAULT_BATCH,
                 progress: Callable[[str, int, int], None] | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None, seal: bool = True) -> IngestSummary:
    """Ingest files and directories (plain or .gz). ``progress(file, bytes_done, bytes_total)``."""
    started = time.perf_counter()
    ing = Ingestor(store, source_type, source_name=source_name, options=options, batch_size=batch_size,
                   on_batch=on_batch, seal=seal)
    for p in paths:
        if not p.exists():
            ing.summary.file_errors.append(f"{p}: no such file or directory")
    files = list(iter_paths([p for p in paths if p.exists()]))
    sizes = {f: (f.stat().st_size if f.exists() else 0) for f in files}
    total = sum(sizes.values())
    done = 0
    bulk_load = getattr(store, "bulk_load", None)  # the store's settings for a long ingest, if it has any
    with bulk_load() if bulk_load is not None else contextlib.nullcontext():
        for f in files:
            cb = (lambda n, f=f, base=done: progress(str(f), base + n, total)) if progress else None
            ing.ingest_file(f, cb)
            done += sizes[f]
            if progress:
                progress(str(f), done, total)
        return ing.finish(started)
