"""Generic CSV / JSON reader driven by a declarative column mapping (``accessproof.mapping``).

QMS exports (exceptions, training records, supplier register, change records) and HR worker reports have no
fixed vendor schema: every tenant configures its own columns. Rather than one parser per tenant, a mapping
file says which column feeds which canonical field and how to read it (date format, timezone, list
separator, value map). Everything is explicit: a date that does not match the declared format, a naive
timestamp without a declared timezone or a value outside a declared map is quarantined, never guessed.

CSV rows are cut out of the file with their exact bytes (a quoted multi-line cell stays one record) so the
raw evidence is sealed as it arrived; JSON files go through ``base.iter_json_records``.
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from accessproof import model
from accessproof.mapping import (
    DATE_FIELDS,
    ID_FIELD,
    LIST_FIELDS,
    VOCABULARIES,
    FieldSpec,
    Mapping,
    MappingError,
    bundled_mappings,
    resolve_mapping,
)
from accessproof.model import OCSF_FOR_ACTION, Actor, Entitlement, IdentityEvent, Person, TargetAccount
from accessproof.sources import base
from accessproof.sources.base import Chunk, Context, Reject, parse_date_or_time
from accessproof.sources.refs import find_approval_ref

#: Physical lines are read in pieces of this size so a huge line never sits in memory whole.
_PIECE = 1 << 20
_SHOW = 64  # characters of a bad value quoted in a reason


class _TooLong(Exception):
    def __init__(self, size: int, multiline: bool) -> None:
        super().__init__(size)
        self.size = size
        self.multiline = multiline


class _ReadFailed(Exception):
    pass


class _Lines:
    """Feeds ``csv.reader`` one physical line at a time while keeping each line's exact bytes.

    ``csv.reader`` decides where a record ends (quotes, doubled quotes, embedded newlines) exactly as it
    parses it; this iterator records which raw lines it consumed, so a row's bytes are the lines taken
    since the previous row. It is a class, not a generator, because it raises ``_TooLong`` out of the
    reader and must keep working afterwards.
    """

    def __init__(self, fh: Any, encoding: str, cap: int) -> None:
        self.fh = fh
        self.encoding = encoding
        self.cap = cap
        self.lineno = 0
        self.first = 1
        self.buf: list[bytes] = []
        self.size = 0
        self.read_error: str | None = None

    def __iter__(self) -> _Lines:
        return self

    def take(self) -> tuple[bytes, int]:
        """The raw bytes of the record just parsed (without its final line end) and its first line."""
        data = b"".join(self.buf)
        if data.endswith(b"\n"):
            data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
        first = self.first
        self.buf, self.size = [], 0
        return data, first

    def _readline(self) -> bytes:
        try:
            return self.fh.readline(_PIECE)
        except (OSError, EOFError, zlib.error) as e:
            self.read_error = base._io_reason(e)
            raise _ReadFailed from None

    def __next__(self) -> str:
        piece = self._readline()
        if not piece:
            raise StopIteration
        self.lineno += 1
        if not self.buf:
            self.first = self.lineno
        if self.lineno == 1 and piece.startswith(codecs.BOM_UTF8):
            piece = piece[len(codecs.BOM_UTF8):]  # Excel's "CSV UTF-8" writes a BOM
        if not piece.endswith(b"\n") and len(piece) >= _PIECE:
            parts, size = [piece], len(piece)
            while True:
                more = self._readline()
                if not more:
                    break
                size += len(more)
                if size <= self.cap:
                    parts.append(more)
                if more.endswith(b"\n"):
                    break
            if size > self.cap:  # drained without keeping it
                raise _TooLong(self.size + size, multiline=False)
            piece = b"".join(parts)
        self.buf.append(piece)
        self.size += len(piece)
        if self.size > self.cap:
            raise _TooLong(self.size, multiline=True)
        return piece.decode(self.encoding, "surrogateescape")


def _blank(row: list[str]) -> bool:
    return all(not c.strip() for c in row)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one canonical field is filled: from ``spec.column`` with its options resolved."""

    name: str
    spec: FieldSpec
    fmt: str | None
    tz: str | None


class TabularSource:
    """A ``base.Source`` for one mapping: reads CSV (or JSON) and builds the mapping's record type."""

    def __init__(self, source_type: str, mapping: Mapping) -> None:
        self.source_type = source_type
        self.mapping = mapping
        self.format = mapping.format or source_type
        self.plans = [_Plan(name, spec, *mapping.date_settings(name)) for name, spec in mapping.fields.items()]
        self.constants = {name: self._constant(name, v) for name, v in mapping.constants.items()}

    # ------------------------------------------------------------ reading

    def read(self, path: Path, display: str | None = None) -> Iterator[Chunk]:
        """Every row of the file as a ``Chunk``; rows that cannot be cut out come with ``error`` set."""
        name = display or str(path)
        if self.format == "json":
            yield from base.iter_json_records(path, name)
            return
        yield from self._read_csv(path, name)

    def _read_csv(self, path: Path, name: str) -> Iterator[Chunk]:
        cap = base.MAX_RECORD_BYTES
        # The stdlib's default 128 KiB field limit would reject a long justification the cap allows.
        if csv.field_size_limit() < cap:
            csv.field_size_limit(cap)
        try:
            fh = base.open_binary(path)
        except OSError as e:
            yield Chunk(b"", name, error=f"cannot open file: {e.strerror or e}", file_level=True)
            return
        with fh:
            lines = _Lines(fh, self.mapping.encoding, cap)
            reader = csv.reader(lines, delimiter=self.mapping.delimiter, quotechar='"', doublequote=True,
                                strict=True)
            header: list[str] | None = None
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    if header is None:  # an export tool always writes its header, even with no rows
                        yield Chunk(b"", f"{name}:1", error="empty file: no header row", file_level=True)
                    return
                except _ReadFailed:
                    data, first = lines.take()
                    what = "; partial row set aside" if data.strip() else ""
                    yield Chunk(data[:cap], f"{name}:{first if data else lines.lineno + 1}",
                                error=f"cannot read file: {lines.read_error}{what}", file_level=True)
                    return
                except _TooLong as e:
                    _, first = lines.take()
                    if e.multiline:
                        yield Chunk(b"", f"{name}:{first}",
                                    error=f"row of over {cap} bytes exceeds the limit (unclosed quote?); "
                                          "rest of the file not readable", file_level=True)
                        return
                    yield Chunk(b"", f"{name}:{first}", error=f"row of {e.size} bytes exceeds the {cap} byte limit")
                    continue
                except csv.Error as e:
                    data, first = lines.take()
                    last = lines.lineno
                    span = f" (lines {first}-{last}, unclosed quote?)" if last > first else ""
                    if header is None:
                        yield Chunk(data, f"{name}:{first}", error=f"malformed CSV header: {e}{span}; no rows read",
                                    file_level=True)
                        return
                    yield Chunk(data, f"{name}:{first}", error=f"malformed CSV row: {e}{span}")
                    continue
                data, first = lines.take()
                if _blank(row):
                    continue  # an empty line (or only separators) is not a record
                try:
                    data.decode(self.mapping.encoding)
                except UnicodeDecodeError as e:
                    where = "header" if header is None else "row"
                    reason = f"invalid {self.mapping.encoding} in {where} at byte {e.start}"
                    if header is None:
                        yield Chunk(data, f"{name}:{first}", error=reason + "; no rows read", file_level=True)
                        return
                    yield Chunk(data, f"{name}:{first}", error=reason)
                    continue
                if header is None:
                    header = [c.strip() for c in row]
                    problem = self._header_problem(header)
                    if problem:
                        yield Chunk(data, f"{name}:{first}", error=problem, file_level=True)
                        return
                    continue
                if len(row) != len(header):
                    yield Chunk(data, f"{name}:{first}",
                                error=f"row has {len(row)} fields, the header has {len(header)}")
                    continue
                yield Chunk(data, f"{name}:{first}", obj=dict(zip(header, row, strict=True)))

    def _header_problem(self, header: list[str]) -> str | None:
        """Why the header cannot be read with this mapping (missing or ambiguous columns), or None."""
        exact = set(header)
        folded: dict[str, int] = {}
        for h in header:
            folded[h.casefold()] = folded.get(h.casefold(), 0) + 1
        missing = []
        for col in self.mapping.columns():
            c = col.strip()
            if header.count(c) > 1:
                return f"header has column {c!r} twice; no rows read (mapping {self.mapping.origin})"
            if c not in exact and folded.get(c.casefold(), 0) != 1:
                missing.append(col)
        if missing:
            return (f"header lacks mapped column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(m) for m in missing)}; no rows read (mapping {self.mapping.origin}; "
                    f"header has {', '.join(repr(h) for h in header[:30])})")
        return None

    # ------------------------------------------------------------ normalising

    def normalize(self, obj: Any, ctx: Context) -> list[Any]:
        """One row (a dict of column -> value) into one canonical record, or ``Reject``."""
        if not isinstance(obj, dict):
            raise Reject(f"record is not an object of columns ({type(obj).__name__})")
        m = self.mapping
        record_id = _scalar(_lookup(obj, m.id), m.id)
        record_id = record_id.strip() if record_id is not None else None
        if not record_id:
            raise Reject(f"missing {ID_FIELD[m.record]} (column {m.id!r} is empty)")
        values: dict[str, Any] = dict(self.constants)
        for plan in self.plans:
            values[plan.name] = self._value(plan, _lookup(obj, plan.spec.column))
        for name in m.required:
            if _empty(values.get(name)):
                col = m.fields[name].column if name in m.fields else None
                raise Reject(f"missing required {name}" + (f" (column {col!r} is empty)" if col else ""))
        system = ctx.source_name or m.system
        if m.record == "person":
            return [self._person(record_id, system, values)]
        if m.record == "event":
            return [self._event(record_id, system, values)]
        return [self._workflow(record_id, system, values)]

    def _value(self, plan: _Plan, raw: Any) -> Any:
        """A cell cleaned per the field's options and typed for its canonical field."""
        spec, col = plan.spec, plan.spec.column
        is_attr = plan.name.startswith("attributes.")
        if isinstance(raw, dict) and is_attr and not spec.map and not spec.format:
            return raw  # a nested JSON value kept as it is in attributes
        if isinstance(raw, list):
            items = [_scalar(x, col) for x in raw]
        else:
            s = _scalar(raw, col)
            items = [] if s is None else (s.split(spec.split) if spec.split else [s])
        out: list[str] = []
        for item in items:
            v: str | None = item
            if v is None:
                continue
            if spec.strip:
                v = v.strip()
            if spec.lower:
                v = v.lower()
            if spec.map is not None and v.strip():
                v = _mapped(spec, v, col)
            if v is None or not v.strip():
                continue
            out.append(v)
        if not out and spec.default is not None and not (spec.split or plan.name in LIST_FIELDS):
            out = [spec.default]
        if plan.name in LIST_FIELDS or (is_attr and spec.split):
            return list(dict.fromkeys(out)) or None
        if len(out) > 1:
            raise Reject(f"column {col!r} holds {len(out)} values, {plan.name} takes one")
        if not out:
            return None
        v = out[0]
        if plan.name in DATE_FIELDS or (is_attr and spec.format):
            dt = parse_date_or_time(v, fmt=plan.fmt, tz=plan.tz, what=f"column {col!r} value")
            return dt.isoformat() if is_attr and dt else dt
        vocab = VOCABULARIES.get(plan.name)
        if vocab and v not in vocab:
            raise Reject(f"column {col!r} value {v[:_SHOW]!r} is not a {plan.name} ({', '.join(vocab)}); "
                         "add it to the field's map")
        return v

    def _constant(self, name: str, value: Any) -> Any:
        if name in DATE_FIELDS:
            fmt, tz = self.mapping.date_settings(name)
            try:
                return parse_date_or_time(str(value), fmt=fmt, tz=tz, what=f"constant {name!r}")
            except Reject as e:
                raise MappingError(f"{self.mapping.origin}: {e}") from None
        if name in LIST_FIELDS:
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if name.startswith("attributes."):
            return value
        return str(value)

    # ------------------------------------------------------------ building records

    def _workflow(self, record_id: str, system: str, values: dict[str, Any]) -> model.WorkflowRecord:
        kw, attributes = _split_attributes(values)
        return model.WorkflowRecord(record_id=record_id, system=system, kind=str(self.mapping.kind),
                                    attributes=attributes, **kw)

    def _person(self, person_id: str, system: str, values: dict[str, Any]) -> Person:
        kw, _ = _split_attributes(values)
        email = kw.get("email")
        if email:
            # identity resolution matches on ``emails``; the primary address belongs there too
            emails = kw.get("emails") or []
            kw["emails"] = [email, *(e for e in emails if e != email)]
        return Person(person_id=person_id, system=system, **kw)

    def _event(self, event_id: str, source: str, values: dict[str, Any]) -> IdentityEvent:
        kw, attributes = _split_attributes(values)
        if kw.get("time") is None:
            raise Reject(f"missing time (column {self._column('time')!r} is empty)")
        action = kw.get("action")
        if not action:
            raise Reject(f"missing action (column {self._column('action')!r} is empty)")
        nested: dict[str, dict[str, Any]] = {"actor": {}, "target": {}, "entitlement": {}}
        for key in [k for k in kw if "." in k]:
            head, _, tail = key.partition(".")
            nested[head][tail] = kw.pop(key)
        ref = kw.get("approval_ref")
        if ref:
            kw["approval_ref"] = find_approval_ref(ref) or ref
        class_uid, activity_id = OCSF_FOR_ACTION[model.Action(action)]
        return IdentityEvent(
            event_id=event_id, source=source, source_type=self.source_type,
            actor=Actor(**nested["actor"]), target=TargetAccount(**nested["target"]),
            entitlement=Entitlement(**nested["entitlement"]), class_uid=class_uid, activity_id=activity_id,
            attributes=attributes, **kw,
        )

    def _column(self, name: str) -> str | None:
        spec = self.mapping.fields.get(name)
        return spec.column if spec else None


def _split_attributes(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Canonical keyword arguments (empty values left to the model's defaults) and the attributes dict."""
    kw: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for name, v in values.items():
        if _empty(v):
            continue
        if name.startswith("attributes."):
            attributes[name[len("attributes."):]] = v
        else:
            kw[name] = v
    return kw, attributes or None


def _empty(v: Any) -> bool:
    return v is None or v == [] or (isinstance(v, str) and not v.strip())


def _lookup(obj: dict, column: str) -> Any:
    """The value of ``column``: exact name, then ignoring case and surrounding spaces, then a dotted path
    into nested JSON objects. A missing column is ``None`` (CSV headers are checked up front)."""
    if column in obj:
        return obj[column]
    key = column.strip().casefold()
    hits = [v for k, v in obj.items() if isinstance(k, str) and k.strip().casefold() == key]
    if len(hits) == 1:
        return hits[0]
    if "." in column:
        cur: Any = obj
        for part in column.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    return None


def _scalar(v: Any, column: str) -> str | None:
    """A JSON or CSV cell as text; objects are refused rather than stringified into a field."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    raise Reject(f"column {column!r} holds a {type(v).__name__}, expected a single value")


def _mapped(spec: FieldSpec, v: str, column: str) -> str | None:
    """``v`` through the field's value map: exact key, then ignoring case; else ``default`` or Reject."""
    table = spec.map or {}
    if v in table:
        return table[v]
    folded = [k for k in table if k.casefold() == v.casefold()]
    if len(folded) == 1:
        return table[folded[0]]
    if spec.default is not None:
        return spec.default
    known = ", ".join(list(table)[:12])
    raise Reject(f"column {column!r} value {v[:_SHOW]!r} is not in the mapping's map (known: {known})")


def make_source(source_type: str = "csv", mapping: str | Path | dict | Mapping | None = None,
                **_options: Any) -> TabularSource:
    """The CSV/JSON source for one mapping (a file, a bundled name such as ``qms_exceptions``, or a dict).

    Raises ``MappingError`` (one line) when the mapping is missing or invalid.
    """
    if mapping is None:
        raise MappingError(f"the {source_type} source needs a mapping file "
                           f"(bundled: {', '.join(bundled_mappings())})")
    m = resolve_mapping(mapping)
    if source_type not in ("csv", "json"):
        raise MappingError(f"source type {source_type!r} is not csv or json")
    if m.format is not None and m.format != source_type:
        raise MappingError(f"{m.origin}: the mapping declares format {m.format} but the source type is {source_type}")
    return TabularSource(source_type, m)
