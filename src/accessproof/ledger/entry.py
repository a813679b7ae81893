"""The sealed entry: a small canonical JSON record (RFC 8785) that commits to one stored record.

The entry carries the payload's salted hash, never the payload: purging a payload later leaves the leaf,
and so the tree, intact, and a short payload cannot be guessed from its hash without the salt. Fields are
flat strings, so the canonical form is just sorted keys and JSON string escaping; ``Entry`` declares its
fields in sorted order and msgspec writes them out directly (tests check equality with ``rfc8785``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

MAX_ENTRY_BYTES = 64 * 1024
SALT_BYTES = 16
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class EntryError(ValueError):
    """An entry that must not be sealed (too large, malformed, naive time…)."""


class Entry(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """Fields in RFC 8785 key order. Optional: ``subject`` (who the record is about, for legal holds) and
    ``time`` (absent when the source gave none; retention then runs from ``sealed``)."""

    id: str
    payload_sha256: str
    retention: str
    salt: str
    sealed: str
    source: str
    subject: str | None = None
    time: str | None = None
    type: str

    @property
    def record_time(self) -> str:
        """The time retention and holds go by: the record's own, else when it was sealed."""
        return self.time or self.sealed


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Entry).decode


def iso_utc(value: datetime) -> str:
    """One fixed ISO 8601 UTC spelling, so the same instant always seals to the same bytes."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise EntryError(f"time {value!r} has no timezone")
    u = value.astimezone(UTC)
    base = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    return f"{base}.{u.microsecond:06d}Z" if u.microsecond else base + "Z"


def parse_iso_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def payload_digest(salt: bytes, payload: bytes) -> str:
    return hashlib.sha256(salt + payload).hexdigest()


def encode_entry(entry: Entry) -> bytes:
    data = _encode(entry)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry for {entry.type} {entry.id!r} is {len(data)} bytes (max {MAX_ENTRY_BYTES})")
    return data


def decode_entry(data: bytes, *, canonical: bool = True) -> Entry:
    """Parse and check an entry; it must be exactly its own canonical encoding (unless told not to care)."""
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is {len(data)} bytes (max {MAX_ENTRY_BYTES})")
    try:
        entry = _decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise EntryError(f"not a ledger entry: {exc}") from None
    if canonical and _encode(entry) != data:
        raise EntryError("entry is not in canonical form")
    return entry


def _check(record_type: str, record_id: str, source: str, retention: str) -> None:
    if not _TYPE_RE.match(record_type):
        raise EntryError(f"bad record type {record_type!r}")
    if not record_id:
        raise EntryError("empty record id")
    if not source or not retention:
        raise EntryError(f"record {record_id!r} needs a source and a retention class")


def make_entry(
    record_type: str,
    record_id: str,
    source: str,
    time: datetime | None,
    payload: bytes,
    retention: str,
    *,
    subject: str | None = None,
    sealed: datetime | None = None,
    salt: bytes | None = None,
) -> bytes:
    """The canonical entry bytes for one record (a fresh random salt unless one is given)."""
    _check(record_type, record_id, source, retention)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise EntryError(f"salt must be {SALT_BYTES} bytes")
    entry = Entry(
        id=record_id,
        payload_sha256=payload_digest(salt, payload),
        retention=retention,
        salt=salt.hex(),
        sealed=iso_utc(sealed or datetime.now(UTC)),
        source=source,
        subject=subject,
        time=None if time is None else iso_utc(time),
        type=record_type,
    )
    return encode_entry(entry)


def iso_many(times: Sequence[datetime | str | None]) -> list[str | None]:
    """``iso_utc`` over a batch (records of one batch often share timestamps); texts and None pass."""
    cache: dict[datetime, str] = {}
    out: list[str | None] = []
    for t in times:
        if t is None or isinstance(t, str):
            out.append(t)
            continue
        text = cache.get(t)
        if text is None:
            text = cache[t] = iso_utc(t)
        out.append(text)
    return out


def make_entries(
    record_types: Sequence[str],
    record_ids: Sequence[str],
    sources: Sequence[str],
    times: Sequence[datetime | str | None],
    payloads: Sequence[bytes],
    retentions: Sequence[str],
    subjects: Sequence[str | None] | None = None,
    *,
    sealed: datetime | None = None,
) -> list[bytes]:
    """Batch path: one sealed time and one urandom call for the whole batch.

    ``times`` are datetimes, texts already made by ``iso_many``, or None where unknown.
    """
    n = len(record_ids)
    if not (len(record_types) == len(sources) == len(times) == len(payloads) == len(retentions) == n):
        raise EntryError("make_entries: columns differ in length")
    subjects = subjects if subjects is not None else [None] * n
    texts = iso_many(times)
    sealed_text = iso_utc(sealed or datetime.now(UTC))
    salts = os.urandom(SALT_BYTES * n)
    sha = hashlib.sha256
    checked: set[tuple[str, str, str]] = set()
    out: list[bytes] = []
    for i in range(n):
        key = (record_types[i], sources[i], retentions[i])
        if key not in checked:
            _check(record_types[i], "-", sources[i], retentions[i])
            checked.add(key)
        if not record_ids[i]:
            raise EntryError("empty record id")
        salt = salts[i * SALT_BYTES : (i + 1) * SALT_BYTES]
        data = _encode(
            Entry(
                id=record_ids[i],
                payload_sha256=sha(salt + payloads[i]).hexdigest(),
                retention=retentions[i],
                salt=salt.hex(),
                sealed=sealed_text,
                source=sources[i],
                subject=subjects[i],
                time=texts[i],
                type=record_types[i],
            )
        )
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryError(f"entry for {record_ids[i]!r} is {len(data)} bytes (max {MAX_ENTRY_BYTES})")
        out.append(data)
    return out


def payload_matches(entry: Entry, payload: bytes) -> bool:
    try:
        salt = bytes.fromhex(entry.salt)
    except ValueError:
        return False
    return payload_digest(salt, payload) == entry.payload_sha256
