"""Retention classes, legal holds and purge.

Holds and releases are ledger records themselves (their payloads in ``ledger_payloads``), so the set of
active holds can be rebuilt from the tree and cannot be edited away quietly. A purge removes only payload
bytes that are past retention and not held, writes a purge manifest into the ledger (the verifier uses it
to tell a purged payload from a deleted one) and never touches entries, so the tree keeps verifying.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import rfc8785
import yaml

from accessproof.ledger.entry import Entry, decode_entry, iso_utc, parse_iso_utc, payload_matches
from accessproof.ledger.ledger import Ledger, LedgerError
from accessproof.ledger.merkle import leaf_hash
from accessproof.ledger.payloads import PayloadStore, RecordRef

DEFAULT_POLICY = Path(__file__).with_name("retention.yaml")


@dataclass(frozen=True)
class RetentionClass:
    name: str
    years: int = 0
    days: int = 0
    permanent: bool = False
    description: str = ""

    def expires(self, record_time: datetime) -> datetime | None:
        """When a payload of this class may go (None: never)."""
        if self.permanent:
            return None
        return _add_years(record_time, self.years) + timedelta(days=self.days)

    def cutoff(self, now: datetime) -> datetime | None:
        """Record times strictly before this are expired at ``now`` (a day of slack; re-checked per entry)."""
        if self.permanent:
            return None
        return _add_years(now, -self.years) - timedelta(days=self.days - 1)


def _add_years(t: datetime, years: int) -> datetime:
    try:
        return t.replace(year=t.year + years)
    except ValueError:  # 29 February in a year without one
        return t.replace(year=t.year + years, day=28)


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in (value if isinstance(value, list) else [value])]


@dataclass(frozen=True)
class Rule:
    retention: str
    types: list[str] | None = None
    kinds: list[str] | None = None
    sources: list[str] | None = None

    def matches(self, record_type: str, source: str, kind: str | None) -> bool:
        if self.types is not None and record_type not in self.types:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.sources is None or any(fnmatch.fnmatchcase(source, p) for p in self.sources)


@dataclass
class RetentionPolicy:
    classes: dict[str, RetentionClass]
    rules: list[Rule]
    default: str

    def classify(self, record_type: str, source: str, kind: str | None = None) -> str:
        for rule in self.rules:
            if rule.matches(record_type, source, kind):
                return rule.retention
        return self.default

    def get(self, name: str) -> RetentionClass:
        try:
            return self.classes[name]
        except KeyError:
            raise LedgerError(f"unknown retention class {name!r}") from None


def load_policy(path: str | os.PathLike[str] | None = None) -> RetentionPolicy:
    """Read a retention YAML (the packaged default unless a path is given); errors name the problem."""
    source = Path(path) if path else DEFAULT_POLICY
    try:
        doc = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LedgerError(f"cannot read retention policy {source}: {exc}") from None
    try:
        classes = {
            name: RetentionClass(
                name=name,
                years=int(spec.get("years", 0)),
                days=int(spec.get("days", 0)),
                permanent=bool(spec.get("permanent", False)),
                description=str(spec.get("description", "")),
            )
            for name, spec in (doc.get("classes") or {}).items()
        }
        rules = [
            Rule(str(r["class"]), _as_list(r.get("type")), _as_list(r.get("kind")), _as_list(r.get("source")))
            for r in doc.get("rules") or []
        ]
        default = str(doc["default"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"retention policy {source} is malformed: {exc}") from None
    for name in [default, *(r.retention for r in rules)]:
        if name not in classes:
            raise LedgerError(f"retention policy {source} names undefined class {name!r}")
    for c in classes.values():
        if not c.permanent and c.years <= 0 and c.days <= 0:
            raise LedgerError(f"retention class {c.name!r} needs years, days or permanent: true")
    return RetentionPolicy(classes, rules, default)


# -- legal holds ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    hold_id: str
    reason: str
    by: str
    set_at: str
    subject: str | None = None
    source: str | None = None
    record_type: str | None = None
    time_from: str | None = None
    time_to: str | None = None
    index: int = -1
    released: dict[str, str] | None = None

    def covers(self, e: Entry) -> bool:
        """True if the hold applies to the record ``e`` seals (every criterion it names must match)."""
        if self.subject is not None and e.subject != self.subject:
            return False
        if self.source is not None and not fnmatch.fnmatchcase(e.source, self.source):
            return False
        if self.record_type is not None and e.type != self.record_type:
            return False
        t = parse_iso_utc(e.record_time)
        if self.time_from is not None and t < parse_iso_utc(self.time_from):
            return False
        return not (self.time_to is not None and t >= parse_iso_utc(self.time_to))

    def describe(self) -> str:
        crit = [
            f"{k}={v}"
            for k, v in (
                ("subject", self.subject),
                ("source", self.source),
                ("type", self.record_type),
                ("from", self.time_from),
                ("to", self.time_to),
            )
            if v is not None
        ]
        return f"{self.hold_id}: {' '.join(crit)} — {self.reason} (by {self.by}, {self.set_at})"


def _canonical(obj: dict[str, Any]) -> bytes:
    return rfc8785.dumps(obj)


def _own_records(ledger: Ledger, record_types: list[str]) -> list[tuple[int, Entry, dict[str, Any]]]:
    """Ledger-own records with their payloads, each checked against the sealed payload hash."""
    rows = ledger.storage.find_entries(record_types=record_types)
    out = []
    entries = [(int(i), decode_entry(bytes(d))) for i, d in rows]
    by_type: dict[str, list[str]] = {}
    for _, e in entries:
        by_type.setdefault(e.type, []).append(e.id)
    payloads = {t: ledger.storage.get_payloads(t, ids) for t, ids in by_type.items()}
    for idx, e in entries:
        data = payloads[e.type].get(e.id)
        if data is None or not payload_matches(e, data):
            raise LedgerError(
                f"{e.type} record {e.id!r} (index {idx}) does not match its sealed hash; run verify"
            )
        out.append((idx, e, orjson.loads(data)))
    return out


def list_holds(ledger: Ledger, *, include_released: bool = False) -> list[Hold]:
    holds: dict[str, Hold] = {}
    for idx, e, body in _own_records(ledger, ["hold", "release"]):
        if e.type == "hold":
            c = body.get("criteria", {})
            holds[body["hold_id"]] = Hold(
                body["hold_id"],
                body["reason"],
                body["by"],
                body["set"],
                c.get("subject"),
                c.get("source"),
                c.get("record_type"),
                c.get("from"),
                c.get("to"),
                idx,
            )
        elif body["hold_id"] in holds:
            h = holds[body["hold_id"]]
            holds[h.hold_id] = Hold(
                **{**h.__dict__, "released": {"by": body["by"], "reason": body["reason"], "at": body["set"]}}
            )
    return [h for h in holds.values() if include_released or h.released is None]


def add_hold(
    ledger: Ledger,
    *,
    reason: str,
    by: str,
    subject: str | None = None,
    source: str | None = None,
    record_type: str | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    now: datetime | None = None,
) -> Hold:
    """Seal a legal hold; it protects every matching payload from purge until released."""
    if not reason.strip() or not by.strip():
        raise LedgerError("a hold needs a reason and who sets it")
    criteria = {
        k: v
        for k, v in (
            ("subject", subject),
            ("source", source),
            ("record_type", record_type),
            ("from", iso_utc(time_from) if time_from else None),
            ("to", iso_utc(time_to) if time_to else None),
        )
        if v is not None
    }
    if not criteria:
        raise LedgerError("a hold needs at least one of subject, source, record type or time range")
    now = now or datetime.now(UTC)
    hold_id = f"hold-{os.urandom(5).hex()}"
    body = {"hold_id": hold_id, "reason": reason, "by": by, "set": iso_utc(now), "criteria": criteria}
    idx = ledger.append_own("hold", hold_id, _canonical(body), time=now, subject=subject)
    return Hold(
        hold_id,
        reason,
        by,
        body["set"],
        subject,
        source,
        record_type,
        criteria.get("from"),
        criteria.get("to"),
        idx,
    )


def release_hold(ledger: Ledger, hold_id: str, *, reason: str, by: str, now: datetime | None = None) -> int:
    """Seal the release of an active hold; returns the ledger index of the release."""
    if not any(h.hold_id == hold_id for h in list_holds(ledger)):
        raise LedgerError(f"no active hold {hold_id!r}")
    if not reason.strip() or not by.strip():
        raise LedgerError("a release needs a reason and who releases it")
    now = now or datetime.now(UTC)
    body = {"hold_id": hold_id, "reason": reason, "by": by, "set": iso_utc(now)}
    return ledger.append_own("release", f"release-{hold_id}", _canonical(body), time=now)


# -- purge ------------------------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    dry_run: bool
    now: str
    purge: list[RecordRef] = field(default_factory=list)
    held: list[RecordRef] = field(default_factory=list)
    payloads_removed: int = 0
    manifest_index: int | None = None


def purged_refs(ledger: Ledger) -> dict[int, RecordRef]:
    """Every record a sealed purge manifest says was purged, by ledger index."""
    out: dict[int, RecordRef] = {}
    for _, _, body in _own_records(ledger, ["purge"]):
        for idx, rtype, rid in body["records"]:
            out[int(idx)] = RecordRef(int(idx), rtype, rid)
    return out


def purge(
    ledger: Ledger,
    payloads: PayloadStore,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    by: str = "accessproof",
) -> PurgeReport:
    """Delete expired, unheld payloads and seal a manifest of what went. Run ``compact`` afterwards."""
    if ledger.policy is None:
        raise LedgerError("no retention policy loaded")
    now = now or datetime.now(UTC)
    report = PurgeReport(dry_run=dry_run, now=iso_utc(now))
    holds = list_holds(ledger)
    done = purged_refs(ledger)
    reader = ledger.reader()
    for cls in ledger.policy.classes.values():
        cutoff = cls.cutoff(now)
        if cutoff is None:
            continue
        for idx, data in ledger.storage.expired_candidates(cls.name, cutoff):
            idx, data = int(idx), bytes(data)
            if idx in done or idx >= reader.size:
                continue
            e = decode_entry(data)
            if reader.leaf(idx) != leaf_hash(data):
                raise LedgerError(f"entry {idx} does not match the tree; run verify before purging")
            if e.retention != cls.name:
                continue
            expiry = ledger.policy.get(e.retention).expires(parse_iso_utc(e.record_time))
            if expiry is None or expiry > now:
                continue
            ref = RecordRef(idx, e.type, e.id)
            (report.held if any(h.covers(e) for h in holds) else report.purge).append(ref)
    if report.purge:  # only payloads the store really holds: the manifest lists bytes that went
        present = payloads.get(report.purge)
        report.purge = [r for r in report.purge if present.get(r.idx) is not None]
    if dry_run or not report.purge:
        return report
    purge_id = f"purge-{iso_utc(now)}-{os.urandom(3).hex()}"
    manifest = {
        "purge_id": purge_id,
        "by": by,
        "time": iso_utc(now),
        "records": [[r.idx, r.record_type, r.record_id] for r in report.purge],
    }
    with ledger.storage.transaction():
        report.payloads_removed = payloads.purge(report.purge)
        report.manifest_index = ledger.append_own("purge", purge_id, _canonical(manifest), time=now)
    return report
