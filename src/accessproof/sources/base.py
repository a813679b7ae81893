"""What every source shares: reading records out of files, the parser contract, and time parsing.

A *reader* turns a file (plain or ``.gz``; JSON Lines, a JSON array, or a wrapper object such as
CloudTrail's ``{"Records": [...]}`` or ServiceNow's ``{"result": [...]}``) into a stream of ``Chunk``:
the exact bytes of one record, its position, and — when the reader had to parse it to find its end —
the decoded object. A record the reader cannot cut out (malformed JSON, invalid UTF-8, over the size
limit, a truncated ``.gz``) comes out as a ``Chunk`` with ``error`` set, so the ingest engine can
quarantine it with its position and carry on.

A *source* turns one decoded record into canonical records (``IdentityEvent``, ``WorkflowRecord``,
``Person``) or raises ``Reject`` with a one-line reason.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

#: Largest single record accepted (a CloudTrail event is at most 256 KiB; a QMS row far less).
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: Wrapper objects whose list member holds the records, streamed element by element.
WRAPPER_KEYS = ("Records", "result", "issues", "value", "events", "logs")
_CHUNK = 1 << 20
#: read size for JSON Lines taken a block at a time: fewer, larger blocks amortise each block's fixed cost
_BLOCK = 8 << 20
_WRAPPER_RE = re.compile(rb'^\s*\{\s*"(' + b"|".join(k.encode() for k in WRAPPER_KEYS) + rb')"\s*:\s*\[')
_WS = " \t\r\n"


class Reject(Exception):
    """Raised by a source: this record cannot be normalised; the message is the quarantine reason."""


@dataclass(slots=True)
class Chunk:
    """One record's bytes as they arrived. ``obj`` is set when the reader already decoded it."""

    data: bytes
    position: str
    obj: Any = None
    error: str | None = None
    file_level: bool = False  # the error is about the file (unreadable, truncated), not one record


@dataclass(slots=True)
class LineBlock:
    """Complete lines of a JSON Lines file, as read: ``data`` is the lines joined by ``\\n`` (no final
    newline), the first being line ``first_line``. Engines that handle lines a block at a time (the bulk
    path) take these; ``line_chunk`` turns one of its lines into what ``iter_json_records`` yields."""

    data: bytes
    first_line: int


@dataclass(slots=True)
class Context:
    """What a source knows about the record it normalises."""

    source_type: str
    file: str
    position: str
    raw_id: str
    sha256: str
    source_name: str | None = None  # a named instance ("okta:acme"); sources pick a default otherwise
    options: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """A parser for one vendor format. Modules under ``accessproof.sources`` implement it."""

    source_type: str

    def normalize(self, obj: Any, ctx: Context) -> list[Any]: ...


# ---------------------------------------------------------------- reading files

def open_binary(path: Path):
    """Open plain or gzip-compressed files by their magic bytes, not their name."""
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    return f


def iter_json_records(path: Path, display: str | None = None,
                      on_progress: Callable[[int], None] | None = None, *,
                      line_blocks: bool = False) -> Iterator[Chunk | LineBlock]:
    """Yield every JSON record of a file: JSON Lines, a JSON array, or a known wrapper object.

    Memory stays bounded by ``MAX_RECORD_BYTES`` plus one read chunk, whatever the file size.
    ``on_progress(bytes)`` is told how far into the (compressed) file reading has got. With
    ``line_blocks`` the lines of a JSON Lines file come a read at a time as ``LineBlock`` (errors still
    as ``Chunk``); arrays and documents always come as ``Chunk``.
    """
    name = display or str(path)
    try:
        fh = open_binary(path)
        if on_progress is not None:
            fh = _Progress(fh, on_progress)
    except OSError as e:
        yield Chunk(b"", f"{name}", error=f"cannot open file: {e.strerror or e}", file_level=True)
        return
    with fh:
        try:
            head = _read(fh)
        except (OSError, EOFError, zlib.error) as e:
            yield Chunk(b"", f"{name}@0", error=f"cannot read file: {_io_reason(e)}", file_level=True)
            return
        start = len(head) - len(head.lstrip(b"\xef\xbb\xbf" + _WS.encode()))
        if head.startswith(b"\xef\xbb\xbf"):
            start = max(start, 3)
        first = head[start:start + 1]
        if first == b"[":
            yield from _iter_array(fh, head, start + 1, name)
            return
        m = _WRAPPER_RE.match(head)
        if m:
            yield from _iter_array(fh, head, m.end(), name)
            return
        if first == b"{" and _is_multiline_document(head, start):
            yield from _iter_document(fh, head, name)
            return
        if line_blocks:
            yield from _iter_line_blocks(fh, head, name, _BLOCK)
        else:
            yield from _iter_lines(fh, head, name)


def _read(fh, size: int = _CHUNK) -> bytes:
    """Read the next piece; ``read1`` hands over what a truncated .gz still holds before failing."""
    read1 = getattr(fh, "read1", None)
    return read1(size) if read1 is not None else fh.read(size)


class _Progress:
    """Wraps a reader to report the position in the underlying file after each read."""

    def __init__(self, fh, callback: Callable[[int], None]):
        self._fh = fh
        self._raw = getattr(fh, "fileobj", None) or fh
        self._cb = callback

    def read1(self, n: int = -1) -> bytes:
        data = _read(self._fh, n)
        with contextlib.suppress(OSError, ValueError):
            self._cb(self._raw.tell())
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def _io_reason(e: BaseException) -> str:
    if isinstance(e, EOFError):
        return "compressed stream is truncated (unexpected end of .gz)"
    if isinstance(e, (zlib.error, gzip.BadGzipFile)):
        return f"corrupt compressed stream ({e})"
    return str(e)


def _is_multiline_document(head: bytes, start: int) -> bool:
    """True when the file is one pretty-printed JSON object rather than JSON Lines."""
    nl = head.find(b"\n", start)
    if nl < 0:
        return False
    try:
        orjson.loads(head[start:nl])
        return False
    except orjson.JSONDecodeError:
        return head[start:nl].strip() == b"{" or head[start:nl].rstrip().endswith((b",", b"{", b"["))


def line_chunk(line: bytes, name: str, lineno: int) -> Chunk | None:
    """Line ``lineno`` of a JSON Lines file as a record (``None`` for a blank line)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_RECORD_BYTES:
        return Chunk(b"", f"{name}:{lineno}",
                     error=f"record of {len(line)} bytes exceeds the {MAX_RECORD_BYTES} byte limit")
    if line.strip():
        return Chunk(line, f"{name}:{lineno}")
    return None


def _iter_lines(fh, head: bytes, name: str) -> Iterator[Chunk]:
    """JSON Lines, one record at a time."""
    for item in _iter_line_blocks(fh, head, name):
        if isinstance(item, Chunk):
            yield item
            continue
        lineno = item.first_line
        for line in item.data.split(b"\n"):
            c = line_chunk(line, name, lineno)
            lineno += 1
            if c is not None:
                yield c


def _iter_line_blocks(fh, head: bytes, name: str, read_size: int = _CHUNK) -> Iterator[Chunk | LineBlock]:
    """JSON Lines, the complete lines of each read at a time. Over-long lines are skipped without being
    held; read errors come as ``Chunk``."""
    lineno = 0
    pending = b""
    piece = head
    draining = -1  # >= 0 while skipping an over-long line: bytes skipped so far

    while True:
        if draining >= 0:
            cut = piece.find(b"\n")
            if cut < 0:
                draining += len(piece)
                piece = b""
            else:
                lineno += 1
                yield Chunk(b"", f"{name}:{lineno}", error=f"record of {draining + cut} bytes exceeds "
                                                           f"the {MAX_RECORD_BYTES} byte limit")
                draining, piece = -1, piece[cut + 1:]
        if draining < 0 and piece:
            buf = pending + piece if pending else piece
            cut = buf.rfind(b"\n")
            if cut < 0:
                pending = buf
            else:
                block, pending = buf[:cut], buf[cut + 1:]
                first = lineno + 1
                lineno += block.count(b"\n") + 1
                yield LineBlock(block, first)
            if len(pending) > MAX_RECORD_BYTES:
                draining, pending = len(pending), b""
        try:
            piece = _read(fh, read_size)
        except (OSError, EOFError, zlib.error) as e:
            at = f"{name}:{lineno + 1}"
            if pending.strip() or draining >= 0:
                yield Chunk(pending[:MAX_RECORD_BYTES], at, file_level=True,
                            error=f"cannot read file: {_io_reason(e)}; partial record set aside")
            else:
                yield Chunk(b"", at, error=f"cannot read file: {_io_reason(e)}", file_level=True)
            return
        if not piece:
            if draining >= 0:
                lineno += 1
                yield Chunk(b"", f"{name}:{lineno}", error=f"record of {draining} bytes exceeds "
                                                           f"the {MAX_RECORD_BYTES} byte limit")
            elif pending:
                yield LineBlock(pending, lineno + 1)
            return


_DECODER = json.JSONDecoder()


def _iter_array(fh, head: bytes, offset: int, name: str) -> Iterator[Chunk]:
    """Stream the elements of a JSON array starting at byte ``offset`` of ``head``.

    The stdlib decoder's ``raw_decode`` parses one element in C and returns where it ends, which gives
    both the object and its exact bytes. Invalid UTF-8 is kept as surrogate escapes and the element
    holding it is set aside on its own. ``text`` is only compacted when more is read, so each element
    costs its own size, not the buffer's; ``at`` is the file offset of ``text[pos]`` (separators
    between elements are ASCII, one byte per character).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    text = decoder.decode(head[offset:])
    at = offset
    pos = 0
    index = 0
    eof = False
    ws = _WS + ","
    while True:
        n = len(text)
        start = pos
        while pos < n and text[pos] in ws:
            pos += 1
        at += pos - start
        if pos < n and text[pos] == "]":
            return
        obj = err = None
        end = -1
        if pos < n:
            try:
                obj, end = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                err = e
        if end < 0:
            if not eof and n - pos < MAX_RECORD_BYTES:
                try:
                    more = _read(fh)
                except (OSError, EOFError, zlib.error) as io_err:
                    yield Chunk(text[pos:].encode("utf-8", "surrogateescape")[:MAX_RECORD_BYTES],
                                f"{name}#{index}@{at}", file_level=True,
                                error=f"cannot read file: {_io_reason(io_err)}; partial record set aside")
                    return
                text, pos = text[pos:], 0
                if more:
                    text += decoder.decode(more)
                else:
                    eof = True
                    text += decoder.decode(b"", final=True)
                continue
            where = f"{name}#{index}@{at}"
            if pos >= n:
                yield Chunk(b"", where, error="JSON array is not closed (file truncated?)", file_level=True)
            elif n - pos >= MAX_RECORD_BYTES:
                yield Chunk(b"", where, error=f"record exceeds the {MAX_RECORD_BYTES} byte limit; "
                                              "rest of the array not readable")
            else:
                msg = f"malformed JSON: {err.msg}" if err else "malformed JSON"
                yield Chunk(text[pos:].encode("utf-8", "surrogateescape"), where,
                            error=msg + "; rest of the array not readable")
            return
        raw_text = text[pos:end]
        try:
            data = raw_text.encode("utf-8")
            error = None
        except UnicodeEncodeError:
            data = raw_text.encode("utf-8", "surrogateescape")
            error, obj = "invalid UTF-8 in record", None
        yield Chunk(data, f"{name}#{index}@{at}", obj=obj, error=error)
        at += len(data)
        pos = end
        index += 1


def _iter_document(fh, head: bytes, name: str) -> Iterator[Chunk]:
    """A pretty-printed JSON document: one record, or a wrapper whose list member holds the records.

    Such exports (ServiceNow, Jira, Graph) are small; the whole document is read up to the record limit.
    """
    buf = head
    while len(buf) <= MAX_RECORD_BYTES * 4:
        try:
            more = _read(fh)
        except (OSError, EOFError, zlib.error) as e:
            yield Chunk(buf[:4096], f"{name}@0", error=f"cannot read file: {_io_reason(e)}", file_level=True)
            return
        if not more:
            break
        buf += more
    else:
        yield Chunk(b"", f"{name}@0", error="JSON document too large to read whole; export it as JSON Lines", file_level=True)
        return
    try:
        doc = orjson.loads(buf)
    except orjson.JSONDecodeError as e:
        yield Chunk(buf[:MAX_RECORD_BYTES], f"{name}@0", error=f"malformed JSON document: {e}")
        return
    if isinstance(doc, dict):
        for key in WRAPPER_KEYS:
            if isinstance(doc.get(key), list):
                for i, item in enumerate(doc[key]):
                    yield Chunk(orjson.dumps(item), f"{name}#{i}", obj=item)
                return
    yield Chunk(buf, f"{name}@0", obj=doc)


def iter_paths(paths: list[Path]) -> Iterator[Path]:
    """Files named, and files under directories named, in a stable order."""
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        else:
            yield p


# ---------------------------------------------------------------- time

_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")
_FRACTION_RE = re.compile(r"\.(\d{7,})")


def parse_time(value: Any, *, naive_is_utc: bool = False, what: str = "timestamp",
               required: bool = True) -> datetime | None:
    """Parse an ISO 8601 or epoch timestamp into an aware UTC datetime, or raise ``Reject``.

    ``required=False`` returns ``None`` for an absent value (a partial export: the event is kept with
    its time unknown); a present but bad value is always rejected.

    ``naive_is_utc`` is for sources whose vendor documents UTC (Okta ``published``, Azure Monitor
    ``time``, GitHub ``@timestamp``) when a pipeline dropped the ``Z``; elsewhere a timestamp without
    an offset is rejected, never guessed.
    """
    if value is None or value == "":
        if not required:
            return None
        raise Reject(f"missing {what}")
    if isinstance(value, bool):
        raise Reject(f"{what} has the wrong type (boolean)")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Reject(f"{what} {value!r} is out of range") from None
    if not isinstance(value, str):
        raise Reject(f"{what} has the wrong type ({type(value).__name__})")
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    s = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6], s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise Reject(f"{what} {value[:64]!r} is not ISO 8601") from None
    if dt.tzinfo is None:
        if not naive_is_utc:
            raise Reject(f"{what} {value[:64]!r} has no timezone offset")
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_date_or_time(value: Any, *, fmt: str | None = None, tz: str | None = None,
                       what: str = "date") -> datetime | None:
    """Parse a governance date per an explicit format and timezone (``tz`` required for naive values).

    Empty values give ``None``. A date without a time becomes midnight in ``tz``. Nothing is guessed:
    a naive value with no declared ``tz`` is rejected.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif fmt:
        try:
            dt = datetime.strptime(str(value).strip(), fmt)
        except ValueError:
            raise Reject(f"{what} {str(value)[:64]!r} does not match format {fmt!r}") from None
    else:
        try:
            return parse_time(value, what=what)
        except Reject:
            s = str(value).strip()
            try:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
            except ValueError:
                raise Reject(f"{what} {s[:64]!r} is not ISO 8601 and the mapping gives no format") from None
    if dt.tzinfo is None:
        if not tz:
            raise Reject(f"{what} {str(value)[:64]!r} has no timezone and the mapping declares none")
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=UTC if tz.upper() == "UTC" else ZoneInfo(tz))
    return dt.astimezone(UTC)


def first(d: dict, *keys: str, default: Any = None) -> Any:
    """The first present, non-empty value among ``keys`` (sources whose pipelines lower-case keys)."""
    for k in keys:
        v = d.get(k)
        if v not in (None, ""):
            return v
    return default

