"""Retrieval of sealed evidence: the ledger entries an auditor asks for, by control, system, time and subject.

``find_evidence(store, control=, system=, start=, end=, subject=)`` returns one ``EvidenceRow`` per ledger
entry (oldest first) with its type, source, the subject it is about, its time, its ledger index and whether
its payload is still held. Purged payloads are listed, never hidden: ``payload`` is ``purged`` with the
purge manifest's time, author and ledger index and the retention rule that let it go; a payload gone with
no manifest is ``missing`` (``accessproof verify`` fails on it).

Filters (all optional, combined with AND):

* ``control`` — what evidences that control: its sealed runs (``control_result``), its sealed sampling
  populations (``population``) and the raw records its latest completed run's rows (its tested
  population) and its findings name as evidence (event ids, governance record ids and raw ids, each
  mapped to the raw record that carries it);
* ``system`` — the entry's source (``okta`` matches ``okta:acme``) or the raw record's source type;
* ``start`` / ``end`` — the record's own time (else when it was sealed), end exclusive;
* ``subject`` — a person (HR id, email, username or an account name, resolved by identity resolution)
  across all their accounts: HR records about them, governance records whose subject they are, and every
  event whose target or actor is one of their accounts. A handle that names no person but an account
  selects that account's events.

Displayed values (type, id, source, subject, times) are read from the entry bytes, which the tree covers;
the lookup columns only narrow the search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accessproof.ledger.entry import EntryError, decode_entry, parse_iso_utc
from accessproof.ledger.ledger import LedgerError
from accessproof.ledger.payloads import DuckDBPayloads
from accessproof.ledger.retention import RetentionPolicy
from accessproof.linking import sql as S
from accessproof.store.base import Store

COLUMNS = ("index", "type", "source", "kind", "subject", "time", "record_id", "retention", "payload",
           "purged_at", "purged_by", "purge_index", "why")


class EvidenceError(ValueError):
    """A retrieval that cannot run; the message is one line."""


@dataclass(frozen=True)
class EvidenceRow:
    index: int
    type: str
    source: str
    kind: str | None  # raw: event | workflow | person; population / control_result: the control id
    subject: str | None
    time: str  # the record's time, else when it was sealed (ISO 8601 UTC)
    record_id: str
    retention: str
    payload: str  # present | purged | missing
    purged_at: str | None = None
    purged_by: str | None = None
    purge_index: int | None = None
    why: str | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)


@dataclass
class Evidence:
    rows: list[EvidenceRow]
    total: int  # matching entries before ``limit``
    person_id: str | None = None
    accounts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def purged(self) -> int:
        return sum(r.payload == "purged" for r in self.rows)


# ---------------------------------------------------------------- filters as SQL

def _control_filter(store: Store, control: str) -> tuple[str, list[Any]]:
    """(condition on ``e``, params): entries that evidence ``control``."""
    parts = ["(e.record_type = 'population' AND starts_with(e.record_id, ? || ':'))"]
    params: list[Any] = [control]
    if S.table_exists(store, "control_runs"):
        parts.append("(e.record_type = 'control_result' AND e.record_id IN "
                     "(SELECT run_id FROM control_runs WHERE control_id = ?))")
        params.append(control)
    ids: list[str] = []
    if S.table_exists(store, "control_results"):
        ids.append(f"""SELECT {S.json_list('r.evidence_ids_json')} AS id FROM control_results r
                       WHERE r.run_id = (SELECT max_by(run_id, started) FROM control_runs
                                         WHERE control_id = ? AND status = 'completed')""")
        params.append(control)
    if S.table_exists(store, "findings"):
        ids.append(f"SELECT {S.json_list('f.evidence_ids_json')} FROM findings f WHERE f.control_id = ?")
        params.append(control)
    if ids:
        parts.append(f"""(e.record_type = 'raw' AND e.record_id IN (
          WITH ids AS ({' UNION '.join(ids)})
          SELECT raw_id FROM raw_records WHERE raw_id IN (SELECT id FROM ids)
          UNION SELECT raw_id FROM events WHERE event_id IN (SELECT id FROM ids)
          UNION SELECT raw_id FROM workflow_records WHERE record_id IN (SELECT id FROM ids)))""")
    return "(" + " OR ".join(parts) + ")", params


def _subject_accounts(store: Store, subject: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(person id, accounts) a handle names: the person and all their accounts, else matching accounts."""
    if not S.table_exists(store, "accounts") or not S.table_exists(store, "person_keys"):
        raise EvidenceError("--subject needs identity resolution: run 'accessproof link run' first")
    from accessproof.identity.resolve import person_of

    rows = store.query("SELECT person_id FROM persons_current WHERE person_id = ?", [subject])
    pid = rows[0][0] if rows else (person_of(store, subject) or {}).get("person_id")
    if pid is not None:
        accts = store.query("SELECT system, account_id FROM accounts WHERE person_id = ? ORDER BY 1, 2", [pid])
    else:
        accts = store.query("SELECT system, account_id FROM accounts WHERE account_id = ? OR lower(name) = lower(?) "
                            "ORDER BY 1, 2", [subject, subject])
        if not accts:
            raise EvidenceError(f"no person or account matches {subject!r} (try an HR id, an email or a username)")
    return pid, [(str(s), str(a)) for s, a in accts]


def _subject_filter(pid: str | None, accounts: list[tuple[str, str]]) -> tuple[str, list[Any]]:
    from accessproof.identity.resolve import actor_account_sql
    from accessproof.linking.config import as_config

    actor = actor_account_sql(as_config(None), "v")
    values = ", ".join("(?, ?)" for _ in accounts) or "(NULL, NULL)"
    params: list[Any] = [x for a in accounts for x in a]
    sql = f"""(e.record_type = 'raw' AND e.record_id IN (
      WITH acc(system, account_id) AS (VALUES {values})
      SELECT v.raw_id FROM events v JOIN acc ON acc.system = coalesce(v.target_system, v.source)
        AND acc.account_id = coalesce(v.target_id, v.target_name)
      UNION SELECT v.raw_id FROM events v JOIN acc ON acc.system = v.source AND acc.account_id = {actor}"""
    if pid is not None:
        sql += """
      UNION SELECT raw_id FROM persons WHERE person_id = ?
      UNION SELECT raw_id FROM workflow_subjects WHERE person_id = ?"""
        params += [pid, pid]
    return sql + "))", params


def _payload_joins(store: Store) -> tuple[str, str, str]:
    """(joins, 'held' condition, 'present' condition) from the ledger's payload-table mapping."""
    tables = DuckDBPayloads(getattr(store, "con", None)).tables  # the mapping only; no query runs on it
    by_table: dict[tuple[str, str, str], list[str]] = {}
    for rtype, where in tables.items():
        by_table.setdefault(where, []).append(rtype)
    joins, present = [], []
    for n, ((table, id_col, data_col), types) in enumerate(by_table.items()):
        if not S.table_exists(store, table):
            continue
        cond = f"p{n}.{S.ident(id_col)} = e.record_id AND e.record_type IN {S.in_list(types)}"
        if table == "ledger_payloads":
            cond += f" AND p{n}.record_type = e.record_type"
        joins.append(f"LEFT JOIN {S.ident(table)} p{n} ON {cond}")
        present.append(f"p{n}.{S.ident(data_col)} IS NOT NULL")
    held = f"e.record_type IN {S.in_list(tables)}"
    return "\n".join(joins), held, " OR ".join(present) or "false"


# ---------------------------------------------------------------- the query

def find_evidence(store: Store, *, control: str | None = None, system: str | None = None,
                  start: datetime | None = None, end: datetime | None = None, subject: str | None = None,
                  limit: int | None = None) -> Evidence:
    """Sealed entries matching every filter given, oldest first (at most ``limit``; ``total`` counts all)."""
    if not S.table_exists(store, "ledger_entries"):
        raise EvidenceError("this store has no ledger: nothing was sealed (run 'accessproof init' before ingesting)")
    if start is not None and end is not None and start >= end:
        raise EvidenceError("--from must be before --to")
    where, params = ["TRUE"], []
    if control:
        _known_control(store, control)
        cond, p = _control_filter(store, control)
        where.append(cond)
        params += p
    pid, accounts = None, []
    if subject:
        pid, accounts = _subject_accounts(store, subject.strip())
        cond, p = _subject_filter(pid, accounts)
        where.append(cond)
        params += p
    if start is not None:
        where.append("e.record_time >= ?")
        params.append(start)
    if end is not None:
        where.append("e.record_time < ?")
        params.append(end)
    if system:
        src = "json_extract_string(decode(e.entry), '$.source')"
        where.append(f"({src} = ? OR starts_with({src}, ? || ':') "
                     "OR e.record_id IN (SELECT raw_id FROM raw_records WHERE source_type = ?) "
                     "OR e.record_id IN (SELECT quarantine_id FROM quarantine WHERE source_type = ?))")
        params += [system, system, system, system]
    cond = " AND ".join(where)
    total = int(store.query(f"SELECT count(*) FROM ledger_entries e WHERE {cond}", params)[0][0])
    joins, held, present = _payload_joins(store)
    rows = store.query(f"""
      WITH m AS (SELECT e.idx, e.entry, e.record_type, e.record_id FROM ledger_entries e WHERE {cond}
                 ORDER BY e.idx{f' LIMIT {int(limit)}' if limit else ''}),
      {_who_sql(store)}
      SELECT e.idx, e.entry, {held} AS held, ({present}) AS present, raw.kind, who.who
      FROM m e {joins}
      LEFT JOIN raw ON e.record_type = 'raw' AND raw.raw_id = e.record_id
      LEFT JOIN (SELECT raw_id, min(who) AS who FROM who GROUP BY raw_id) who
        ON e.record_type = 'raw' AND who.raw_id = e.record_id
      ORDER BY e.idx""", params)
    gone = {int(r[0]) for r in rows if r[2] and not r[3]}
    purges = _purges(store, gone) if gone else {}
    policy = _policy(store) if purges else None
    return Evidence([_row(r, purges, policy) for r in rows], total, pid, accounts)


def _known_control(store: Store, control: str) -> None:
    from accessproof.controls.engine import load_catalogue

    if control in load_catalogue():
        return
    if S.table_exists(store, "control_runs") and store.query(
            "SELECT count(*) FROM control_runs WHERE control_id = ?", [control])[0][0]:
        return
    raise EvidenceError(f"unknown control {control!r} (see 'accessproof controls list')")


def _who_sql(store: Store) -> str:
    """CTEs ``raw`` (raw_id, kind) and ``who`` (raw_id, who): whom each raw record among ``m`` is about — the
    HR person, the governance record's subject (as resolved), the event target's person or account."""
    linked = S.table_exists(store, "accounts") and S.table_exists(store, "workflow_subjects")
    event_who = ("coalesce(a.person_id, v.target_name, v.target_id, v.actor_name, v.actor_id)" if linked
                 else "coalesce(v.target_name, v.target_id, v.actor_name, v.actor_id)")
    acct = ("LEFT JOIN accounts a ON a.system = coalesce(v.target_system, v.source) "
            "AND a.account_id = coalesce(v.target_id, v.target_name)" if linked else "")
    wf_who = "coalesce(s.person_id, w.subject)" if linked else "w.subject"
    wf = "LEFT JOIN workflow_subjects s ON s.raw_id = w.raw_id" if linked else ""
    return f"""raw AS (SELECT r.raw_id, r.record_type AS kind FROM raw_records r
                 WHERE r.raw_id IN (SELECT record_id FROM m WHERE record_type = 'raw')),
      who AS (
        SELECT p.raw_id, p.person_id AS who FROM persons p WHERE p.raw_id IN (SELECT raw_id FROM raw)
        UNION ALL SELECT w.raw_id, {wf_who} FROM workflow_records w {wf} WHERE w.raw_id IN (SELECT raw_id FROM raw)
        UNION ALL SELECT v.raw_id, {event_who} FROM events v {acct} WHERE v.raw_id IN (SELECT raw_id FROM raw))"""


def _purges(store: Store, wanted: set[int]) -> dict[int, tuple[str, str, int]]:
    """Ledger index → (purge time, by whom, manifest index) of the ``wanted`` records sealed purge manifests
    list."""
    if not store.query("SELECT count(*) FROM ledger_entries WHERE record_type = 'purge'")[0][0]:
        return {}
    from accessproof.ledger import open_ledger
    from accessproof.ledger.retention import _own_records  # manifests, each checked against its sealed hash

    ledger = open_ledger(store.dir, getattr(store, "con", None))
    try:
        return {int(rec[0]): (str(body.get("time")), str(body.get("by")), idx)
                for idx, _e, body in _own_records(ledger, ["purge"]) for rec in body["records"]
                if int(rec[0]) in wanted}
    finally:
        ledger.close()


def _row(r: tuple, purges: dict[int, tuple[str, str, int]], policy: RetentionPolicy | None) -> EvidenceRow:
    idx, data, held, present, kind, who = int(r[0]), bytes(r[1]), bool(r[2]), bool(r[3]), r[4], r[5]
    try:
        e = decode_entry(data)
    except EntryError as exc:
        return EvidenceRow(idx, "?", "?", None, None, "", "?", "?", "missing", why=f"entry unreadable: {exc}")
    if e.type == "population":
        kind = e.id.split(":", 1)[0]
    status, at, by, pidx, why = "present", None, None, None, None
    if not held:
        status, why = "not kept", f"payloads of {e.type} records are not kept by this store"
    elif not present:
        p = purges.get(idx)
        if p is None:
            status, why = "missing", "payload gone without a purge manifest ('accessproof verify' fails on it)"
        else:
            status, (at, by, pidx) = "purged", p
            why = _retention_why(policy, e.retention, e.record_time)
    return EvidenceRow(idx, e.type, e.source, kind, e.subject or who, e.record_time, e.id, e.retention, status, at,
                       by, pidx, why)


def _policy(store: Store) -> RetentionPolicy | None:
    """The store's retention policy (its ``retention.yaml``, else the packaged one)."""
    from accessproof.ledger.api import POLICY_FILE
    from accessproof.ledger.retention import load_policy

    path = store.dir / POLICY_FILE
    try:
        return load_policy(path if path.exists() else None)
    except LedgerError:
        return None


def _retention_why(policy: RetentionPolicy | None, retention: str, record_time: str) -> str:
    cls = policy.classes.get(retention) if policy is not None else None
    if cls is None:
        return f"retention class {retention}"
    expires = cls.expires(parse_iso_utc(record_time))
    span = f"{cls.years} years" if cls.years else f"{cls.days} days"
    return f"retention {retention} ({span} from the record's time) expired " + (
        expires.date().isoformat() if expires else "never")


__all__ = ["COLUMNS", "Evidence", "EvidenceError", "EvidenceRow", "find_evidence"]
