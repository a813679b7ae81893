"""A transactional outbox for outgoing CloudEvents: written with the change, delivered after, every attempt kept.

``emit`` writes events into the ``outbox`` table — and a pending delivery per configured endpoint whose
type filter takes them — inside the caller's transaction: a finding that is rolled back leaves no event,
and an event is never announced for a change that did not commit. ``deliver_due`` sends what is due over
HTTP (httpx), in the endpoint's content mode, signed with its secret (``cloudevents.sign``), and records
every attempt in ``outbox_attempts``. A failed attempt (no 2xx, or no answer) is retried after an
exponential backoff with jitter; after ``max_attempts`` the delivery is dead-lettered (status ``dead``),
listed by ``accessproof outbox list --status dead`` and can be sent again with ``requeue``.

Delivery is at least once: a receiver that must not act twice dedupes on the event id (``ce-id``).
"""

from __future__ import annotations

import fnmatch
import os
import random
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from accessproof.linking.sql import table_exists
from accessproof.server import db
from accessproof.server.cloudevents import (
    MODES,
    SIGNATURE_HEADER,
    CloudEvent,
    CloudEventError,
    event_type,
    short_type,
    sign,
    to_http,
)
from accessproof.store.base import Store

#: what accessproof emits (short types; the CloudEvent type carries ``cloudevents.TYPE_PREFIX``)
EVENT_TYPES = ("finding.opened", "finding.resolved", "exception.expiring", "checkpoint.published",
               "schedule.missed")
DEFAULT_MAX_ATTEMPTS = 8
USER_AGENT = "accessproof-outbox/1"


class OutboxError(ValueError):
    """A bad endpoint or request; the message is one line."""


# ---------------------------------------------------------------- endpoints

@dataclass
class Endpoint:
    name: str
    url: str
    mode: str = "structured"
    secret: str | None = None
    secret_env: str | None = None
    types: list[str] = field(default_factory=list)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    enabled: bool = True

    def accepts(self, type_: str) -> bool:
        """An empty filter takes every type; else a glob over the short type (``finding.*``)."""
        short = short_type(type_)
        return not self.types or any(fnmatch.fnmatchcase(short, short_type(t)) for t in self.types)

    def describe(self) -> dict[str, Any]:
        """The endpoint without its secret (what lists and the ledger show)."""
        secret = "inline" if self.secret else (f"env:{self.secret_env}" if self.secret_env else None)
        return {"name": self.name, "url": self.url, "mode": self.mode, "secret": secret, "types": self.types,
                "max_attempts": self.max_attempts, "enabled": self.enabled}

    def signing_secret(self) -> str | None:
        return self.secret or (os.environ.get(self.secret_env) if self.secret_env else None)

    def check(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise OutboxError(f"endpoint name {self.name!r}: letters, digits, - and _ only")
        url = httpx.URL(self.url) if self.url else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise OutboxError(f"endpoint {self.name}: {self.url!r} is not an http(s) URL")
        if self.mode not in MODES:
            raise OutboxError(f"endpoint {self.name}: mode must be {' or '.join(MODES)} (got {self.mode!r})")
        if not 1 <= self.max_attempts <= 100:
            raise OutboxError(f"endpoint {self.name}: max_attempts must be 1..100")
        unknown = [t for t in self.types if not any(fnmatch.fnmatchcase(e, short_type(t)) for e in EVENT_TYPES)]
        if unknown:
            raise OutboxError(f"endpoint {self.name}: type filter {', '.join(unknown)} matches none of "
                              f"{', '.join(EVENT_TYPES)}")


def add_endpoint(store: Store, endpoint: Endpoint, *, by: str = "cli", replace: bool = False) -> None:
    """Add (or replace) an endpoint; sealed as an administrative action (the secret is never in it)."""
    endpoint.check()
    db.ensure_tables(store)
    with db.transaction(store):
        exists = store.query("SELECT count(*) FROM outbox_endpoints WHERE name = ?", [endpoint.name])[0][0]
        if exists and not replace:
            raise OutboxError(f"endpoint {endpoint.name} exists (remove it first, or replace it)")
        store.execute("DELETE FROM outbox_endpoints WHERE name = ?", [endpoint.name])
        store.execute("INSERT INTO outbox_endpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [endpoint.name, endpoint.url, endpoint.mode, endpoint.secret, endpoint.secret_env,
                       orjson.dumps(endpoint.types).decode(), endpoint.max_attempts, endpoint.enabled,
                       datetime.now(UTC)])
    db.admin_action(store, "endpoint.replace" if exists else "endpoint.add", by, endpoint.describe())


def remove_endpoint(store: Store, name: str, *, by: str = "cli") -> bool:
    """Remove an endpoint; its pending deliveries are dead-lettered (kept, visible), not dropped."""
    db.ensure_tables(store)
    with db.transaction(store):
        found = store.query("SELECT count(*) FROM outbox_endpoints WHERE name = ?", [name])[0][0]
        store.execute("DELETE FROM outbox_endpoints WHERE name = ?", [name])
        store.execute("UPDATE outbox_deliveries SET status = 'dead', last_error = 'endpoint removed' "
                      "WHERE endpoint = ? AND status = 'pending'", [name])
    if found:
        db.admin_action(store, "endpoint.remove", by, {"name": name})
    return bool(found)


def endpoints(store: Store, *, enabled_only: bool = False) -> list[Endpoint]:
    if not db.ensure_tables(store):
        return []
    rows = store.query("SELECT name, url, mode, secret, secret_env, types_json, max_attempts, enabled "
                       "FROM outbox_endpoints ORDER BY name")
    out = [Endpoint(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5] or "[]"), int(r[6]), bool(r[7]))
           for r in rows]
    return [e for e in out if e.enabled] if enabled_only else out


# ---------------------------------------------------------------- writing events

def source_of(store: Store) -> str:
    """The CloudEvents ``source`` of this store: its ledger's origin (the log's name), else its folder."""
    row = store.query("SELECT value FROM ledger_meta WHERE key = 'origin'") if table_exists(store, "ledger_meta") else []
    origin = row[0][0] if row else store.dir.name
    return f"urn:accessproof:{origin}"


def new_event(store: Store, name: str, subject: str | None, data: dict[str, Any], *, id: str | None = None,
              when: datetime | None = None) -> CloudEvent:
    """An event of short type ``name`` (``finding.opened``) from this store."""
    kw = {"id": id} if id else {}
    return CloudEvent(type=event_type(name), source=source_of(store), subject=subject, data=data,
                      time=when or datetime.now(UTC), **kw)


def emit(store: Store, events: Iterable[CloudEvent], *, now: datetime | None = None) -> int:
    """Write events and their pending deliveries in the caller's transaction (or one of their own).

    An event whose id is already in the outbox is skipped, so re-emitting a deterministic id (a
    checkpoint, an exception's expiry warning) is harmless. Returns how many were written."""
    events = list(events)
    if not events:
        return 0
    now = now or datetime.now(UTC)
    db.ensure_tables(store)
    targets = endpoints(store, enabled_only=True)
    written = 0
    with db.transaction(store):
        for ev in events:
            if store.query("SELECT count(*) FROM outbox WHERE event_id = ?", [ev.id])[0][0]:
                continue
            store.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [ev.id, ev.type, ev.source, ev.subject, ev.time,
                           orjson.dumps(ev.data, default=str).decode(), now])
            for ep in targets:
                if ep.accepts(ev.type):
                    store.execute("INSERT INTO outbox_deliveries VALUES (?, ?, 'pending', 0, ?, NULL, NULL, NULL, "
                                  "NULL)", [ev.id, ep.name, now])
            written += 1
    return written


# ---------------------------------------------------------------- delivering

@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1 after n failures: ``min(cap, base * factor**(n-1))``, scaled by a random
    factor in [1 - jitter, 1] so that endpoints coming back are not hit by every sender at once."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        full = min(self.cap, self.base * self.factor ** max(0, failures - 1))
        return full * (1 - self.jitter * (rng or random).random())


@dataclass
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"attempted": self.attempted, "delivered": self.delivered, "retrying": self.retrying,
                "dead": self.dead}


def deliver_due(store: Store, *, now: datetime | None = None, client: httpx.Client | None = None,
                backoff: Backoff = Backoff(), limit: int = 200, timeout: float = 10.0,
                lock: AbstractContextManager | None = None) -> DeliveryReport:
    """Send every pending delivery whose time has come (up to ``limit``) and record each attempt.

    ``lock`` guards the store (the server's store lock): it is held while reading and recording, never
    while waiting on the network."""
    guard = lock or nullcontext()
    now = now or datetime.now(UTC)
    with guard:
        db.ensure_tables(store)
        due = store.query_dicts("""
          SELECT d.event_id, d.endpoint, d.attempts, o.type, o.source, o.subject, o.time, o.data_json
          FROM outbox_deliveries d JOIN outbox o ON o.event_id = d.event_id
          WHERE d.status = 'pending' AND d.next_attempt <= ?
          ORDER BY d.next_attempt, o.created, d.event_id LIMIT ?""", [now, limit])
        eps = {e.name: e for e in endpoints(store)}
    report = DeliveryReport()
    if not due:
        return report
    own = client is None
    client = client or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
    try:
        for row in due:
            ep = eps.get(row["endpoint"])
            attempt = int(row["attempts"]) + 1
            t0 = time.perf_counter()
            code, error = _send(client, ep, row)
            seconds = time.perf_counter() - t0
            at = datetime.now(UTC)
            ok = code is not None and 200 <= code < 300
            if ok:
                outcome = "delivered"
            elif ep is None or attempt >= ep.max_attempts:
                outcome = "dead"
            else:
                outcome = "retry"
            nxt = at + timedelta(seconds=backoff.delay(attempt)) if outcome == "retry" else None
            with guard:
                _record(store, row, attempt, at, code, error, seconds, outcome, nxt)
            report.attempted += 1
            if outcome == "delivered":
                report.delivered += 1
            elif outcome == "dead":
                report.dead += 1
            else:
                report.retrying += 1
    finally:
        if own:
            client.close()
    return report


def _send(client: httpx.Client, ep: Endpoint | None, row: dict[str, Any]) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one attempt; never raises."""
    if ep is None:
        return None, "endpoint no longer configured"
    try:
        event = CloudEvent(type=row["type"], source=row["source"], id=row["event_id"], subject=row["subject"],
                           time=row["time"], data=orjson.loads(row["data_json"]))
        headers, body = to_http(event, ep.mode)
    except (CloudEventError, orjson.JSONDecodeError) as e:
        return None, f"cannot render event: {e}"
    secret = ep.signing_secret()
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        resp = client.post(ep.url, content=body, headers=headers)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {str(e)[:200]}"
    return resp.status_code, None if resp.is_success else f"HTTP {resp.status_code}: {resp.text[:200]}"


def _record(store: Store, row: dict[str, Any], attempt: int, at: datetime, code: int | None, error: str | None,
            seconds: float, outcome: str, next_attempt: datetime | None) -> None:
    status = {"delivered": "delivered", "dead": "dead"}.get(outcome, "pending")
    with db.transaction(store):
        store.execute("INSERT INTO outbox_attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      [row["event_id"], row["endpoint"], attempt, at, code, error, round(seconds, 4), outcome])
        store.execute("""
          UPDATE outbox_deliveries SET status = ?, attempts = ?, last_attempt = ?, last_status = ?, last_error = ?,
                 next_attempt = coalesce(?, next_attempt), delivered = ?
          WHERE event_id = ? AND endpoint = ?""",
                      [status, attempt, at, code, error, next_attempt, at if outcome == "delivered" else None,
                       row["event_id"], row["endpoint"]])


def requeue(store: Store, event_id: str | None = None, endpoint: str | None = None) -> int:
    """Give dead-lettered deliveries (one event's, one endpoint's, or all) a fresh set of attempts."""
    db.ensure_tables(store)
    where, params = ["status = 'dead'"], []
    for col, val in (("event_id", event_id), ("endpoint", endpoint)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    cond = " AND ".join(where)
    with db.transaction(store):
        n = store.query(f"SELECT count(*) FROM outbox_deliveries WHERE {cond}", params)[0][0]
        store.execute(f"UPDATE outbox_deliveries SET status = 'pending', attempts = 0, next_attempt = ? WHERE {cond}",
                      [datetime.now(UTC), *params])
    return int(n)


# ---------------------------------------------------------------- reading

def list_events(store: Store, *, status: str | None = None, type_: str | None = None, limit: int | None = 100
                ) -> list[dict[str, Any]]:
    """Events newest first, one row per (event, endpoint) — an event no endpoint took has one row with
    status ``recorded``. ``status``: pending | delivered | dead | recorded."""
    if not db.ensure_tables(store):
        return []
    where, params = [], []
    if status:
        where.append("coalesce(d.status, 'recorded') = ?")
        params.append(status)
    if type_:
        where.append("o.type = ?")
        params.append(event_type(type_))
    sql = ("SELECT o.event_id, o.type, o.subject, o.time, o.created, d.endpoint, coalesce(d.status, 'recorded') "
           "AS status, d.attempts, d.last_status, d.last_error, d.next_attempt, d.delivered, o.data_json "
           "FROM outbox o LEFT JOIN outbox_deliveries d ON d.event_id = o.event_id")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY o.created DESC, o.event_id, d.endpoint"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.query_dicts(sql, params)
    for r in rows:
        r["data"] = orjson.loads(r.pop("data_json") or "null")
    return rows


def attempts(store: Store, event_id: str) -> list[dict[str, Any]]:
    if not db.ensure_tables(store):
        return []
    return store.query_dicts("SELECT * FROM outbox_attempts WHERE event_id = ? ORDER BY endpoint, attempt",
                             [event_id])


def counts(store: Store) -> dict[str, int]:
    """Deliveries by status (and events no endpoint took, as ``recorded``)."""
    if not db.ensure_tables(store):
        return {}
    out = dict(store.query("SELECT status, count(*) FROM outbox_deliveries GROUP BY status"))
    out["recorded"] = store.query("SELECT count(*) FROM outbox o WHERE NOT EXISTS "
                                  "(SELECT 1 FROM outbox_deliveries d WHERE d.event_id = o.event_id)")[0][0]
    return {k: int(v) for k, v in out.items()}
