"""The one path in: bytes → raw record + canonical record(s), or a quarantine entry with a reason.

CLI files, API batches and webhooks all come through ``Ingestor``, so every record read is accounted
for the same way: accepted, duplicate, or quarantined with its position and reason. Records are
buffered into column lists and written a batch at a time (one transaction per batch), which keeps memory
flat and makes a killed run safe to repeat: keys already stored count as duplicates.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from accessproof.ledger import open_ledger
from accessproof.model import IdentityEvent, Person, WorkflowRecord
from accessproof.sources import get_source
from accessproof.sources.base import Chunk, Context, Reject, Source, iter_json_records, iter_paths
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
        # Records the source can recognise from their bytes go to the store's bulk path (SQL), where the
        # store supports it; the source names both the recogniser and the SQL.
        self._bulk_ok = (getattr(self.source, "bulk_accepts", None)
                         if getattr(store, "supports_bulk", False) else None)
        self._bulk_sql = getattr(self.source, "BULK_SQL", None)
        self.ledger = open_ledger(store.dir, store.con) if seal else None
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
        self._pending = 0

    # ------------------------------------------------------------ records

    def add(self, chunk: Chunk, file: str) -> None:
        """Account for one record read from ``file``."""
        self.summary.read += 1
        self._pending += 1
        if chunk.error:
            self._set_aside(chunk, file, chunk.error)
        elif self._bulk_ok is not None and self._bulk_ok(chunk.data):
            data = chunk.data
            self._bulk.append((data, hashlib.sha256(data).hexdigest(), self.summary.read, file, chunk.position))
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
                seq = self.summary.read
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
        if self._pending >= self.batch_size:
            self.flush()

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
        raw = _table(self._raw, _RAW_SCHEMA)
        if raw is None:
            raw = _RAW_SCHEMA.empty_table()
        batch = Batch(
            raw=raw,
            events=_table(self._events, _EVENT_SCHEMA),
            workflow=_table(self._workflow, _WORKFLOW_SCHEMA),
            persons=_table(self._persons, _PERSON_SCHEMA),
            quarantine=_table(self._quarantine, _QUARANTINE_SCHEMA),
            bulk=_table(self._bulk, _BULK_SCHEMA),
            bulk_sql=self._bulk_sql,
            bulk_source_type=self.source_type,
            source_name=self.source_name,
        )
        may_quarantine = bool(self._quarantine) or bool(self._bulk)  # bulk rows can fail their JSON parse
        self._reset()
        # One batch is written in the background while the next is parsed (DuckDB releases the GIL);
        # at most two batches are in memory at once.
        self._wait()
        seal = (lambda con: self._seal(con, may_quarantine)) if self.ledger is not None else None
        self._writing = self._writer.submit(self.store.write_batch, batch, self.summary.run_id, seal)

    def _seal(self, con: Any, may_quarantine: bool) -> None:
        """Seal, inside the batch's transaction, every raw record and quarantined record it added.

        ``con`` is the DuckDB connection with the batch's new raw ids in ``_new``, or for PostgreSQL the
        rows the batch added (``store.postgres.Added``), sealed from memory."""
        assert self.ledger is not None
        if self.store.dialect != "duckdb":
            self._seal_added(con)
            return
        # DuckDB builds the entries (no per-record Python work on the writer thread)
        self.ledger.seal_query(
            con,
            "SELECT 'raw', r.raw_id, r.source, r.record_time, r.data, r.record_type FROM raw_records r "
            "JOIN _new n ON r.raw_id = n.raw_id",
        )
        if not may_quarantine:
            return
        self.ledger.seal_query(
            con,
            "SELECT 'quarantine', q.quarantine_id, q.source_type, NULL::TIMESTAMPTZ, q.data, 'quarantine' "
            "FROM quarantine q WHERE q.run_id = ? AND NOT EXISTS (SELECT 1 FROM ledger_entries e "
            "WHERE e.record_type = 'quarantine' AND e.record_id = q.quarantine_id)",
            [self.summary.run_id],
        )

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

    def read_file(self, path: Path, on_progress: Callable[[int], None] | None = None) -> Iterator[Chunk]:
        reader = getattr(self.source, "read", None)
        display = str(path)
        if reader is not None:
            return reader(path, display)
        return iter_json_records(path, display, on_progress=on_progress)

    def ingest_file(self, path: Path, on_progress: Callable[[int], None] | None = None) -> None:
        self.summary.files += 1
        for chunk in self.read_file(path, on_progress):
            self.add(chunk, str(path))
            if chunk.file_level:
                self.summary.file_errors.append(f"{chunk.position}: {chunk.error}")

    def ingest_chunks(self, chunks: Iterable[Chunk], file: str) -> None:
        for chunk in chunks:
            self.add(chunk, file)

    def finish(self, started: float) -> IngestSummary:
        self.flush()
        self._wait()
        self._writer.shutdown()
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
    for f in files:
        cb = (lambda n, f=f, base=done: progress(str(f), base + n, total)) if progress else None
        ing.ingest_file(f, cb)
        done += sizes[f]
        if progress:
            progress(str(f), done, total)
    return ing.finish(started)
