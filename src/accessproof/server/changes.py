"""What accessproof announces: findings that opened or closed, exceptions about to expire, new checkpoints.

Each function turns the store's state into ``CloudEvent``s for ``outbox.emit``; none sends anything.

* ``finding.opened`` — a finding became open: new, reopened after being resolved, or no longer covered by
  an exception; ``finding.resolved`` — an open finding stopped alarming (``data.state`` resolved) or an
  approved exception now covers it (``data.state`` excepted). Ids are derived from (change, finding,
  run), so announcing the same run twice writes one event.
* ``exception.expiring`` — an approved exception expires within N days of the data's "now" (the latest
  event, as controls use it); one event per exception and expiry date.
* ``checkpoint.published`` — a signed checkpoint newer than the last one announced (on the first call,
  only the latest), with the signed note so a receiver can check it with the verifier key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from accessproof.linking.sql import table_exists
from accessproof.server.cloudevents import CloudEvent, event_type
from accessproof.server.outbox import new_event
from accessproof.store.base import Store

FINDING_COLUMNS = ("finding_id", "control_id", "resource", "state", "severity", "person_id", "system",
                   "account_id", "entitlement", "reason", "evidence_ids_json", "first_seen", "last_seen",
                   "last_run_id")


@dataclass(frozen=True)
class FindingChange:
    """A finding whose state changed in a run: ``change`` is opened or resolved."""

    finding_id: str
    control_id: str
    resource: str
    change: str
    before: str | None
    after: str
    severity: str | None
    person_id: str | None
    system: str | None
    account_id: str | None
    entitlement: str | None
    reason: str | None
    evidence_ids: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    run_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _where(column: str, values: Iterable[str] | None) -> tuple[str, list[Any]]:
    if values is None:
        return "", []
    vals = sorted(set(values)) or [""]
    return f" WHERE {column} IN ({', '.join('?' * len(vals))})", vals


def finding_states(store: Store, control_ids: Iterable[str] | None = None) -> dict[str, str]:
    """finding id → state: every finding, or those of the controls named."""
    if not table_exists(store, "findings"):
        return {}
    where, params = _where("control_id", control_ids)
    return dict(store.query(f"SELECT finding_id, state FROM findings{where}", params))


def classify(before: str | None, after: str) -> str | None:
    """opened, resolved, or None (no announcement) for a state transition."""
    if after == "open" and before != "open":
        return "opened"
    if after in ("resolved", "excepted") and before == "open":
        return "resolved"
    return None


def finding_changes(store: Store, before: dict[str, str], run_ids: Iterable[str] | None = None
                    ) -> list[FindingChange]:
    """Findings whose state differs from ``before`` (a ``finding_states`` snapshot) in a way worth
    announcing: among those the runs named touched last (every finding a run opens, refreshes or
    resolves carries its run id), or all."""
    if not table_exists(store, "findings"):
        return []
    where, params = _where("last_run_id", run_ids)
    out = []
    for r in store.query_dicts(f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings{where}", params):
        change = classify(before.get(r["finding_id"]), r["state"])
        if change is None:
            continue
        out.append(FindingChange(
            finding_id=r["finding_id"], control_id=r["control_id"], resource=r["resource"], change=change,
            before=before.get(r["finding_id"]), after=r["state"], severity=r["severity"],
            person_id=r["person_id"], system=r["system"], account_id=r["account_id"],
            entitlement=r["entitlement"], reason=r["reason"],
            evidence_ids=orjson.loads(r["evidence_ids_json"] or "[]"), first_seen=r["first_seen"],
            last_seen=r["last_seen"], run_id=r["last_run_id"]))
    return sorted(out, key=lambda c: (c.control_id, c.resource))


def finding_events(store: Store, changes: Iterable[FindingChange], *, trigger: str) -> list[CloudEvent]:
    """One ``finding.opened`` / ``finding.resolved`` event per change; ``trigger`` says what ran
    (``assessment``, ``schedule:<name>``, ``retest:<reason>``)."""
    events = []
    for c in changes:
        name = f"finding.{c.change}"
        data = {**c.as_dict(), "state": c.after, "previous_state": c.before, "trigger": trigger}
        for k in ("change", "after", "before"):
            data.pop(k)
        events.append(new_event(store, name, c.finding_id, data, id=_id(name, c.finding_id, c.run_id)))
    return events


def expiring_exception_events(store: Store, days: int, as_of: datetime | None = None) -> list[CloudEvent]:
    """``exception.expiring`` for approved exceptions expiring in (as_of, as_of + days]."""
    if days <= 0 or not table_exists(store, "ctl_exceptions"):
        return []
    if as_of is None:
        as_of = store.query("SELECT max(time) FROM events")[0][0] or datetime.now(UTC)
    rows = store.query_dicts("""
      SELECT record_id, system, subject, person_id, scope, valid_from, expires, owner, compensating_control
      FROM ctl_exceptions
      WHERE approval_state = 'approved' AND expires IS NOT NULL
        AND expires > CAST(? AS TIMESTAMPTZ) AND expires <= CAST(? AS TIMESTAMPTZ)
      ORDER BY expires, record_id""", [as_of, as_of + timedelta(days=days)])
    events = []
    for r in rows:
        left = (r["expires"] - as_of).total_seconds() / 86400
        data = {"exception_id": r["record_id"], **{k: r[k] for k in r if k != "record_id"},
                "days_left": round(left, 1), "as_of": as_of}
        events.append(new_event(store, "exception.expiring", r["record_id"], data,
                                id=_id("exception.expiring", r["system"], r["record_id"], r["expires"])))
    return events


def checkpoint_events(store: Store) -> list[CloudEvent]:
    """``checkpoint.published`` for signed checkpoints newer than the last announced one."""
    if not table_exists(store, "ledger_checkpoints"):
        return []
    last = None
    if table_exists(store, "outbox"):
        last = store.query("SELECT max(CAST(subject AS BIGINT)) FROM outbox WHERE type = ?",
                           [event_type("checkpoint.published")])[0][0]
    if last is None:
        rows = store.query("SELECT size, root, note, created FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
    else:
        rows = store.query("SELECT size, root, note, created FROM ledger_checkpoints WHERE size > ? ORDER BY size",
                           [last])
    events = []
    for size, root, note, created in rows:
        data = {"size": int(size), "root_hash": base64.b64encode(bytes(root)).decode(), "note": note,
                "created": created, "origin": note.split("\n", 1)[0]}
        events.append(new_event(store, "checkpoint.published", str(int(size)), data,
                                id=_id("checkpoint.published", size, bytes(root).hex()), when=created))
    return events
