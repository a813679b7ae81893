"""One delivery into the store: what the ingest endpoint and the webhooks share.

A request body streams into a temporary file (gzip is inflated on the way, under the same byte limit,
so a small compressed body cannot expand without bound), then goes through ``Ingestor.ingest_chunks`` —
the CLI's own path — read by the source's own reader, so a body is read exactly as a file of the same
bytes would be: JSON Lines, a JSON array, a wrapper such as ``{"Records": [...]}``, or CSV for mapped
sources. Every record is accepted, duplicate or quarantined with its position (``<name>:<line>``, where
the name carries the delivery id) and reason; the response lists the quarantined ones.

After a delivery, ``accessproof.server.retest.after_ingest(store, summary, subjects)`` re-tests the
controls the delivered records can affect, when that module exists.
"""

from __future__ import annotations

import hmac
import logging
import re
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from accessproof.api.deps import fail, optional_module, using_store
from accessproof.ingest import Ingestor, IngestSummary
from accessproof.sources import REGISTRY, UnknownSource
from accessproof.sources.base import Chunk, iter_json_records
from accessproof.store.base import Store

log = logging.getLogger("accessproof.api")
#: content types a body of records may not have (form posts are not vendor exports)
REFUSED_TYPES = ("multipart/", "application/x-www-form-urlencoded")
DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: the response lists at most this many quarantined records (all are in GET /api/v1/quarantine)
LISTED = 1000
#: at most this many waiting deliveries are ingested in one run
MAX_TOGETHER = 64


@dataclass
class Body:
    """A received body: a temporary file holding the (inflated) bytes, and the MAC of the bytes as sent."""

    file: IO[bytes]
    size: int
    mac: Any = None

    @property
    def path(self) -> Path:
        return Path(self.file.name)

    def close(self) -> None:
        self.file.close()


@dataclass
class Outcome:
    summary: IngestSummary
    delivery: str
    quarantine: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        return {"run_id": s.run_id, "delivery": self.delivery, "source_type": s.source_type, "read": s.read,
                "accepted": s.accepted, "duplicate": s.duplicate, "quarantined": s.quarantined,
                "quarantine": self.quarantine, "errors": self.errors, "seconds": round(s.seconds, 4)}


def check_source(source_type: str) -> None:
    if source_type not in REGISTRY:
        fail(404, "unknown source type", f"unknown source type {source_type!r}; known: {', '.join(sorted(REGISTRY))}")


def record_file(kind: str, source_type: str, delivery: str) -> str:
    """The file part of a delivery's record positions: ``<kind>/<type>/<delivery id>/<attempt>``. Each
    attempt is its own, so its rows tell it apart (a retried delivery's set-aside records are set aside
    again, and its records already stored count as duplicates)."""
    return f"{kind}/{source_type}/{delivery}/{uuid.uuid4().hex[:8]}"


def delivery_id(value: str | None) -> str:
    """The sender's delivery id (kept in record positions), or a new one."""
    if value is None:
        return uuid.uuid4().hex[:16]
    if not DELIVERY_ID.match(value):
        fail(400, "invalid delivery id", "a delivery id is 1-128 characters of A-Z a-z 0-9 . _ : -")
    return value


async def receive(request: Request, *, mac: Any = None) -> Body:
    """Stream the body into a temporary file; 413 past the byte limit (inflated bytes count), 400 when
    gzip is corrupt, 415 for form posts. ``mac`` (an ``hmac`` object) is fed the bytes as sent."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith(REFUSED_TYPES):
        fail(415, "unsupported media type", f"{ctype.split(';')[0]} is not a vendor export; send the records "
                                            "as JSON Lines, JSON or CSV")
    limit = request.app.state.settings.max_body_bytes
    encoding = request.headers.get("content-encoding", "identity").lower().strip()
    if encoding not in ("identity", "gzip", ""):
        fail(415, "unsupported content encoding", f"{encoding!r}; send identity or gzip")
    out = tempfile.NamedTemporaryFile(prefix="accessproof-body-", suffix=".ndjson")  # noqa: SIM115
    inflate: Any = None
    size = 0
    first = True
    try:
        async for piece in request.stream():
            if not piece:
                continue
            if mac is not None:
                mac.update(piece)
            if first:
                first = False
                if encoding == "gzip" or piece[:2] == b"\x1f\x8b":
                    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = piece
            if inflate is not None:
                try:
                    data = inflate.decompress(piece, limit + 1 - size)
                except zlib.error as e:
                    fail(400, "malformed body", f"corrupt gzip stream ({e})")
                if inflate.unconsumed_tail:
                    size = limit + 1
            size += len(data)
            if size > limit:
                fail(413, "body too large", f"request body (inflated) is over the {limit:,} byte limit")
            out.write(data)
        if inflate is not None and not inflate.eof:
            fail(400, "malformed body", "gzip stream is truncated")
        if inflate is not None and inflate.unused_data:
            fail(400, "malformed body", "bytes after the end of the gzip stream (send one gzip member)")
        out.flush()
    except ClientDisconnect:
        out.close()
        fail(400, "client disconnected", "the body did not arrive whole; nothing was ingested")
    except BaseException:
        out.close()
        raise
    return Body(out, size, mac)


def has_content(body: Body) -> bool:
    body.file.seek(0)
    while piece := body.file.read(1 << 16):
        if piece.strip():
            return True
    return False


def file_chunks(ing: Ingestor, body: Body, name: str) -> Iterator[Chunk]:
    """The body read as the source reads a file of the same bytes."""
    reader = getattr(ing.source, "read", None)
    return reader(body.path, name) if reader is not None else iter_json_records(body.path, name)


@dataclass
class Delivery:
    """One delivery waiting for the store: what to read, and the checks and records around it."""

    key: tuple[str, str | None, str]  # (source type, source name, options): deliveries ingested together share it
    name: str  # the record positions' file part; one per delivery, so rows tell deliveries apart
    delivery: str
    chunks_of: Callable[[Ingestor], Iterable[Chunk]]
    options: dict[str, Any] = field(default_factory=dict)
    guard: Callable[[Store], str | None] | None = None
    after: Callable[[Store, Outcome], None] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Outcome | str | BaseException | None = None


def ingest_together(store: Store, group: list[Delivery], *, subjects: bool = True) -> None:
    """Ingest deliveries of one source in one run of the CLI's path (one write and one checkpoint for all),
    then account for each from the rows it left: its accepted raw records and its quarantined ones carry
    its own name. ``guard`` may refuse a delivery first; ``after`` records each. Sets every result."""
    started = time.perf_counter()
    taken = []
    for d in group:
        refusal = d.guard(store) if d.guard is not None else None
        if refusal is not None:
            d.result = refusal
        else:
            taken.append(d)
    if not taken:
        return
    source_type, source_name, _ = taken[0].key
    try:
        ing = Ingestor(store, source_type, source_name=source_name, options=taken[0].options)
    except UnknownSource as e:
        fail(404, "unknown source type", str(e))
    except ValueError as e:  # a mapping that is missing or invalid
        fail(400, "invalid source options", (str(e).splitlines() or [""])[0])
    read: dict[str, int] = {}
    errors: dict[str, list[str]] = {}

    def watched(d: Delivery) -> Iterator[Chunk]:
        read[d.name], errors[d.name] = 0, []
        for c in d.chunks_of(ing):
            read[d.name] += 1
            if c.file_level:
                errors[d.name].append(f"{c.position}: {c.error}")
            yield c

    for d in taken:
        ing.ingest_chunks(watched(d), d.name)
    run = ing.finish(started)
    names = [d.name for d in taken]
    marks = ", ".join("?" for _ in names)
    accepted = dict(store.query(f"SELECT file, count(*) FROM raw_records WHERE run_id = ? AND file IN ({marks}) "
                                "GROUP BY file", [run.run_id, *names])) if run.accepted else {}
    set_aside: dict[str, list[dict[str, str]]] = {n: [] for n in names}
    if run.quarantined:
        for r in store.query_dicts(f"SELECT file, position, reason FROM quarantine WHERE run_id = ? AND file IN "
                                   f"({marks}) ORDER BY file, position", [run.run_id, *names]):
            set_aside[r.pop("file")].append(r)
    for d in taken:
        n_ok, n_bad = int(accepted.get(d.name, 0)), len(set_aside[d.name])
        summary = IngestSummary(run_id=run.run_id, source_type=source_type, files=1, read=read[d.name],
                                accepted=n_ok, duplicate=read[d.name] - n_ok - n_bad, quarantined=n_bad,
                                seconds=run.seconds)
        about = delivered_subjects(store, run.run_id, d.name) if subjects and n_ok else []
        d.result = Outcome(summary, d.delivery, set_aside[d.name][:LISTED], errors[d.name], about)
        if d.after is not None:
            d.after(store, d.result)


def delivered_subjects(store: Store, run_id: str, name: str) -> list[str]:
    """Whom one delivery's records are about: event targets, governance subjects, people."""
    rows = store.query("""
      SELECT DISTINCT s FROM (
        SELECT coalesce(e.target_name, e.target_id) AS s FROM events e
          JOIN raw_records r ON r.raw_id = e.raw_id WHERE r.run_id = ? AND r.file = ?
        UNION ALL SELECT w.subject FROM workflow_records w
          JOIN raw_records r ON r.raw_id = w.raw_id WHERE r.run_id = ? AND r.file = ?
        UNION ALL SELECT coalesce(p.email, p.person_id) FROM persons p
          JOIN raw_records r ON r.raw_id = p.raw_id WHERE r.run_id = ? AND r.file = ?
      ) x WHERE s IS NOT NULL ORDER BY s""", [run_id, name] * 3)
    return [r[0] for r in rows]


async def ingest_locked(request: Request, source_type: str, chunks_of: Any, *, name: str, delivery: str,
                        source_name: str | None = None, options: dict[str, Any] | None = None,
                        guard: Callable[[Store], str | None] | None = None,
                        after: Callable[[Store, Outcome], None] | None = None) -> Outcome | str:
    """Ingest one delivery while holding the store; ``guard(store)`` may refuse it first (its reason is
    returned instead of an outcome) and ``after`` records it, both in the same hold.

    Deliveries that arrive while the store is busy are combined: whoever gets the store next ingests every
    waiting delivery of the same source in one run (``MAX_TOGETHER`` at most), so a burst of small webhook
    deliveries costs one write and one checkpoint, not one each; each still gets its own accounting."""
    d = Delivery((source_type, source_name, repr(sorted((options or {}).items()))), name, delivery, chunks_of,
                 dict(options or {}), guard, after)
    state = request.app.state

    def work() -> Outcome | str:
        with state.waiting_lock:
            state.waiting.append(d)
        with using_store(request) as store:
            if not d.done.is_set():
                with state.waiting_lock:
                    group = [w for w in state.waiting if w.key == d.key][:MAX_TOGETHER]
                    if d not in group:
                        group[-1:] = [d]
                    for w in group:
                        state.waiting.remove(w)
                try:
                    ingest_together(store, group, subjects=state.settings.retest)
                except BaseException as e:
                    for w in group:
                        w.result = w.result if w.result is not None else e
                    raise
                finally:
                    for w in group:
                        w.done.set()
        if isinstance(d.result, BaseException):
            raise d.result
        assert d.result is not None
        return d.result

    return await run_in_threadpool(work)


def retest_after(request: Request, outcome: Outcome) -> None:
    """Hand the delivery to ``accessproof.server.retest.after_ingest`` (run after the response is sent)."""
    if not outcome.summary.accepted or not request.app.state.settings.retest:
        return
    retest = optional_module("accessproof.server.retest")
    if retest is None:
        return

    try:
        with using_store(request) as store:
            retest.after_ingest(store, outcome.summary, outcome.subjects)
    except Exception:  # re-testing must never lose a delivery that is already stored and sealed
        log.exception("re-test after delivery %s failed", outcome.delivery)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
