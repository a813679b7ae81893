"""The links of a walkthrough chain and the checks on each, read from the records themselves and the ledger.

A walkthrough finds the chain of one item through the linker's tables (``links``, ``removal_links``,
``wf_scope_targets``) and identity resolution (``accounts``, ``workflow_subjects``, ``person_of``) — what
the linker *claims* belongs together — and then checks every claim against the records: governance records
and events are read again from ``workflow_records`` and ``events``, raw input from ``raw_records``, and
each raw record is proven in the ledger (inclusion proof against the latest signed checkpoint, salted
payload hash against the stored bytes). A record changed or deleted after linking still fails.

Each check has a name from ``CHECKS`` and one result per link of the chain it looked at, so a failure
names the broken link (``RITM0010074 → okta:acme group.user_membership.add …``) and says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from accessproof.identity.resolve import actor_account_sql, person_of
from accessproof.ledger import open_ledger
from accessproof.ledger.entry import EntryError, decode_entry, payload_matches
from accessproof.ledger.ledger import LedgerError
from accessproof.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from accessproof.linking import sql as S
from accessproof.linking.base import ACCOUNT_ACTIONS
from accessproof.linking.config import Config
from accessproof.linking.link import ENT_MATCH, horizon_of
from accessproof.store.base import Store

#: check name -> what it proves (the order is the order of the report)
CHECKS: dict[str, str] = {
    "approval": "the governance record was approved: an approver decided it, none rejected, none pending",
    "approver": "each approver is a person in HR, neither requester nor subject nor executor of the grant, "
                "employed and trained (approver training of the access policy) when deciding",
    "provisioning": "enforcement events executed the record",
    "subject": "the account in each event resolves to the person the governance record is about",
    "scope": "what was granted is within the approved scope",
    "order": "requested ≤ approved ≤ provisioned",
    "supplier": "the supplier is in the register, qualified and under contract when access is provisioned",
    "window": "access under an exception is granted inside the exception's validity",
    "removal": "access is removed by its deadline (trigger or expiry + SLA)",
    "evidence": "the raw input of every record of the chain is in the store",
    "ledger": "every raw record is sealed: its entry's inclusion proof verifies against the latest signed "
              "checkpoint and its salted payload hash matches the stored bytes",
}

#: a date ("valid until", "contract end") is valid through that day
DAY = timedelta(hours=24)

WF_COLUMNS = ("record_id, system, kind, subject, scope, requester, approvers_json, opened, decided, effective, "
              "expires, status, parent_id, decision, owner, qualification_status, contract_start, contract_end, "
              "course, completed, valid_until, event_type, raw_id, attributes_json")
_LATEST = "ORDER BY coalesce(decided, effective, opened, completed) DESC NULLS LAST, raw_id DESC"


def when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else "(no time)"


def hours(a: datetime, b: datetime) -> float:
    """Hours from ``b`` to ``a``."""
    return round((a - b).total_seconds() / 3600.0, 1)


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values) or "NULL"


# ---------------------------------------------------------------- results


@dataclass(slots=True)
class LinkResult:
    """The outcome of one check on one link of the chain."""

    link: str
    passed: bool
    reason: str
    evidence: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Check:
    """One named check over every link of the chain it applies to."""

    check: str
    results: list[LinkResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[LinkResult]:
        return [r for r in self.results if not r.passed]

    @property
    def link(self) -> str:
        shown = self.failures or self.results
        return shown[0].link if shown else ""

    @property
    def reason(self) -> str:
        """The failures (the first two, and how many more), else what held."""
        fails = self.failures
        if fails:
            text = "; ".join(r.reason for r in fails[:2])
            return text + (f" (and {len(fails) - 2} more)" if len(fails) > 2 else "")
        if len(self.results) == 1:
            return self.results[0].reason
        return f"{len(self.results)} links hold, e.g. {self.results[0].reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "link": self.link, "reason": self.reason,
                "results": [{"link": r.link, "passed": r.passed, "reason": r.reason, "evidence": r.evidence}
                            for r in self.results]}


@dataclass(slots=True)
class Step:
    """One record of the chain (for the report and workpapers), with what its evidence showed."""

    role: str  # person | trigger | request | approval | exception | supplier | grant | removal
    record_type: str  # workflow | event | person
    record_id: str
    system: str | None
    time: datetime | None
    raw_id: str | None
    summary: str
    evidence: str | None = None  # present | missing | purged
    ledger_index: int | None = None
    proven: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "record_type": self.record_type, "record_id": self.record_id,
                "system": self.system, "time": self.time.isoformat() if self.time else None,
                "raw_id": self.raw_id, "summary": self.summary, "evidence": self.evidence,
                "ledger_index": self.ledger_index, "proven": self.proven}


@dataclass
class Item:
    """One walked item of a scenario: its chain and its checks."""

    scenario: str
    key: str
    title: str = ""
    person_id: str | None = None
    population: int | None = None
    steps: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def add(self, check: str, link: str, passed: bool, reason: str, evidence: Iterable[str | None] = ()) -> None:
        if check not in CHECKS:
            raise ValueError(f"unknown walkthrough check {check!r}")
        found = next((c for c in self.checks if c.check == check), None)
        if found is None:
            found = Check(check)
            self.checks.append(found)
        found.results.append(LinkResult(link, passed, reason, [e for e in evidence if e]))

    def step(self, step: Step) -> Step:
        for s in self.steps:
            if (s.record_type, s.record_id, s.raw_id) == (step.record_type, step.record_id, step.raw_id):
                return s
        self.steps.append(step)
        return step

    def ordered_checks(self) -> list[Check]:
        order = list(CHECKS)
        return sorted(self.checks, key=lambda c: order.index(c.check))

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "item": self.key, "title": self.title, "person_id": self.person_id,
                "population": self.population, "passed": self.passed,
                "checks": [c.as_dict() for c in self.ordered_checks()],
                "steps": [s.as_dict() for s in self.steps]}


# ---------------------------------------------------------------- reading the store


def _event_shape(cfg: Config) -> str:
    """Events in the shape of ``access_events`` (system, account, entitlement key and tail), computed from the
    canonical ``events`` table, so the walkthrough sees events as they are now."""
    actor = actor_account_sql(cfg, "e")
    return f"""
      SELECT e.event_id, e.raw_id, e.time, e.action, e.vendor_action, e.source, e.approval_ref, e.outcome,
             CASE WHEN e.action IN {S.GRANTING} THEN 'grant' WHEN e.action IN {S.REMOVING} THEN 'remove' END
               AS direction,
             coalesce(e.target_system, e.source) AS system,
             CASE WHEN coalesce(e.target_id, e.target_name) IS NOT NULL THEN coalesce(e.target_id, e.target_name)
                  ELSE {actor} END AS account_id,
             CASE WHEN e.action IN {ACCOUNT_ACTIONS} THEN 'account' ELSE coalesce(e.entitlement_type, 'other') END
               AS entitlement_type,
             CASE WHEN e.action IN {ACCOUNT_ACTIONS} THEN '*' ELSE coalesce(e.entitlement_id, e.entitlement_name, '?')
               END AS entitlement_key,
             e.entitlement_id, e.entitlement_name,
             lower(reverse(split_part(reverse(coalesce(e.entitlement_name, e.entitlement_id)), '/', 1)))
               AS entitlement_tail,
             e.source AS executor_system, {actor} AS executor_account
      FROM events e"""


class Context:
    """What every walk needs: the store, the rules in force, the ledger and the data's "now"."""

    def __init__(self, store: Store, cfg: Config, *, approver_courses: Sequence[str],
                 qualified_statuses: Sequence[str]) -> None:
        self.store = store
        self.cfg = cfg
        self.courses = [c.lower().strip() for c in approver_courses]
        self.qualified = {s.lower().strip() for s in qualified_statuses}
        lk = cfg.linking
        removal = lk.get("removal") or {}
        self.sla_hours = float(removal.get("sla_hours", 24))
        self.window_days = float((lk.get("inferred") or {}).get("window_days", 14))
        self.approved_statuses = {s.lower() for s in lk.get("approved_statuses") or []}
        self.rejected_statuses = {s.lower() for s in lk.get("rejected_statuses") or []}
        acc = cfg.access
        self.end_actions = [str(a) for a in acc.get("account_end_actions") or []]
        self.account_types = [str(t) for t in acc.get("account_entitlement_types") or []]
        self.as_of: datetime | None = horizon_of(store)
        self.events_sql = _event_shape(cfg)
        self.ledger = open_ledger(store.dir, getattr(store, "con", None))
        self._people: dict[str, str | None] = {}
        self.populations: dict[str, list[str]] = {}  # scenario -> sorted keys, computed once per context
        self._checkpoint: tuple[int, bytes] | str | None = None

    def close(self) -> None:
        self.ledger.close()

    # -- governance records and people

    def record(self, record_id: str, kinds: Sequence[str]) -> dict[str, Any] | None:
        """The current version of a governance record (the latest decided one, as the linker takes it)."""
        rows = self.store.query_dicts(
            f"SELECT {WF_COLUMNS} FROM workflow_records WHERE upper(record_id) = upper(?) "
            f"AND kind IN ({placeholders(kinds)}) {_LATEST} LIMIT 1", [record_id.strip(), *kinds])
        return rows[0] if rows else None

    def record_by_raw(self, raw_id: str) -> dict[str, Any] | None:
        rows = self.store.query_dicts(f"SELECT {WF_COLUMNS} FROM workflow_records WHERE raw_id = ?", [raw_id])
        return rows[0] if rows else None

    def person_of(self, handle: str | None) -> str | None:
        """The one person a handle (email, employee id, username, account) names, through identity resolution."""
        if not handle or not handle.strip():
            return None
        key = handle.strip().lower()
        if key not in self._people:
            found = person_of(self.store, handle, self.cfg)
            self._people[key] = found["person_id"] if found else None
        return self._people[key]

    def subject_person(self, rec: dict[str, Any]) -> str | None:
        rows = self.store.query("SELECT person_id FROM workflow_subjects WHERE raw_id = ?", [rec["raw_id"]])
        if rows and rows[0][0]:
            return str(rows[0][0])
        return self.person_of(rec.get("subject"))

    def person(self, person_id: str | None) -> dict[str, Any] | None:
        if not person_id:
            return None
        rows = self.store.query_dicts(
            "SELECT person_id, display_name, email, worker_type, supplier_id, hired, terminated, system, raw_id "
            "FROM persons_current WHERE person_id = ?", [person_id])
        return rows[0] if rows else None

    def approvals(self, rec: dict[str, Any]) -> list[dict[str, Any]]:
        """The decisions on a record: its approval records (current versions), else the approvers it carries
        itself (QMS changes and exceptions), decided when the record was."""
        rows = self.store.query_dicts(
            f"SELECT * FROM (SELECT {WF_COLUMNS}, row_number() OVER (PARTITION BY record_id {_LATEST}) AS v "
            "FROM workflow_records WHERE kind = 'approval' AND system = ? AND parent_id = ?) x WHERE v = 1 "
            "ORDER BY coalesce(decided, opened), record_id", [rec["system"], rec["record_id"]])
        out = []
        for a in rows:
            decision = (a["decision"] or a["status"] or "").lower()
            out.append({"id": a["record_id"], "raw_id": a["raw_id"], "approvers": _names(a["approvers_json"]),
                        "decision": decision, "decided": a["decided"], "record": a, "inline": False})
        if out:
            return out
        names = _names(rec.get("approvers_json"))
        if not names:
            return []
        status = (rec.get("decision") or rec.get("status") or "").lower()
        decision = ("rejected" if status in self.rejected_statuses
                    else "approved" if status in self.approved_statuses and rec.get("decided") else "pending")
        return [{"id": rec["record_id"], "raw_id": rec["raw_id"], "approvers": names, "decision": decision,
                 "decided": rec.get("decided"), "record": rec, "inline": True}]

    def training(self, person_id: str, decided: datetime) -> tuple[bool, str]:
        """Whether the person held every approver course of the policy at ``decided``, and what was found."""
        if not self.courses:
            return True, "the access policy requires no approver training"
        rows = self.store.query_dicts(
            "SELECT w.record_id, lower(trim(w.course)) AS course, w.course AS name, w.completed, w.valid_until "
            "FROM workflow_records w JOIN workflow_subjects s ON s.raw_id = w.raw_id "
            "WHERE w.kind = 'training_attestation' AND s.person_id = ? ORDER BY w.valid_until DESC", [person_id])
        found = []
        for course in self.courses:
            done = [r for r in rows if r["course"] == course and r["completed"] is not None
                    and r["completed"] <= decided]
            ok = [r for r in done if r["valid_until"] is not None and decided < r["valid_until"] + DAY]
            if ok:
                found.append(f"{ok[0]['name']} current ({ok[0]['record_id']})")
            elif done:
                return False, (f"{done[0]['name']} training ({done[0]['record_id']}) was valid only until "
                               f"{when(done[0]['valid_until'])}")
            else:
                return False, f"no completed '{course}' training"
        return True, "; ".join(found)

    # -- events

    def events(self, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Events (access shape) with the person their account resolves to."""
        return self.store.query_dicts(
            f"SELECT e.*, a.person_id, x.person_id AS executor_person_id FROM ({self.events_sql}) e "
            "LEFT JOIN accounts a ON a.system = e.system AND a.account_id = e.account_id "
            "LEFT JOIN accounts x ON x.system = e.executor_system AND x.account_id = e.executor_account "
            f"WHERE {where} "
            "ORDER BY e.time, e.event_id", list(params))

    def events_by_key(self, keys: Iterable[tuple[str | None, str | None]]) -> dict[tuple[str, str], dict[str, Any]]:
        keys = {(str(k), str(r)) for k, r in keys if k and r}
        raws = sorted({r for _, r in keys})
        if not raws:
            return {}
        rows = self.events(f"e.raw_id IN ({placeholders(raws)})", raws)
        return {(r["event_id"], r["raw_id"]): r for r in rows if (r["event_id"], r["raw_id"]) in keys}

    def scope_rules(self, raw_id: str, events: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
        """For each event, the scope rule of the record (``wf_scope_targets``) its entitlement matches."""
        raws = sorted({e["raw_id"] for e in events})
        if not raws:
            return {}
        rows = self.store.query(
            f"SELECT e.event_id, e.raw_id, min(t.rule) FROM ({self.events_sql}) e "
            "JOIN wf_scope_targets t ON t.raw_id = ? "
            f"WHERE e.raw_id IN ({placeholders(raws)}) AND e.system LIKE t.systems AND {ENT_MATCH} "
            "GROUP BY e.event_id, e.raw_id", [raw_id, *raws])
        return {(r[0], r[1]): r[2] for r in rows}

    def first_removal(self, grant: dict[str, Any]) -> dict[str, Any] | None:
        """The first event after a grant that removes it: a revoke of the same entitlement, or the end of the
        account (``access.account_end_actions``, ``access.account_entitlement_types``)."""
        ends = [*self.end_actions]
        types = [*self.account_types]
        rows = self.events(
            "e.system = ? AND e.account_id = ? AND e.direction = 'remove' AND coalesce(e.outcome, '') <> 'failure' "
            f"AND e.time > ? AND (e.entitlement_key = ? OR e.action IN ({placeholders(ends)}) "
            f"OR e.entitlement_type IN ({placeholders(types)}))",
            [grant["system"], grant["account_id"], grant["time"], grant["entitlement_key"], *ends, *types])
        return rows[0] if rows else None

    # -- evidence and the ledger

    def checkpoint(self) -> tuple[int, bytes] | str:
        """(size, root) of the latest checkpoint, its signature verified — signing one first when the ledger
        has grown since and a key exists — or why there is none."""
        if self._checkpoint is None:
            led = self.ledger
            try:
                latest = led.latest_checkpoint()
                if led.signer is not None and (latest is None or latest.size < led.size):
                    latest = led.checkpoint()
                if latest is None:
                    self._checkpoint = "the ledger has no signed checkpoint (run 'accessproof init' and seal)"
                else:
                    _origin, size, root = led.open_checkpoint(latest.note)
                    self._checkpoint = (size, root)
            except LedgerError as exc:
                self._checkpoint = str(exc)
        return self._checkpoint

    def prove(self, items: Sequence[Item]) -> None:
        """Evidence and ledger checks for every step (of all ``items``) that names a raw record — one read of the
        raw records and one ledger lookup for them all."""
        steps = [(item, s) for item in items for s in item.steps if s.raw_id]
        raws = sorted({s.raw_id for _, s in steps if s.raw_id})
        held: dict[str, bytes | None] = {}
        sealed: dict[str, tuple[int, bytes]] = {}
        for i in range(0, len(raws), 500):
            part = raws[i:i + 500]
            for raw_id, data in self.store.query(
                    f"SELECT raw_id, data FROM raw_records WHERE raw_id IN ({placeholders(part)})", part):
                held[raw_id] = None if data is None else bytes(data)
            sealed.update(self._sealed(part))
        cp = self.checkpoint()
        for item, s in steps:
            assert s.raw_id is not None
            label = f"{s.role} {s.record_id} (raw {s.raw_id})"
            ev = [s.record_id, s.raw_id]
            if s.raw_id not in held:
                s.evidence = "missing"
                item.add("evidence", label, False, f"raw record {s.raw_id} of {s.role} {s.record_id} is missing "
                         "from the store", ev)
                continue
            data = held[s.raw_id]
            s.evidence = "present" if data is not None else "purged"
            if data is None:
                item.add("evidence", label, False, f"the payload of {s.role} {s.record_id} was purged (raw "
                         f"{s.raw_id}: entry kept, bytes gone)", ev)
            else:
                item.add("evidence", label, True, f"raw {s.raw_id} present ({len(data)} bytes)", ev)
            ok, why, idx = self._proven(s.raw_id, data, sealed.get(s.raw_id), cp)
            s.ledger_index, s.proven = idx, ok
            if data is not None or not ok:
                item.add("ledger", label, ok, why, ev)

    def _sealed(self, raw_ids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """The first ledger entry sealing each raw record, confirmed against the entry bytes (as
        ``Ledger.find`` does, for many ids in one query)."""
        out: dict[str, tuple[int, bytes]] = {}
        rows = self.store.query(
            f"SELECT idx, entry FROM ledger_entries WHERE record_type = 'raw' AND record_id IN "
            f"({placeholders(raw_ids)}) ORDER BY idx", list(raw_ids)) if raw_ids else []
        for idx, data in rows:
            try:
                e = decode_entry(bytes(data))
            except EntryError:
                continue
            if e.type == "raw" and e.id in raw_ids:
                out.setdefault(e.id, (int(idx), bytes(data)))
        return out

    def _proven(self, raw_id: str, data: bytes | None, sealed: tuple[int, bytes] | None,
                cp: tuple[int, bytes] | str) -> tuple[bool, str, int | None]:
        if sealed is None:
            return False, f"raw {raw_id} is not sealed in the ledger", None
        idx, entry_bytes = sealed
        if isinstance(cp, str):
            return False, f"entry {idx}: {cp}", idx
        size, root = cp
        if idx >= size:
            return False, f"entry {idx} is not covered by the latest signed checkpoint (size {size})", idx
        try:
            entry = decode_entry(entry_bytes)
            verify_inclusion(idx, size, leaf_hash(entry_bytes), self.ledger.inclusion_proof(idx, size), root)
        except (LedgerError, EntryError, ProofError) as exc:
            return False, f"entry {idx}: inclusion proof against checkpoint size {size} fails ({exc})", idx
        if data is None:
            return True, f"entry {idx} proven; payload purged", idx
        if not payload_matches(entry, data):
            return False, (f"entry {idx} is proven in the tree of size {size}, but the stored bytes of raw "
                           f"{raw_id} do not match its sealed payload hash: changed after sealing"), idx
        return True, f"entry {idx} proven against checkpoint size {size}; payload hash matches", idx


def _names(value: str | None) -> list[str]:
    if not value:
        return []
    try:
        names = orjson.loads(value)
    except orjson.JSONDecodeError:
        return [value]
    return [str(n) for n in names if n] if isinstance(names, list) else [str(names)]


def cites(text: str | None, record_id: str) -> bool:
    """Whether ``text`` names ``record_id`` as a whole word (``EXC-0001`` is not in ``EXC-00010``)."""
    return bool(text) and re.search(rf"(?<![\w-]){re.escape(record_id)}(?![\w-])", text or "", re.I) is not None


def event_label(e: dict[str, Any]) -> str:
    what = e.get("vendor_action") or e.get("action")
    ent = e.get("entitlement_name") or e.get("entitlement_id")
    target = f" {ent}" if ent and e.get("entitlement_type") != "account" else ""
    return f"{e['system']} {what}{target} of {e['account_id']} at {when(e['time'])} (event {e['event_id']})"


def event_step(role: str, e: dict[str, Any]) -> Step:
    return Step(role, "event", e["event_id"], e["system"], e["time"], e["raw_id"], event_label(e))


def record_step(role: str, rec: dict[str, Any]) -> Step:
    t = rec.get("decided") or rec.get("effective") or rec.get("opened") or rec.get("completed")
    bits = [rec["kind"].replace("_", " "), rec.get("subject"), rec.get("scope") or rec.get("event_type"),
            rec.get("status")]
    return Step(role, "workflow", rec["record_id"], rec["system"], t, rec["raw_id"],
                " · ".join(str(b) for b in bits if b))


def person_step(p: dict[str, Any]) -> Step:
    bits = [p.get("display_name"), p.get("email"), p.get("worker_type"), p.get("supplier_id")]
    return Step("person", "person", p["person_id"], p.get("system"), p.get("hired"), p.get("raw_id"),
                " · ".join(str(b) for b in bits if b))


# ---------------------------------------------------------------- the checks of a request chain


def check_approval(item: Item, rec: dict[str, Any], approvals: list[dict[str, Any]]) -> datetime | None:
    """The record is approved: returns when (the last approving decision), or None."""
    rid = rec["record_id"]
    ev = [rid, rec["raw_id"], *(a["id"] for a in approvals)]
    if not approvals:
        item.add("approval", rid, False, f"no approval record decides {rid} and it names no approver", ev)
        return None
    rejected = [a for a in approvals if a["decision"] == "rejected"]
    open_ = [a for a in approvals if a["decision"] not in ("approved", "rejected")]
    approved = [a for a in approvals if a["decision"] == "approved"]
    if rejected:
        a = rejected[0]
        item.add("approval", rid, False, f"{rid} was rejected by {', '.join(a['approvers']) or '?'} at "
                 f"{when(a['decided'])}", ev)
        return None
    if open_ or not approved:
        a = (open_ or approvals)[0]
        item.add("approval", rid, False, f"approval {a['id']} of {rid} by {', '.join(a['approvers']) or '?'} is "
                 f"{a['decision'] or 'open'}", ev)
        return None
    decided = [a["decided"] for a in approved if a["decided"] is not None]
    names = ", ".join(n for a in approved for n in a["approvers"])
    if not decided:
        item.add("approval", rid, False, f"{rid} is approved by {names} but the decision has no time", ev)
        return None
    item.add("approval", rid, True, f"{rid} approved by {names} (last decision {when(max(decided))})", ev)
    return max(decided)


def check_approvers(ctx: Context, item: Item, rec: dict[str, Any], approvals: list[dict[str, Any]],
                    subject_pid: str | None) -> None:
    rid = rec["record_id"]
    requester = (rec.get("requester") or "").strip()
    requester_pid = ctx.person_of(requester)
    for a in approvals:
        if a["decision"] != "approved":
            continue
        decided = a["decided"]
        for name in a["approvers"]:
            link = f"{rid} approved by {name}" if a["inline"] else f"{rid} approval {a['id']} by {name}"
            ev = [a["id"], a["raw_id"]]
            pid = ctx.person_of(name)
            if pid is None:
                item.add("approver", link, False, f"approver {name} matches no person in HR", ev)
            elif (requester_pid and pid == requester_pid) or name.strip().lower() == requester.lower():
                item.add("approver", link, False, f"{name} approved {rid}, which they requested", ev)
            elif subject_pid and pid == subject_pid:
                item.add("approver", link, False, f"{name} approved {rid}, access for themselves", ev)
            elif decided is None:
                item.add("approver", link, False, f"the decision of {name} on {rid} has no time", ev)
            else:
                p = ctx.person(pid) or {}
                hired, left = p.get("hired"), p.get("terminated")
                if hired is not None and decided < hired:
                    item.add("approver", link, False, f"{name} decided {rid} at {when(decided)}, before their "
                             f"hire on {when(hired)}", ev)
                elif left is not None and decided >= left + DAY:
                    item.add("approver", link, False, f"{name} decided {rid} at {when(decided)}, after leaving on "
                             f"{when(left)}", ev)
                else:
                    ok, why = ctx.training(pid, decided)
                    who = f"{name} ({pid}), neither requester ({requester or 'none named'}) nor subject"
                    item.add("approver", link, ok, f"{who}: {why}" if ok else f"{name} approved {rid} at "
                             f"{when(decided)}, but {why}", ev)


def grants_of(ctx: Context, item: Item, rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Grant events of a record: those the linker tied to it and those citing its id; a linked event that is no
    longer in the store fails ``provisioning``."""
    rid = rec["record_id"]
    linked = ctx.store.query("SELECT DISTINCT event_id, event_raw_id FROM links WHERE record_system = ? "
                             "AND record_id = ? AND direction = 'grant'", [rec["system"], rid])
    found = ctx.events_by_key(linked)
    for e in ctx.events("upper(e.approval_ref) = upper(?) AND e.direction = 'grant'", [rid]):
        found.setdefault((e["event_id"], e["raw_id"]), e)
    for event_id, raw_id in linked:
        if (event_id, raw_id) not in found:
            item.add("provisioning", f"{rid} → event {event_id}", False, f"event {event_id} (raw {raw_id}), "
                     f"linked to {rid} as its execution, is no longer in the store", [rid, event_id, raw_id])
    return sorted((e for e in found.values() if succeeded(e)), key=lambda e: (e["time"] is None, e["time"]))


def succeeded(e: dict[str, Any]) -> bool:
    return (e.get("outcome") or "") != "failure"


def check_grants(ctx: Context, item: Item, rec: dict[str, Any], grants: list[dict[str, Any]],
                 subject_pid: str | None, approved_at: datetime | None,
                 scopes: Sequence[tuple[str, str]], approver_pids: dict[str, str] | None = None) -> None:
    """Provisioning, subject, scope (against each of ``scopes``: (scope text, record raw id)), order, and that no
    approver (``approver_pids``: person id -> name) executed a grant."""
    approver_pids = approver_pids or {}
    rid = rec["record_id"]
    if not grants:
        item.add("provisioning", rid, False, f"no enforcement event executes {rid}: none is linked to it and "
                 "none cites it", [rid, rec["raw_id"]])
        return
    item.add("provisioning", rid, True, f"{len(grants)} event(s) executed {rid}", [rid, *(g["event_id"] for g in grants)])
    opened = rec.get("opened")
    if opened is not None and approved_at is not None and approved_at < opened:
        item.add("order", rid, False, f"{rid} was approved at {when(approved_at)}, before it was requested at "
                 f"{when(opened)}", [rid, rec["raw_id"]])
    hits = {raw: ctx.scope_rules(raw, grants) for _, raw in scopes}
    for g in grants:
        item.step(event_step("grant", g))
        link = f"{rid} → {event_label(g)}"
        ev = [rid, g["event_id"], g["raw_id"]]
        if subject_pid is None:
            item.add("subject", link, False, f"the subject {rec.get('subject')!r} of {rid} matches no person", ev)
        elif g["person_id"] is None:
            item.add("subject", link, False, f"account {g['account_id']} in {g['system']} resolves to no person",
                     ev)
        elif g["person_id"] != subject_pid:
            item.add("subject", link, False, f"account {g['account_id']} in {g['system']} is {g['person_id']}'s, "
                     f"but {rid} is about {subject_pid}", ev)
        else:
            item.add("subject", link, True, f"account {g['account_id']} in {g['system']} is {subject_pid}'s, the "
                     f"subject of {rid}", ev)
        if g["executor_person_id"] is not None and g["executor_person_id"] in approver_pids:
            item.add("approver", link, False, f"{approver_pids[g['executor_person_id']]} approved {rid} and executed "
                     f"the grant themselves (as {g['executor_account']})", ev)
        granted = g["entitlement_name"] or g["entitlement_id"] or g["entitlement_type"]
        for scope, raw in scopes:
            rule = hits[raw].get((g["event_id"], g["raw_id"]))
            item.add("scope", link, bool(rule), f"{g['entitlement_type']} {granted} is within '{scope}' (rule "
                     f"{rule})" if rule else f"granted {g['entitlement_type']} {granted} in {g['system']}, "
                     f"outside the approved scope '{scope}'", ev)
        t = g["time"]
        if t is None:
            item.add("order", link, False, "the grant has no time", ev)
        elif approved_at is None:
            item.add("order", link, False, f"provisioned at {when(t)} with no approval of {rid} to follow", ev)
        elif t < approved_at:
            item.add("order", link, False, f"provisioned at {when(t)}, {hours(approved_at, t)} h before {rid} was "
                     f"approved at {when(approved_at)}", ev)
        elif opened is not None and t < opened:
            item.add("order", link, False, f"provisioned at {when(t)}, before {rid} was requested at "
                     f"{when(opened)}", ev)
        else:
            item.add("order", link, True, f"requested {when(opened)} ≤ approved {when(approved_at)} ≤ "
                     f"provisioned {when(t)}", ev)


def walk_request(ctx: Context, item: Item, rec: dict[str, Any], subject_pid: str | None,
                 extra_scopes: Sequence[tuple[str, str]] = ()) -> tuple[list[dict[str, Any]], datetime | None]:
    """Request → approvals → grants: every check of a request chain; returns its grants and approval time."""
    item.step(record_step("request", rec))
    approvals = ctx.approvals(rec)
    for a in approvals:
        if not a["inline"]:
            item.step(record_step("approval", a["record"]))
    approved_at = check_approval(item, rec, approvals)
    check_approvers(ctx, item, rec, approvals, subject_pid)
    grants = grants_of(ctx, item, rec)
    approvers = {pid: name for a in approvals if a["decision"] == "approved" for name in a["approvers"]
                 if (pid := ctx.person_of(name))}
    check_grants(ctx, item, rec, grants, subject_pid, approved_at,
                 [(rec.get("scope") or "(no scope)", rec["raw_id"]), *extra_scopes], approvers)
    return grants, approved_at


def check_removal(ctx: Context, item: Item, link: str, held: str, removal: dict[str, Any] | None, due: datetime,
                  what: str, evidence: Iterable[str | None]) -> None:
    """The access (``held``) is removed within ``sla_hours`` of ``due`` (or that deadline is after the data's
    end)."""
    sla = ctx.sla_hours
    deadline = due + timedelta(hours=sla)
    if removal is None:
        if ctx.as_of is not None and ctx.as_of <= deadline:
            item.add("removal", link, True, f"{held}: not yet due ({what} on {when(due)}, data end "
                     f"{when(ctx.as_of)})", evidence)
        else:
            late = f", {hours(ctx.as_of, due)} h later" if ctx.as_of else ""
            item.add("removal", link, False, f"{held} still held: no removal since {what} on {when(due)} "
                     f"(data end {when(ctx.as_of)}{late})", evidence)
        return
    t = removal["time"]
    delta = hours(t, due)
    rel = f"{delta} h after" if delta >= 0 else f"{-delta} h before"
    ev = [*evidence, removal["event_id"], removal["raw_id"]]
    text = f"{held} removed {when(t)}, {rel} {what} (SLA {sla:g} h)"
    item.add("removal", link, t <= deadline, text if t <= deadline else text + ": late", ev)
