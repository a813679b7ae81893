"""CloudEvents 1.0 out of accessproof: the JSON event format, both HTTP content modes, and the signature.

An event is rendered for HTTP in one of the two modes of the CloudEvents HTTP protocol binding:

* ``binary`` — the event's data (JSON) is the body, ``Content-Type`` carries ``datacontenttype`` and every
  other attribute is its own ``ce-<name>`` header, percent-encoded as the binding requires (space, ``"``,
  ``%`` and anything outside printable ASCII);
* ``structured`` — the whole event (attributes and ``data``) is one JSON object in the body, with
  ``Content-Type: application/cloudevents+json; charset=utf-8``.

Every delivery is signed so that a receiver can tell it came from this accessproof and was not replayed:
``Accessproof-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` — the same shape as
Stripe's and similar webhook signatures. ``verify_signature`` is what a receiver runs (with a tolerance for
clock skew); ``parse_http`` turns a received request back into an event, in either mode.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

SPECVERSION = "1.0"
#: the reverse-DNS prefix of every event type this package emits (``io.accessproof.finding.opened``)
TYPE_PREFIX = "io.accessproof."
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
SIGNATURE_HEADER = "Accessproof-Signature"
MODES = ("binary", "structured")
REQUIRED = ("specversion", "id", "source", "type")
_OPTIONAL = ("datacontenttype", "dataschema", "subject", "time", "data", "data_base64")
_EXTENSION_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class CloudEventError(ValueError):
    """An event that cannot be built or a request that is not a CloudEvent; the message is one line."""


@dataclass(frozen=True)
class CloudEvent:
    """One CloudEvents 1.0 event whose data is JSON."""

    type: str
    source: str
    data: Any
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str = JSON_CONTENT_TYPE
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("type", "source", "id"):
            if not getattr(self, name):
                raise CloudEventError(f"CloudEvent attribute {name} must be a non-empty string")
        for name in self.extensions:
            if not name or set(name) - _EXTENSION_NAME or name in REQUIRED or name in _OPTIONAL:
                raise CloudEventError(f"extension attribute name {name!r}: lower-case letters and digits only, "
                                      "and not a core attribute")

    def attributes(self) -> dict[str, str]:
        """Context attributes in their canonical string form (what the binary mode puts in headers)."""
        attrs = {"specversion": SPECVERSION, "id": self.id, "source": self.source, "type": self.type}
        if self.subject is not None:
            attrs["subject"] = self.subject
        if self.time is not None:
            attrs["time"] = rfc3339(self.time)
        attrs["datacontenttype"] = self.datacontenttype
        attrs.update({k: str(v) for k, v in self.extensions.items()})
        return attrs

    def to_json(self) -> bytes:
        """The JSON event format: attributes and ``data`` in one object."""
        return orjson.dumps({**self.attributes(), "data": self.data}, default=_json_default)


def rfc3339(t: datetime) -> str:
    """A timestamp as RFC 3339 in UTC (``2026-06-30T07:43:32.542000Z``)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    return str(value)


def event_type(name: str) -> str:
    """``finding.opened`` → ``io.accessproof.finding.opened`` (a full type is returned unchanged)."""
    return name if name.startswith(TYPE_PREFIX) else TYPE_PREFIX + name


def short_type(type_: str) -> str:
    """``io.accessproof.finding.opened`` → ``finding.opened``."""
    return type_.removeprefix(TYPE_PREFIX)


# ---------------------------------------------------------------- HTTP binding

def percent_encode(value: str) -> str:
    """A header value as the HTTP binding (3.1.3.2) wants it: UTF-8 bytes of space, ``"``, ``%`` and
    anything outside printable ASCII (U+0021–U+007E) as upper-case ``%XY``."""
    out = []
    for ch in value:
        if "!" <= ch <= "~" and ch not in '"%':
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def to_http(event: CloudEvent, mode: str) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the event in ``mode`` (binary or structured)."""
    if mode == "structured":
        return {"Content-Type": STRUCTURED_CONTENT_TYPE}, event.to_json()
    if mode != "binary":
        raise CloudEventError(f"unknown content mode {mode!r} (choose {' or '.join(MODES)})")
    attrs = event.attributes()
    headers = {"Content-Type": attrs.pop("datacontenttype")}
    headers.update({f"ce-{k}": percent_encode(v) for k, v in attrs.items()})
    return headers, orjson.dumps(event.data, default=_json_default)


def parse_http(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A received request as an event dict (attributes and decoded ``data``), in either content mode.

    Raises ``CloudEventError`` when a required attribute is missing or the body is not the JSON it claims."""
    lower = {k.lower(): v for k, v in headers.items()}
    ctype = lower.get("content-type", "")
    try:
        if ctype.startswith("application/cloudevents"):
            event = orjson.loads(body)
            if not isinstance(event, dict):
                raise CloudEventError("structured body is not a JSON object")
        else:
            event = {k[3:]: unquote(v, errors="strict") for k, v in lower.items() if k.startswith("ce-")}
            if ctype:
                event["datacontenttype"] = ctype
            event["data"] = orjson.loads(body) if body and "json" in ctype else body
    except (orjson.JSONDecodeError, UnicodeDecodeError) as e:
        raise CloudEventError(f"body is not valid: {str(e).splitlines()[0]}") from None
    missing = [a for a in REQUIRED if not event.get(a)]
    if missing:
        raise CloudEventError(f"not a CloudEvent: missing {', '.join(missing)}")
    if event["specversion"] != SPECVERSION:
        raise CloudEventError(f"unsupported specversion {event['specversion']!r}")
    return event


# ---------------------------------------------------------------- signature

def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Accessproof-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_signature(header: str | None) -> tuple[int, list[str]] | None:
    """(timestamp, v1 MACs) of an ``Accessproof-Signature`` value, or None when absent or malformed."""
    if not header:
        return None
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        k, eq, v = item.strip().partition("=")
        if eq:
            parts.setdefault(k, []).append(v.strip())
    try:
        return int(parts["t"][0]), parts.get("v1", [])
    except (KeyError, ValueError):
        return None


def verify_signature(secret: str, header: str | None, body: bytes, *, tolerance: int = 300,
                     now: float | None = None) -> bool:
    """What a receiver checks: the header parses, one ``v1`` MAC matches (constant-time compare) and its
    timestamp is within ``tolerance`` seconds of ``now`` (a replayed old delivery fails)."""
    parsed = parse_signature(header)
    if parsed is None:
        return False
    t, macs = parsed
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for v in macs)
