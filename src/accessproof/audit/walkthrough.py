"""End-to-end walkthroughs: follow one item of each scenario from governance record to enforcement to archive.

An auditor's walkthrough traces one instance of a process end to end. ``run_walkthrough(store)`` does it for
four scenarios, one item each — picked reproducibly from the seed (``random.Random("<seed>:<scenario>")``
over the sorted population) or named:

* ``role_change`` — an HR transfer (``HRE-…``): the access requests raised for the move (opened from 14 days
  before to 1 day after its effective date), their approvals and grants, and the removals linked to it;
* ``supplier_onboarding`` — a provisioned access request of supplier staff (``RITM…``), with the supplier's
  register entry (qualified, under contract when the access was granted);
* ``contractor_offboarding`` — a contractor or supplier staff member who left (person id, email or the HR
  termination id): every access they held at the termination or contract end, removed within the SLA;
* ``emergency_exception`` — an access exception (``EXC-…``): its approval, the requests citing it, the access
  granted inside its validity and removed at its expiry (or at the expiry of its renewals).

Each item's chain is checked link by link (``walkthrough_checks.CHECKS``): same subject, entitlement within
scope, times in order, approver allowed, evidence present and proven in the ledger. The result is sealed
as a ``walkthrough_result`` entry (payload kept in ``ledger_payloads``, retention class of control results)
and listed by ``list_walkthroughs``. The scheduler calls ``run_walkthrough`` as it is.

Known limits: an approver is "allowed" when they are an employed person, neither requester nor subject, with
the approver training of the access policy current; the policy's approver *roles* (manager, owner) are
tested by the ``approver_not_authorised`` control, not here. A role change's required removals are not
known to the store (no role model), so only the removals linked to the transfer are checked.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from accessproof.audit.walkthrough_checks import (
    DAY,
    Context,
    Item,
    check_approval,
    check_approvers,
    check_removal,
    cites,
    event_step,
    person_step,
    record_step,
    walk_request,
    when,
)
from accessproof.linking import sql as S
from accessproof.linking.config import Config, as_config
from accessproof.linking.link import ENT_MATCH
from accessproof.store.base import Store

RECORD_TYPE = "walkthrough_result"
SOURCE = "accessproof:walkthrough"
SCENARIOS = ("role_change", "supplier_onboarding", "contractor_offboarding", "emergency_exception")
#: a role change's requests are those opened this many days before / after its effective date
MOVE_DAYS_BEFORE, MOVE_DAYS_AFTER = 14, 1
#: a later exception renews one when it starts at most this long after the expiry
RENEWAL_GAP = timedelta(days=2)


class WalkthroughError(ValueError):
    """Bad input (unknown scenario or item); the message is one line for the user."""


# ---------------------------------------------------------------- role change


def _role_change_population(ctx: Context) -> list[str]:
    rows = ctx.store.query("""
      SELECT DISTINCT t.record_id FROM wf_current t
      JOIN workflow_subjects s ON s.raw_id = t.raw_id
      JOIN workflow_subjects rs ON rs.person_id = s.person_id
      JOIN wf_current r ON r.raw_id = rs.raw_id AND r.kind = 'access_request'
      WHERE t.kind = 'hr_event' AND lower(t.event_type) = 'transfer' AND s.person_id IS NOT NULL
        AND r.opened >= t.effective - ? * INTERVAL '1 day' AND r.opened <= t.effective + ? * INTERVAL '1 day'
      ORDER BY 1""", [MOVE_DAYS_BEFORE, MOVE_DAYS_AFTER])
    return [r[0] for r in rows]


def _role_change_resolve(ctx: Context, key: str) -> str | None:
    rec = ctx.record(key, ["hr_event"])
    return rec["record_id"] if rec and (rec["event_type"] or "").lower() == "transfer" else None


def _role_change_walk(ctx: Context, key: str) -> Item:
    move = ctx.record(key, ["hr_event"])
    assert move is not None
    pid = ctx.subject_person(move)
    eff = move["effective"] or move["opened"]
    item = Item("role_change", move["record_id"], person_id=pid,
                title=f"transfer {move['record_id']} of {pid or move['subject']} effective {when(eff)}")
    _person(ctx, item, pid)
    item.step(record_step("trigger", move))
    if eff is None:
        item.add("order", move["record_id"], False, f"{move['record_id']} has no effective date",
                 [move["record_id"], move["raw_id"]])
        return item
    if pid is None:
        item.add("subject", move["record_id"], False, f"the subject {move['subject']!r} of {move['record_id']} "
                 "matches no person", [move["record_id"], move["raw_id"]])
        return item
    requests = ctx.store.query_dicts(
        "SELECT w.record_id FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id "
        "WHERE w.kind = 'access_request' AND s.person_id = ? AND w.opened >= ? AND w.opened <= ? "
        "ORDER BY w.opened, w.record_id",
        [pid, eff - timedelta(days=MOVE_DAYS_BEFORE), eff + timedelta(days=MOVE_DAYS_AFTER)])
    for r in requests:
        rec = ctx.record(r["record_id"], ["access_request"])
        if rec is not None:
            walk_request(ctx, item, rec, pid)
    removals = ctx.store.query("SELECT DISTINCT event_id, event_raw_id FROM links WHERE record_system = ? AND "
                               "record_id = ? AND direction = 'remove'", [move["system"], move["record_id"]])
    found = ctx.events_by_key(removals)
    for event_id, raw_id in removals:
        link = f"{move['record_id']} → event {event_id}"
        e = found.get((event_id, raw_id))
        if e is None:
            item.add("removal", link, False, f"removal event {event_id} (raw {raw_id}), linked to the transfer, is "
                     "no longer in the store", [move["record_id"], event_id, raw_id])
            continue
        item.step(event_step("removal", e))
        _same_person(item, link, e, pid, move["record_id"])
        held = f"{e['system']} {e['entitlement_type']} {e['entitlement_name'] or e['entitlement_key']}"
        check_removal(ctx, item, link, held, e, eff, "the transfer took effect", [move["record_id"]])
    if not requests and not removals:
        item.add("provisioning", move["record_id"], False, f"no access request and no removal belongs to "
                 f"{move['record_id']}", [move["record_id"], move["raw_id"]])
    return item


# ---------------------------------------------------------------- supplier onboarding


def _supplier_population(ctx: Context) -> list[str]:
    rows = ctx.store.query("""
      SELECT DISTINCT r.record_id FROM links l
      JOIN wf_current r ON r.system = l.record_system AND r.record_id = l.record_id AND r.kind = 'access_request'
      JOIN workflow_subjects s ON s.raw_id = r.raw_id
      JOIN persons_current p ON p.person_id = s.person_id
      WHERE l.direction = 'grant' AND (lower(p.worker_type) = 'supplier' OR p.supplier_id IS NOT NULL)
      ORDER BY 1""")
    return [r[0] for r in rows]


def _supplier_resolve(ctx: Context, key: str) -> str | None:
    """An access request whose subject is supplier staff."""
    rec = ctx.record(key, ["access_request"])
    p = ctx.person(ctx.subject_person(rec)) if rec else None
    staff = p is not None and ((p["worker_type"] or "").lower() == "supplier" or p["supplier_id"] is not None)
    return rec["record_id"] if rec and staff else None


def _supplier_walk(ctx: Context, key: str) -> Item:
    rec = ctx.record(key, ["access_request"])
    assert rec is not None
    pid = ctx.subject_person(rec)
    item = Item("supplier_onboarding", rec["record_id"], person_id=pid,
                title=f"{rec['record_id']}: {rec['scope']} for {pid or rec['subject']}")
    person = _person(ctx, item, pid)
    supplier_id = (person or {}).get("supplier_id")
    supplier = ctx.record(supplier_id, ["supplier"]) if supplier_id else None
    if supplier is not None:
        item.step(record_step("supplier", supplier))
    grants, _ = walk_request(ctx, item, rec, pid)
    for g in grants:
        link = f"{rec['record_id']} → {g['system']} {g['entitlement_name'] or 'account'} at {when(g['time'])}"
        ev = [rec["record_id"], g["event_id"], supplier_id, (supplier or {}).get("raw_id")]
        if person is None:
            item.add("supplier", link, False, f"the subject of {rec['record_id']} is no person in HR", ev)
        elif not supplier_id:
            item.add("supplier", link, False, f"{pid} is not supplier staff (worker type {person['worker_type']})",
                     ev)
        elif supplier is None:
            item.add("supplier", link, False, f"supplier {supplier_id} of {pid} is not in the supplier register", ev)
        else:
            item.add("supplier", link, *_supplier_covers(ctx, supplier, g["time"]), ev)
    return item


def _supplier_covers(ctx: Context, s: dict[str, Any], t: datetime | None) -> tuple[bool, str]:
    sid, status = s["record_id"], (s["qualification_status"] or "").strip()
    if status.lower() not in ctx.qualified:
        return False, f"supplier {sid} is {status or 'without qualification status'}, not qualified"
    start, end = s["contract_start"], s["contract_end"]
    if t is None:
        return False, "the grant has no time"
    if start is not None and t < start:
        return False, f"granted {when(t)}, before {sid}'s contract started on {when(start)}"
    if end is not None and t >= end + DAY:
        return False, f"granted {when(t)}, after {sid}'s contract ended on {when(end)}"
    return True, f"supplier {sid} {status}, contract {when(start)} – {when(end)} covers {when(t)}"


# ---------------------------------------------------------------- contractor offboarding

_LEAVING = "('termination', 'contract-end')"


def _offboarding_population(ctx: Context) -> list[str]:
    rows = ctx.store.query(f"""
      SELECT DISTINCT r.person_id FROM removal_links r JOIN persons_current p ON p.person_id = r.person_id
      WHERE r.trigger_kind IN {_LEAVING} AND lower(p.worker_type) IN ('contractor', 'supplier')
      ORDER BY 1""")
    return [r[0] for r in rows]


def _offboarding_resolve(ctx: Context, key: str) -> str | None:
    """A person id, email or username, or the id of an HR termination — of someone who left."""
    rec = ctx.record(key, ["hr_event"])
    if rec is not None:
        pid = ctx.subject_person(rec) if (rec["event_type"] or "").lower() == "termination" else None
    else:
        pid = key.strip() if ctx.person(key.strip()) else ctx.person_of(key)
    left = pid is not None and ctx.store.query(
        f"SELECT 1 FROM removal_links WHERE person_id = ? AND trigger_kind IN {_LEAVING} LIMIT 1", [pid])
    return pid if left else None


def _offboarding_walk(ctx: Context, key: str) -> Item:
    person = ctx.person(key)
    assert person is not None
    pid = person["person_id"]
    item = Item("contractor_offboarding", pid, person_id=pid)
    _person(ctx, item, pid)
    rows = ctx.store.query_dicts(
        f"SELECT * FROM removal_links WHERE person_id = ? AND trigger_kind IN {_LEAVING} "
        "ORDER BY due_at, system, account_id, entitlement_type, entitlement", [pid])
    first: dict[tuple, dict[str, Any]] = {}
    for r in rows:  # one deadline per access: the earliest trigger
        first.setdefault((r["system"], r["account_id"], r["entitlement_type"], r["entitlement_id"],
                          r["entitlement"]), r)
    triggers = {r["trigger_raw_id"]: r for r in first.values()}
    for raw_id in triggers:
        rec = ctx.record_by_raw(raw_id)
        if rec is not None:
            item.step(record_step("trigger", rec))
    start = min((r["due_at"] for r in first.values()), default=None)
    item.title = (f"{pid} ({person['worker_type']}) left: " + ", ".join(
        f"{r['trigger_kind']} {r['trigger_record_id']}" for r in triggers.values()) + f" from {when(start)}")
    removals = ctx.events_by_key((r["removal_event_id"], r["removal_raw_id"]) for r in first.values())
    for r in first.values():
        held = (f"{r['system']} account {r['account_id']}" if r["entitlement_type"] == "account" else
                f"{r['system']} {r['entitlement_type']} {r['entitlement']} of {r['account_id']}")
        link = f"{r['trigger_record_id']} → {held}"
        ev = [r["trigger_record_id"], r["trigger_raw_id"], r["grant_event_id"]]
        what = f"{r['trigger_kind']} {r['trigger_record_id']}"
        if r["removal_event_id"]:
            e = removals.get((r["removal_event_id"], r["removal_raw_id"]))
            if e is None:
                item.add("removal", link, False, f"removal event {r['removal_event_id']} (raw {r['removal_raw_id']}) "
                         "is no longer in the store", [*ev, r["removal_event_id"], r["removal_raw_id"]])
                continue
            item.step(event_step("removal", e))
            _same_person(item, link, e, pid, r["trigger_record_id"])
            check_removal(ctx, item, link, held, e, r["due_at"], what, ev)
        else:
            check_removal(ctx, item, link, held, None, r["due_at"], what, ev)
    if not first:
        item.add("removal", pid, False, f"no access of {pid} is known at a termination or contract end", [pid])
    return item


# ---------------------------------------------------------------- emergency exception


def _exception_population(ctx: Context) -> list[str]:
    rows = ctx.store.query("SELECT DISTINCT record_id FROM wf_current WHERE kind = 'exception' ORDER BY 1")
    out = []
    for (rid,) in rows:
        exc = ctx.record(rid, ["exception"])
        pid = ctx.subject_person(exc) if exc else None
        if exc is not None and pid is not None and _exception_grants(ctx, exc, pid, _renewals(ctx, exc, pid)):
            out.append(rid)
    return out


def _exception_resolve(ctx: Context, key: str) -> str | None:
    rec = ctx.record(key, ["exception"])
    return rec["record_id"] if rec else None


def _renewals(ctx: Context, exc: dict[str, Any], pid: str) -> list[dict[str, Any]]:
    """The exception and the approved exceptions renewing it, in order (same person and scope, starting at most
    ``RENEWAL_GAP`` after the previous expiry, expiring later)."""
    chain = [exc]
    others = [ctx.record(r[0], ["exception"]) for r in ctx.store.query(
        "SELECT DISTINCT w.record_id FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id "
        "WHERE w.kind = 'exception' AND s.person_id = ? AND lower(trim(w.scope)) = lower(trim(?)) "
        "AND w.record_id <> ?", [pid, exc["scope"] or "", exc["record_id"]])]
    while True:
        last = chain[-1]
        nxt = [o for o in others if o and o not in chain and last["expires"] and o["expires"]
               and o["expires"] > last["expires"] and (o["effective"] or o["decided"])
               and (o["effective"] or o["decided"]) <= last["expires"] + RENEWAL_GAP
               and (o["status"] or "").lower() not in ctx.rejected_statuses]
        if not nxt:
            return chain
        chain.append(min(nxt, key=lambda o: o["expires"]))


def _exception_grants(ctx: Context, exc: dict[str, Any], pid: str,
                      chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grants to the person's accounts of what the exception's scope names, from ``window_days`` before it
    took effect to ``window_days`` after its last renewal expired."""
    start = exc["effective"] or exc["decided"] or exc["opened"]
    end = chain[-1]["expires"]
    if start is None:
        return []
    end = (end or ctx.as_of or start) + timedelta(days=ctx.window_days)
    rows = ctx.store.query_dicts(
        "SELECT DISTINCT e.event_id, e.raw_id FROM (" + ctx.events_sql + ") e "
        "JOIN accounts a ON a.system = e.system AND a.account_id = e.account_id "
        "JOIN wf_scope_targets t ON t.raw_id = ? "
        "WHERE a.person_id = ? AND e.direction = 'grant' AND coalesce(e.outcome, '') <> 'failure' "
        "AND e.time >= ? AND e.time <= ? AND e.system LIKE t.systems AND " + ENT_MATCH,
        [exc["raw_id"], pid, start - timedelta(days=ctx.window_days), end])
    return list(ctx.events_by_key((r["event_id"], r["raw_id"]) for r in rows).values())


def _exception_walk(ctx: Context, key: str) -> Item:
    exc = ctx.record(key, ["exception"])
    assert exc is not None
    rid = exc["record_id"]
    pid = ctx.subject_person(exc)
    item = Item("emergency_exception", rid, person_id=pid,
                title=f"{rid}: {exc['scope']} for {pid or exc['subject']}, valid {when(exc['effective'])} – "
                      f"{when(exc['expires'])}")
    _person(ctx, item, pid)
    item.step(record_step("exception", exc))
    approvals = ctx.approvals(exc)
    approved_at = check_approval(item, exc, approvals)
    check_approvers(ctx, item, exc, approvals, pid)
    if pid is None:
        item.add("subject", rid, False, f"the subject {exc['subject']!r} of {rid} matches no person",
                 [rid, exc["raw_id"]])
        return item
    chain = _renewals(ctx, exc, pid)
    for renewal in chain[1:]:
        item.step(record_step("exception", renewal))
    grants = {(g["event_id"], g["raw_id"]): g for g in _exception_grants(ctx, exc, pid, chain)}
    # the requests raised under the exception (they cite its id): their own chain, scope also against it
    requests = ctx.store.query_dicts(
        "SELECT DISTINCT w.record_id, w.scope, w.attributes_json FROM wf_current w "
        "JOIN workflow_subjects s ON s.raw_id = w.raw_id WHERE w.kind = 'access_request' AND s.person_id = ?", [pid])
    for r in requests:
        if cites(r["scope"], rid) or cites(r["attributes_json"], rid):
            rec = ctx.record(r["record_id"], ["access_request"])
            if rec is not None:
                for g in walk_request(ctx, item, rec, pid, [(exc["scope"] or "(no scope)", exc["raw_id"])])[0]:
                    grants.setdefault((g["event_id"], g["raw_id"]), g)
    if not grants:
        item.add("provisioning", rid, False, f"no grant of '{exc['scope']}' to {pid}'s accounts is found around "
                 f"{rid}", [rid, exc["raw_id"]])
    windows = [(c["effective"] or c["decided"], c["expires"], c["record_id"]) for c in chain]
    final = chain[-1]
    for g in sorted(grants.values(), key=lambda g: (g["time"] is None, g["time"] or final["expires"])):
        item.step(event_step("grant", g))
        held = f"{g['system']} {g['entitlement_type']} {g['entitlement_name'] or g['entitlement_key']} of {g['account_id']}"
        link = f"{rid} → {held} granted {when(g['time'])}"
        ev = [rid, g["event_id"], g["raw_id"]]
        if g["time"] is None:
            item.add("window", link, False, "the grant has no time", ev)
            continue
        inside = [w for w in windows if w[0] is not None and w[0] <= g["time"]
                  and (w[1] is None or g["time"] < w[1] + DAY)]
        where = (f"inside {inside[0][2]} ({when(inside[0][0])} – {when(inside[0][1])})" if inside else
                 f"outside {rid}'s validity ({when(windows[0][0])} – {when(final['expires'])})")
        item.add("window", link, bool(inside), f"granted {when(g['time'])}, {where}", ev)
        if approved_at is not None and g["time"] < approved_at:
            item.add("order", link, False, f"granted {when(g['time'])}, before {rid} was approved at "
                     f"{when(approved_at)}", ev)
        elif approved_at is not None:
            item.add("order", link, True, f"{rid} approved {when(approved_at)} ≤ granted {when(g['time'])}", ev)
        if final["expires"] is None:
            item.add("removal", link, False, f"{final['record_id']} has no expiry", ev)
            continue
        removal = ctx.first_removal(g)
        if removal is not None:
            item.step(event_step("removal", removal))
        check_removal(ctx, item, link, held, removal, final["expires"], f"{final['record_id']} expired", ev)
    return item


# ---------------------------------------------------------------- shared


def _person(ctx: Context, item: Item, pid: str | None) -> dict[str, Any] | None:
    p = ctx.person(pid)
    if p is not None:
        item.step(person_step(p))
    return p


def _same_person(item: Item, link: str, e: dict[str, Any], pid: str, rid: str) -> None:
    ev = [rid, e["event_id"], e["raw_id"]]
    if e["person_id"] == pid:
        item.add("subject", link, True, f"account {e['account_id']} in {e['system']} is {pid}'s", ev)
    else:
        item.add("subject", link, False, f"account {e['account_id']} in {e['system']} resolves to "
                 f"{e['person_id'] or 'no person'}, not {pid}", ev)


@dataclass(frozen=True)
class Scenario:
    population: Callable[[Context], list[str]]
    resolve: Callable[[Context, str], str | None]
    walk: Callable[[Context, str], Item]
    what: str


REGISTRY: dict[str, Scenario] = {
    "role_change": Scenario(_role_change_population, _role_change_resolve, _role_change_walk,
                            "an HR transfer id (HRE-…)"),
    "supplier_onboarding": Scenario(_supplier_population, _supplier_resolve, _supplier_walk,
                                    "an access request id of supplier staff (RITM…)"),
    "contractor_offboarding": Scenario(_offboarding_population, _offboarding_resolve, _offboarding_walk,
                                       "a person id, email or username, or an HR termination id"),
    "emergency_exception": Scenario(_exception_population, _exception_resolve, _exception_walk,
                                    "an exception id (EXC-…)"),
}


# ---------------------------------------------------------------- running, sealing, listing


@dataclass
class WalkthroughResult:
    """One walkthrough run: the items walked, the scenarios that had none, and where it is sealed."""

    walkthrough_id: str
    seed: int
    started: datetime
    finished: datetime | None = None
    as_of: datetime | None = None
    checkpoint_size: int | None = None
    items: list[Item] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    ledger_index: int | None = None

    @property
    def passed(self) -> bool:
        """Every check of every item holds, and at least one item was walked."""
        return bool(self.items) and all(i.passed for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "walkthrough_id": self.walkthrough_id, "seed": self.seed, "passed": self.passed,
            "started": self.started.isoformat(), "finished": self.finished.isoformat() if self.finished else None,
            "as_of": self.as_of.isoformat() if self.as_of else None, "checkpoint_size": self.checkpoint_size,
            "method": "per scenario: random.Random(f'{seed}:{scenario}').choice(sorted population)",
            "items": [i.as_dict() for i in self.items], "skipped": self.skipped,
            "ledger_index": self.ledger_index,
        }


def _scenarios_for(item: str | None, scenarios: Sequence[str] | None, ctx: Context) -> list[tuple[str, str | None]]:
    chosen = list(scenarios or SCENARIOS)
    bad = [s for s in chosen if s not in REGISTRY]
    if bad:
        raise WalkthroughError(f"unknown scenario {bad[0]!r} (choose {', '.join(SCENARIOS)})")
    if item is None:
        return [(s, None) for s in chosen]
    if not item.strip():
        raise WalkthroughError("--item is empty")
    found = [(s, k) for s in chosen if (k := REGISTRY[s].resolve(ctx, item)) is not None]
    if not found:
        hint = "; ".join(f"{s}: {REGISTRY[s].what}" for s in chosen)
        raise WalkthroughError(f"no item {item!r} in the store ({hint})")
    if len(found) > 1:
        raise WalkthroughError(f"{item!r} is an item of {' and '.join(s for s, _ in found)}: pass --scenario")
    return found


def open_context(store: Store, config: Config | str | dict | None = None, policy: Any = None) -> Context:
    """A walkthrough context on a linked store: the linking rules, the access policy (a ``Policy``, a path, or
    None for the packaged one) and the store's ledger. Close it after use."""
    from accessproof.controls.policy import as_policy

    pol = as_policy(policy)
    return Context(store, as_config(config), approver_courses=pol.approver_training,
                   qualified_statuses=pol.qualified_supplier_statuses)


def pick(ctx: Context, scenario: str, seed: int) -> tuple[str | None, int]:
    """(the item the seed picks, the population size): ``random.Random(f"{seed}:{scenario}")`` choosing from
    the sorted population, so a seed names the same item for as long as the population is the same. The
    population is computed once per context."""
    keys = ctx.populations.get(scenario)
    if keys is None:
        keys = ctx.populations[scenario] = REGISTRY[scenario].population(ctx)
    return (random.Random(f"{seed}:{scenario}").choice(keys) if keys else None), len(keys)


def run_walkthrough(store: Store, *, seed: int | None = None, scenarios: Sequence[str] | None = None,
                    item: str | None = None, config: Config | str | dict | None = None,
                    policy: Any = None, relink: bool = False, seal: bool = True) -> WalkthroughResult:
    """Walk one item of each scenario (or the named ``item``) end to end; seal and return the result.

    ``seed`` makes the picks reproducible (a random one is drawn and recorded when None). Identity resolution
    and linking are run when their tables are missing, or always with ``relink``. ``policy`` gives the approver
    training and the qualified supplier statuses (see ``open_context``). Raises ``WalkthroughError`` for an
    unknown scenario or item.
    """
    from accessproof.controls.prelude import ensure_linked

    cfg = as_config(config)
    if relink:
        from accessproof.linking.link import link_all

        link_all(store, cfg)
    else:
        ensure_linked(store, cfg)
    started = datetime.now(UTC)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    result = WalkthroughResult(f"wt-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}", seed, started)
    ctx = open_context(store, cfg, policy)
    try:
        result.as_of = ctx.as_of
        for scenario, key in _scenarios_for(item, scenarios, ctx):
            population = None
            if key is None:
                key, population = pick(ctx, scenario, seed)
                if key is None:
                    result.skipped[scenario] = "no item of this scenario in the store"
                    continue
            walked = REGISTRY[scenario].walk(ctx, key)
            walked.population = population
            result.items.append(walked)
        ctx.prove(result.items)
        cp = ctx.checkpoint()
        result.checkpoint_size = cp[0] if isinstance(cp, tuple) else None
        result.finished = datetime.now(UTC)
        if seal:
            result.ledger_index = seal_walkthrough(ctx, result)
    finally:
        ctx.close()
    return result


def seal_walkthrough(ctx: Context, result: WalkthroughResult) -> int:
    """Seal the result like a control run: one entry, its payload kept in ``ledger_payloads``; a checkpoint
    is signed after it when a key exists."""
    led = ctx.ledger
    payload = orjson.dumps(result.as_dict(), option=orjson.OPT_SORT_KEYS, default=str)
    retention = led.policy.classify("control_result", SOURCE, None) if led.policy else "control_results"
    with led.storage.transaction():
        led.storage.put_payloads([(RECORD_TYPE, result.walkthrough_id, payload)])
        index = led.seal_columns([RECORD_TYPE], [result.walkthrough_id], [SOURCE], [result.finished], [payload],
                                 kinds=["walkthrough"], retentions=[retention])
    if led.signer is not None:
        led.checkpoint()
    return index


def list_walkthroughs(store: Store, limit: int | None = 50) -> list[dict[str, Any]]:
    """Sealed walkthroughs, newest first: id, ledger index, when, seed, items and failed checks — or that the
    payload was purged under retention (the entry stays)."""
    if not S.table_exists(store, "ledger_entries"):
        return []
    has_payloads = S.table_exists(store, "ledger_payloads")
    join = ("LEFT JOIN ledger_payloads p ON p.record_type = e.record_type AND p.record_id = e.record_id"
            if has_payloads else "")
    data = "p.data" if has_payloads else "NULL"
    rows = store.query(
        f"SELECT e.idx, e.record_id, e.record_time, {data} FROM ledger_entries e {join} "
        f"WHERE e.record_type = ? ORDER BY e.idx DESC" + (f" LIMIT {int(limit)}" if limit else ""), [RECORD_TYPE])
    out = []
    for idx, wid, t, payload in rows:
        row: dict[str, Any] = {"walkthrough_id": wid, "ledger_index": int(idx), "finished": t}
        if payload is None:
            row["payload"] = "purged"
        else:
            doc = orjson.loads(bytes(payload))
            failed = [f"{i['scenario']}:{i['item']}:{c['check']}" for i in doc.get("items", [])
                      for c in i.get("checks", []) if not c["passed"]]
            row.update(payload="present", seed=doc.get("seed"), passed=doc.get("passed"),
                       items=[f"{i['scenario']}:{i['item']}" for i in doc.get("items", [])], failed=failed)
        out.append(row)
    return out
