"""Retention classes, legal holds and purge.

Holds and releases are ledger records themselves (their payloads in ``ledger_payloads``), so the set of
active holds can be rebuilt from the tree and cannot be edited away quietly. A purge removes only payload
bytes that are past retention and not held, writes a purge manifest into the ledger (the verifier uses it
to tell a purged payload from a deleted one) and never touches entries, so the tree keeps verifying.

A hold's ``subject`` is whom the records are about, as anyone names a person or an account: an HR person
id, an email, a username, or an account id or name as events show it. It covers every sealed record about
them, found in the store when a purge runs (``subject_coverage``, set-based SQL on DuckDB and PostgreSQL):

* the persons it names — by HR id, email, any HR email or username, identity resolution's person keys,
  or an account resolved to a person — and every account resolved to them (``accounts``), plus accounts
  whose id or name is the subject itself;
* raw records of events whose target or actor is one of those accounts, or whose actor or target id or
  name is one of their keys (the subject, their emails, usernames, person id, account ids and names;
  compared lower-cased);
* raw records of governance records whose subject resolves to them (``workflow_subjects``) or whose
  subject, requester, owner or an approver is one of their keys;
* their HR records (raw records of ``persons`` rows), and quarantined records whose bytes contain one of
  their keys of five characters or more (a shorter one would match almost anything);
* as before, any entry sealed with that ``subject``.

Accounts come from identity resolution, so a purge under a subject hold refuses to run on a store that
holds events or governance records but has never been resolved (``accessproof identity resolve``). Events
ingested after the last resolution are still covered when they name one of the keys; resolve again
before purging to cover new accounts known only by an opaque id.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
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

    def covers(self, e: Entry, idx: int = -1, about: SubjectCoverage | None = None) -> bool:
        """True if the hold applies to the record ``e`` seals at ledger index ``idx`` (every criterion it
        names must match). A subject matches the entry's own subject, or ``about`` (the records the store
        shows to be about the subject, from ``subject_coverage``) holds ``idx``."""
        if self.subject is not None and e.subject != self.subject and (about is None or idx not in about):
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


# -- what a subject hold covers ------------------------------------------------------------------------

#: keys shorter than this are not searched for inside quarantined bytes (a short one matches almost anything)
MIN_QUARANTINE_KEY = 5
_EVENT_NAMES = ("actor_id", "actor_name", "target_id", "target_name")


@dataclass(frozen=True)
class SubjectCoverage:
    """The sealed records a subject hold covers, found in the store (see the module docstring)."""

    subject: str
    persons: tuple[str, ...]  # the persons the subject names
    accounts: tuple[tuple[str, str], ...]  # (system, account_id) resolved to them or named by the subject
    indexes: frozenset[int]  # ledger indexes of the records about them
    counts: dict[str, int]  # ledger entries by kind: event, workflow, person (raw records), quarantine
    resolved: bool = True  # False: events or governance records are there but identities were never resolved

    def __contains__(self, idx: object) -> bool:
        return idx in self.indexes

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()) if n) or "none in the store"
        who = f"person {', '.join(self.persons)}" if self.persons else "no HR person"
        text = f"covers {len(self.indexes)} records ({kinds}); {who}, {len(self.accounts)} accounts"
        return text if self.resolved else text + "; identities not resolved: run 'accessproof identity resolve'"


class _StoreSQL:
    """The store's tables on the ledger's connection, in DuckDB's dialect on either backend (PostgreSQL
    through ``store.dialect``, as the store itself runs it)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.dialect = "duckdb" if isinstance(conn, duckdb.DuckDBPyConnection) else "postgres"

    def query(self, sql: str, params: list[Any] | None = None, *, translate: bool = True) -> list[tuple]:
        if self.dialect == "duckdb":
            return self.conn.execute(sql, params or []).fetchall()
        import psycopg

        from accessproof.store.postgres import number_placeholders, to_postgres

        with psycopg.RawCursor(self.conn) as cur:
            cur.execute(to_postgres(sql) if translate else number_placeholders(sql), params or None)
            return cur.fetchall() if cur.description else []

    def has(self, table: str, *, rows: bool = False) -> bool:
        from accessproof.linking.sql import table_exists

        if not table_exists(self, table):  # type: ignore[arg-type]
            return False
        return not rows or bool(self.query(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1) t")[0][0])


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _person_keys_sql(db: _StoreSQL) -> str:
    """(person_id, key): every lower-cased name a person goes by, from the tables this store has."""
    from accessproof.linking.sql import json_list

    parts = []
    if db.has("persons"):
        parts += [
            "SELECT person_id, lower(trim(person_id)) AS key FROM persons",
            "SELECT person_id, lower(trim(email)) FROM persons",
            f"SELECT person_id, lower(trim(j.v)) FROM (SELECT person_id, {json_list('emails_json')} AS v "
            "FROM persons WHERE emails_json IS NOT NULL) j",
            f"SELECT person_id, lower(trim(j.v)) FROM (SELECT person_id, {json_list('usernames_json')} AS v "
            "FROM persons WHERE usernames_json IS NOT NULL) j",
        ]
    if db.has("person_keys"):
        parts += ["SELECT person_id, k_low FROM person_keys", "SELECT person_id, k_norm FROM person_keys"]
    if db.has("accounts"):
        parts += ["SELECT person_id, lower(account_id) FROM accounts", "SELECT person_id, lower(name) FROM accounts"]
    return " UNION ".join(parts)


def _subject_keys(db: _StoreSQL, subject: str) -> tuple[list[str], list[tuple[str, str]], set[str]]:
    """(persons, accounts, keys) a subject names: the persons any of whose keys it is, their accounts and
    the accounts whose id or name it is, and the lower-cased keys of those persons and the subject's own.
    (An account's name is no key: it may be a display name others share.)"""
    handle = subject.strip().lower()
    keys = {handle} if handle else set()
    persons: list[str] = []
    if handle and (union := _person_keys_sql(db)):
        rows = db.query(
            f"""WITH k AS (SELECT * FROM ({union}) u WHERE person_id IS NOT NULL AND key IS NOT NULL)
                SELECT person_id, key FROM k WHERE person_id IN (SELECT person_id FROM k WHERE key = ?)""",
            [handle],
        )
        persons = sorted({str(p) for p, _ in rows})
        keys |= {str(k) for _, k in rows}
    accounts: list[tuple[str, str]] = []
    if handle and db.has("accounts"):
        named = f"person_id IN ({_marks(len(persons))}) OR " if persons else ""
        rows = db.query(
            "SELECT DISTINCT system, account_id, name FROM accounts "
            f"WHERE {named}lower(account_id) = ? OR lower(name) = ?",
            [*persons, handle, handle],
        )
        accounts = sorted({(str(s), str(a)) for s, a, _ in rows})
    return persons, accounts, {k for k in keys if k.strip()}


def _covered_sql(
    db: _StoreSQL, persons: list[str], accounts: list[tuple[str, str]], keys: list[str]
) -> tuple[str, list[Any]]:
    """SQL giving (ledger index, kind) of the raw records about the subject (see the module docstring)."""
    from accessproof.identity.resolve import actor_account_sql
    from accessproof.linking.config import as_config
    from accessproof.linking.sql import json_list

    kk = "(SELECT key FROM kk)"
    who = f"({_marks(len(persons))})" if persons else "(CAST(NULL AS VARCHAR))"
    parts: list[str] = []
    params: list[Any] = [*keys, *(x for a in accounts for x in a)]
    if db.has("events"):
        parts.append("SELECT 'raw' AS rtype, v.raw_id AS id, 'event' AS kind FROM events v WHERE "
                     + " OR ".join(f"lower(v.{c}) IN {kk}" for c in _EVENT_NAMES))
        if accounts:  # an event's account as identity resolution reads it (target; actor by id, name or rule)
            actor = actor_account_sql(as_config(None))
            parts.append(f"""SELECT 'raw', x.raw_id, 'event' FROM (
                SELECT raw_id, coalesce(target_system, source) AS system, coalesce(target_id, target_name) AS account_id
                FROM events UNION ALL SELECT raw_id, source, actor_id FROM events
                UNION ALL SELECT raw_id, source, actor_name FROM events UNION ALL SELECT raw_id, source, {actor} FROM events
              ) x JOIN acc ON acc.system = x.system AND acc.account_id = x.account_id""")
    if db.has("workflow_records"):
        parts.append("SELECT 'raw', raw_id, 'workflow' FROM workflow_records WHERE "
                     + " OR ".join(f"lower(trim({c})) IN {kk}" for c in ("subject", "requester", "owner")))
        parts.append(f"SELECT 'raw', j.raw_id, 'workflow' FROM (SELECT raw_id, {json_list('approvers_json')} AS a "
                     f"FROM workflow_records WHERE approvers_json IS NOT NULL) j WHERE lower(trim(j.a)) IN {kk}")
    if persons and db.has("workflow_subjects"):
        parts.append(f"SELECT 'raw', raw_id, 'workflow' FROM workflow_subjects WHERE person_id IN {who}")
        params += persons
    if db.has("persons"):
        parts.append(f"SELECT 'raw', raw_id, 'person' FROM persons WHERE person_id IN {who} "
                     f"OR lower(trim(email)) IN {kk}")
        params += persons
    if not parts:
        return "", []
    values = ", ".join("(?)" for _ in keys) or "(CAST(NULL AS VARCHAR))"
    pairs = ", ".join("(?, ?)" for _ in accounts) or "(CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR))"
    sql = f"""WITH kk(key) AS (VALUES {values}), acc(system, account_id) AS (VALUES {pairs}),
              cov AS ({' UNION '.join(parts)})
              SELECT e.idx, c.kind FROM ledger_entries e JOIN cov c ON e.record_type = c.rtype AND e.record_id = c.id"""
    return sql, params


def _quarantine_sql(db: _StoreSQL, keys: list[str]) -> tuple[str, list[Any]]:
    """SQL (the backend's own) giving (ledger index, 'quarantine') of quarantined records whose bytes hold
    one of ``keys`` (long enough to mean something), compared lower-cased as printable text."""
    long = [k for k in keys if len(k) >= MIN_QUARANTINE_KEY]
    if not long or not db.has("quarantine"):
        return "", []
    text = "CAST(q.data AS VARCHAR)" if db.dialect == "duckdb" else "encode(q.data, 'escape')"
    return (
        f"""SELECT e.idx, 'quarantine' FROM ledger_entries e JOIN quarantine q
              ON e.record_type = 'quarantine' AND e.record_id = q.quarantine_id
            WHERE q.data IS NOT NULL AND ({' OR '.join(f'strpos(lower({text}), ?) > 0' for _ in long)})""",
        long,
    )


def subject_coverage(ledger: Ledger, holds: list[Hold]) -> dict[str, SubjectCoverage]:
    """What each hold with a subject covers in the store, by hold id (one set of queries per subject)."""
    subjects = sorted({h.subject for h in holds if h.subject is not None})
    if not subjects:
        return {}
    conn = getattr(ledger.storage, "conn", None)
    if conn is None:
        raise LedgerError("cannot find the records a subject hold covers: the ledger's storage has no store")
    db = _StoreSQL(conn)
    resolved = (db.has("accounts") and db.has("workflow_subjects")) or not (
        db.has("events", rows=True) or db.has("workflow_records", rows=True))
    found: dict[str, SubjectCoverage] = {}
    for subject in subjects:
        persons, accounts, keys = _subject_keys(db, subject)
        ordered = sorted(keys)
        rows: list[tuple] = []
        sql, params = _covered_sql(db, persons, accounts, ordered)
        if sql:
            rows += db.query(sql, params)
        sql, params = _quarantine_sql(db, ordered)
        if sql:
            rows += db.query(sql, params, translate=False)
        kinds = {int(i): str(k) for i, k in rows}
        counts: dict[str, int] = {}
        for kind in kinds.values():
            counts[kind] = counts.get(kind, 0) + 1
        found[subject] = SubjectCoverage(subject, tuple(persons), tuple(accounts), frozenset(kinds), counts, resolved)
    return {h.hold_id: found[h.subject] for h in holds if h.subject is not None}


# -- purge ------------------------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    dry_run: bool
    now: str
    purge: list[RecordRef] = field(default_factory=list)
    held: list[RecordRef] = field(default_factory=list)
    payloads_removed: int = 0
    manifest_index: int | None = None
    held_by: dict[str, int] = field(default_factory=dict)  # hold id -> expired records it kept
    coverage: dict[str, SubjectCoverage] = field(default_factory=dict)  # subject holds: what they cover


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
    report.coverage = about = subject_coverage(ledger, holds)
    blind = [h for h in holds if h.hold_id in about and not about[h.hold_id].resolved]
    if blind:
        raise LedgerError(
            f"hold {blind[0].hold_id} is on subject {blind[0].subject!r}, but identities were never resolved, so "
            "not every record about them can be found; run 'accessproof identity resolve' before purging"
        )
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
            covering = [h.hold_id for h in holds if h.covers(e, idx, about.get(h.hold_id))]
            (report.held if covering else report.purge).append(ref)
            for hold_id in covering:
                report.held_by[hold_id] = report.held_by.get(hold_id, 0) + 1
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
