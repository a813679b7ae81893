"""What happens in the simulated company, before any vendor format: requests and their approvals, grants
and removals, exceptions, changes, training — and the injected control failures.

The plan is abstract (people, entitlements, times); ``_render`` turns it into vendor records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from accessproof.demo._common import (
    aws_id,
    berlin_date,
    business,
    hex32,
    hours,
    is_workday,
    okta_id,
    poisson,
    random_workday,
    utc,
    work_time,
)
from accessproof.demo._world import (
    ACCOUNT_ENTS,
    BASE,
    BROADER,
    DOMAIN,
    ENDING_SUPPLIER,
    EXCEPTION_ENTS,
    HOSTILE_FORMULA,
    HOSTILE_NAME,
    OPTIONAL,
    SUPPLIER_BASE,
    Company,
    Ent,
    Person,
    _Names,
    public_ip,
)

CLASSES = (
    "provisioning_without_approval",
    "provisioning_before_approval",
    "provisioning_after_rejection",
    "scope_beyond_approval",
    "late_revocation",
    "missing_revocation",
    "exception_expired_access_remains",
    "supplier_access_after_contract_end",
    "shared_account",
    "requester_is_approver",
    "approver_is_executor",
    "approver_training_expired",
    "orphan_account",
    "ownerless_service_account",
)
APPROVER_COURSE = "SOP-IT-012 Access Management for Approvers"
GXP_COURSE = "SOP-QA-001 GxP Fundamentals"


# ------------------------------------------------------------------ records


@dataclass(eq=False)
class Approval:
    sys_id: str
    approver: Person
    state: str  # approved | rejected | requested
    created: datetime
    decided: datetime | None
    comment: str = ""


@dataclass(eq=False)
class Ritm:
    number: str
    sys_id: str
    subject: Person
    ent: Ent
    opened_by: Person
    opened: datetime
    purpose: str  # joiner | adhoc | mover | exception
    approvals: list[Approval]
    decision: str  # approved | rejected | requested
    decided: datetime | None
    start: date | None = None
    end: date | None = None
    grant_at: datetime | None = None
    executor: Person | None = None  # None: the provisioning automation
    carry: bool = False  # whether the grant carries the ticket number where the system can carry one
    granted: Ent | None = None  # what was actually granted (scope failures differ from ``ent``)
    short_description: str = ""
    on_behalf: bool = False
    tags: list[str] = field(default_factory=list)
    exception: Exc | None = None
    end_removal: str | None = None  # ontime | late | missing (time-bound access whose end date is due)
    end_removal_at: datetime | None = None
    end_failure: Failure | None = None

    @property
    def state(self) -> str:
        if self.decision == "rejected":
            return "Closed Incomplete"
        if self.decision == "requested":
            return "Open"
        return "Closed Complete" if self.grant_at is not None else "Work in Progress"


@dataclass(eq=False)
class Change:
    cid: str
    title: str
    subject: str
    entitlement: str
    requested_by: Person
    approvers: list[Person]
    opened: datetime
    approved: datetime
    implemented: datetime | None
    status: str


@dataclass(eq=False)
class Exc:
    eid: str
    subject: Person
    system: str
    ent: Ent
    justification: str
    control: str
    owner: Person
    approvers: list[Person]
    approved_on: date
    valid_from: date
    expiry: date
    status: str = "Approved"
    ritm: Ritm | None = None
    outcome: str = "active"  # active | removed | renewed | remains
    renews: Exc | None = None


@dataclass(eq=False)
class Training:
    rid: str
    trainee: Person
    course: str
    completed: date
    valid_until: date
    status: str


@dataclass(eq=False)
class Account:
    """An account of no HR person: orphan, shared (supplier) or service account."""

    key: str
    system: str
    kind: str  # orphan | shared | service
    name: str
    uid: str
    display: str
    owner: Person | None = None
    supplier: str | None = None
    users: list[Person] = field(default_factory=list)
    change: Change | None = None
    created: datetime | None = None
    policy: str | None = None
    purpose: str = ""
    ip: str = ""
    ua: str = ""


@dataclass(eq=False)
class Op:
    """One thing done in an identity system, before it is written in the vendor's format."""

    t: datetime
    kind: str  # grant | revoke | offboard | suspend | unsuspend | svc_create | token_create | token_revoke
    system: str
    holder: Person | Account
    ent: Ent | None = None
    executor: Person | None = None  # None: automation
    ref_kind: str = ""  # ritm | change | hr | exception | contract_end | end_date | transfer | ""
    ref: str = ""
    carry: bool = False
    ritm: Ritm | None = None
    token: tuple[str, str] | None = None  # (token id, token name)
    failure: Failure | None = None


@dataclass(eq=False)
class Failure:
    cls: str
    data: dict


@dataclass
class HrEvent:
    person: Person
    type: str  # Hire | Termination | Transfer | Leave | Return
    effective: date
    entered: datetime
    entered_by: Person
    eid: str = ""


@dataclass
class Plan:
    company: Company
    ritms: list[Ritm]
    changes: list[Change]
    exceptions: list[Exc]
    training: list[Training]
    hr_events: list[HrEvent]
    accounts: list[Account]
    ops: list[Op]
    failures: list[Failure]
    pre_holdings: list[tuple[Person, Ent, datetime]]
    hostile: list[dict]
    quirks: list[dict]
    tokens: list[tuple[str, str, Change, Person]] = field(default_factory=list)


# ------------------------------------------------------------------ planner


def count_for(rate: float, pool: int, floor: int) -> int:
    """How many cases to inject: ``rate`` of the pool, at least ``floor`` when the rate is positive."""
    if rate <= 0 or pool <= 0:
        return 0
    return min(pool, max(floor, round(rate * pool)))


class Planner:
    def __init__(self, rng: random.Random, company: Company, rates, months: int):
        self.rng = rng
        self.c = company
        self.rates = rates
        self.months = months
        self.ritms: list[Ritm] = []
        self.ever: dict[str, set[str]] = {p.pid: set() for p in company.people}
        self.ops: list[Op] = []
        self.failures: list[Failure] = []
        self.pre: list[tuple[Person, Ent, datetime]] = []
        self.hr_events: list[HrEvent] = []
        self.changes: list[Change] = []
        self.exceptions: list[Exc] = []
        self.training: list[Training] = []
        self.accounts: list[Account] = []
        self.hostile: list[dict] = []
        self.quirks: list[dict] = []
        self.tokens: list[tuple[str, str, Change, Person]] = []
        self.tainted: set[str] = set()  # persons used for person-level failures
        self._ritm_no = 10000

    # -------------------------------------------------------------- helpers

    def owner(self, ent: Ent) -> Person | None:
        if not ent.owner_role:
            return None
        return self.c.heads[ent.owner_role.split(":", 1)[1]]

    def approvers_for(self, subject: Person, ent: Ent, opened_by: Person, d: date) -> list[Person]:
        chain = [subject.manager_on(d)]
        if ent.privileged:
            chain.append(self.owner(ent))
        out: list[Person] = []
        for a in chain:
            while a is not None and (a is subject or a is opened_by or a in out):
                a = a.manager
            if a is None:
                ceo = self.c.ceo
                a = ceo if ceo is not subject and ceo is not opened_by and ceo not in out else None
            if a is not None:
                out.append(a)
        return out

    def base_ents(self, p: Person, bu: str | None = None, team: str | None = None) -> list[Ent]:
        """Account and role-based entitlements of a person in the systems they use."""
        table = SUPPLIER_BASE[p.supplier] if p.supplier else BASE[bu or p.bu]
        out: list[Ent] = []
        for system in p.systems:
            if system != "github" or not p.supplier:
                out.append(self.c.cat[ACCOUNT_ENTS[system]])
            for key in table.get(system, []):
                out.append(self.c.cat[key])
            t = team if bu is not None else p.team
            if system == "github" and not p.supplier and (bu or p.bu) == "R&D" and t:
                out.append(self.c.cat[f"GitHub team: {t}"])
        return out

    def admin_for(self, subject: Person | None, exclude: tuple = ()) -> Person:
        choices = [a for a in self.c.admins if a is not subject and a not in exclude]
        return self.rng.choice(choices)

    def new_ritm(self, subject: Person, ent: Ent, opened_by: Person, opened: datetime, purpose: str,
                 decision: str = "approved", start: date | None = None, end: date | None = None,
                 short: str = "", on_behalf: bool = False) -> Ritm:
        rng = self.rng
        self._ritm_no += 1
        apprs = self.approvers_for(subject, ent, opened_by, opened.date())
        approvals: list[Approval] = []
        t = opened + timedelta(seconds=rng.randrange(2, 9))
        final = decision
        decided: datetime | None = None
        for i, a in enumerate(apprs):
            created = t
            when = business(rng, created + hours(rng, 0.5, 30 if i == 0 else 20))
            if final == "requested" or when >= utc(self.c.end):
                approvals.append(Approval(hex32(rng), a, "requested", created, None))
                final = "requested"
                continue
            if (final == "rejected" and i == len(apprs) - 1) or (final == "rejected" and rng.random() < 0.6):
                approvals.append(Approval(hex32(rng), a, "rejected", created, when, self.reject_comment()))
                decided = when
                break
            approvals.append(Approval(hex32(rng), a, "approved", created, when, self.approve_comment()))
            decided = when
            t = when + timedelta(seconds=rng.randrange(1, 5))
        if final == "rejected" and (not approvals or approvals[-1].state != "rejected"):
            final = "approved"
        r = Ritm(number=f"RITM{self._ritm_no:07d}", sys_id=hex32(rng), subject=subject, ent=ent, opened_by=opened_by,
                 opened=opened, purpose=purpose, approvals=approvals, decision=final,
                 decided=decided if final != "requested" else None, start=start or opened.date(), end=end,
                 short_description=short or f"Access request: {ent.key}", on_behalf=on_behalf)
        self.ritms.append(r)
        self.ever[subject.pid].add(ent.key)
        return r

    def approve_comment(self) -> str:
        return self.rng.choice(["", "", "", "Approved", "OK", "Approved - needed for current project",
                                "Approved for the duration of the project", "Agreed with line manager"])

    def reject_comment(self) -> str:
        return self.rng.choice(["Not required for the role", "Please use the read-only group instead",
                                "Rejected: no business justification", "Duplicate request"])

    def schedule_grant(self, r: Ritm, not_before: datetime | None = None) -> None:
        """Approved requests are provisioned within hours, by automation or an IT admin."""
        rng = self.rng
        if r.decision != "approved" or r.decided is None:
            return
        system = r.ent.system
        auto = system != "github" and rng.random() < (0.65 if system == "okta" else 0.6)
        r.executor = None if auto else self.admin_for(r.subject, tuple(a.approver for a in r.approvals))
        t = r.decided + hours(rng, 0.05, 0.6) if auto else business(rng, r.decided + hours(rng, 0.5, 6))
        if not_before and t < not_before:
            t = not_before + hours(rng, 0.1, 0.5)
        if t >= utc(self.c.end) - timedelta(hours=1):
            return
        r.grant_at = t
        r.granted = r.ent
        # where the ticket can be seen: Okta debugData, the AWS session name (automation) or the user's tags
        if system == "okta":
            r.carry = rng.random() < (0.85 if auto else 0.35)
        else:
            r.carry = system == "aws" and (auto or rng.random() < 0.5)

    # -------------------------------------------------------------- lifecycle

    def hr(self) -> None:
        rng, c = self.rng, self.c
        start, end = c.start, c.end
        for p in c.people:
            if start <= p.hire < end:
                self.hr_events.append(HrEvent(p, "Hire", p.hire, work_time(rng, p.hire - timedelta(days=rng.randrange(14, 30))),
                                              rng.choice(c.hr)))
            if p.term and start <= p.term < end and p.hr_term:
                lead = rng.choice([0, 1, 2, 3, 5, 7, 10, 14])
                self.hr_events.append(HrEvent(p, "Termination", p.term,
                                              work_time(rng, p.term - timedelta(days=lead), 7, 11 if lead == 0 else 17),
                                              rng.choice(c.hr)))
            if p.transfer:
                self.hr_events.append(HrEvent(p, "Transfer", p.transfer.on,
                                              work_time(rng, p.transfer.on - timedelta(days=rng.randrange(5, 20))),
                                              rng.choice(c.hr)))
            if p.leave:
                self.hr_events.append(HrEvent(p, "Leave", p.leave[0],
                                              work_time(rng, p.leave[0] - timedelta(days=rng.randrange(3, 15))),
                                              rng.choice(c.hr)))
                self.hr_events.append(HrEvent(p, "Return", p.leave[1],
                                              work_time(rng, p.leave[1] - timedelta(days=rng.randrange(2, 10))),
                                              rng.choice(c.hr)))
        self.hr_events.sort(key=lambda e: (e.entered, e.person.pid, e.type))
        for i, e in enumerate(self.hr_events, 1):
            e.eid = f"HRE-{i:06d}"
            if e.type == "Hire":
                e.person.hire_event = e.eid
            elif e.type == "Termination":
                e.person.term_event = e.eid
            elif e.type == "Transfer":
                e.person.transfer.hr_event = e.eid
            elif e.type == "Leave":
                e.person.leave_events = (e.eid, "")
            elif e.type == "Return":
                e.person.leave_events = (e.person.leave_events[0], e.eid)

    def decide_supplier_end(self) -> None:
        """Staff of the supplier whose contract ends: most are offboarded, some keep their access (and HR
        was never told, so no termination exists for them: only the contract end reveals it)."""
        staff = [p for p in self.c.people if p.supplier == ENDING_SUPPLIER]
        k = count_for(self.rates.supplier_access_after_contract_end, len(staff), self.rates.min_instances)
        k = min(k, len(staff) - 1)
        for p in self.rng.sample(staff, k):
            p.hr_term = False
            self.tainted.add(p.pid)

    def preexisting(self) -> None:
        rng, c = self.rng, self.c
        for p in c.people:
            if p.hire >= c.start:
                continue
            bu = p.transfer.old_bu if p.transfer else p.bu
            team = p.transfer.old_team if p.transfer else p.team
            base = self.base_ents(p, bu, team)
            t0 = utc(p.hire, 9)
            for e in base:
                self.pre.append((p, e, t0 + timedelta(minutes=rng.randrange(0, 600))))
                self.ever[p.pid].add(e.key)
            if p.role == "admin":
                for key in ("Okta group: okta-admins", "AWS group: ops-admins"):
                    self.pre.append((p, c.cat[key], t0 + timedelta(days=30)))
                    self.ever[p.pid].add(key)
            opts = [k for k in OPTIONAL["supplier" if p.supplier else bu]
                    if c.cat[k].system in p.systems and not c.cat[k].privileged and k not in self.ever[p.pid]]
            for k in rng.sample(opts, min(len(opts), rng.randrange(0, 3))):
                when = t0 + timedelta(days=rng.randrange(1, max(2, (c.start - p.hire).days)))
                if when >= utc(c.start):
                    continue
                self.pre.append((p, c.cat[k], when))
                self.ever[p.pid].add(k)

    def joiners(self) -> None:
        rng, c = self.rng, self.c
        for p in c.people:
            if not (c.start <= p.hire < c.end):
                continue
            opened_day = p.hire - timedelta(days=rng.randrange(5, 11))
            while not is_workday(opened_day):
                opened_day -= timedelta(days=1)
            coordinator = rng.choice(c.desk)
            account_grant: dict[str, datetime] = {}
            for e in self.base_ents(p):
                opened = work_time(rng, opened_day)
                r = self.new_ritm(p, e, coordinator, opened, "joiner", start=p.hire,
                                  short=f"New hire onboarding ({p.name}): {e.key}")
                after = account_grant.get(e.system) if e.kind != "account" else None
                if e.kind != "account" and e.system not in account_grant:
                    continue  # account not provisioned: leave the entitlement pending
                self.schedule_grant(r, after)
                if e.kind == "account" and r.grant_at:
                    account_grant[e.system] = r.grant_at

    def movers(self) -> None:
        rng, c = self.rng, self.c
        for p in c.people:
            tr = p.transfer
            if not tr:
                continue
            old = [e for e in self.base_ents(p, tr.old_bu, tr.old_team) if e.kind != "account"]
            new = [e for e in self.base_ents(p, tr.new_bu, tr.new_team) if e.kind != "account"]
            old_keys = {e.key for e in old}
            new_keys = {e.key for e in new}
            for e in new:
                if e.key in old_keys:
                    continue
                opened = work_time(rng, random_workday(rng, tr.on - timedelta(days=7), tr.on - timedelta(days=1)))
                r = self.new_ritm(p, e, p, opened, "mover", start=tr.on, short=f"Role change to {tr.new_title}: {e.key}")
                self.schedule_grant(r)
            for e in old:
                if e.key in new_keys:
                    continue
                t = utc(tr.on, 12) + hours(rng, 0, 9)
                auto = e.system != "github" and rng.random() < 0.5
                self.ops.append(Op(t, "revoke", e.system, p, e, executor=None if auto else self.admin_for(p),
                                   ref_kind="transfer", ref=tr.hr_event))

    def leaves(self) -> None:
        rng = self.rng
        for p in self.c.people:
            if not p.leave:
                continue
            lo, hi = p.leave
            self.ops.append(Op(utc(lo, 12) + hours(rng, 0, 8), "suspend", "okta", p, ref_kind="hr",
                               ref=p.leave_events[0], executor=None))
            self.ops.append(Op(utc(hi, 5) + hours(rng, 0, 2), "unsuspend", "okta", p, ref_kind="hr",
                               ref=p.leave_events[1], executor=None))

    def adhoc(self) -> None:
        rng, c = self.rng, self.c
        end_utc = utc(c.end)
        for p in c.people:
            if p.role == "ceo":
                continue
            lo = max(c.start + timedelta(days=1), p.hire + timedelta(days=7))
            hi = c.end - timedelta(days=1)
            if p.term:
                hi = min(hi, p.term - timedelta(days=14))
            if hi <= lo:
                continue
            k = poisson(rng, 0.45 * (hi - lo).days / 30.4)
            for _ in range(k):
                d = random_workday(rng, lo, hi)
                if p.leave and p.leave[0] - timedelta(days=3) <= d <= p.leave[1]:
                    continue
                if p.transfer and p.transfer.on - timedelta(days=10) <= d < p.transfer.on + timedelta(days=3):
                    continue
                bu = p.bu_on(d)
                opts = [k2 for k2 in OPTIONAL["supplier" if p.supplier else bu]
                        if c.cat[k2].system in p.systems and k2 not in self.ever[p.pid]]
                if not opts:
                    continue
                ent = c.cat[rng.choice(opts)]
                opened = work_time(rng, d)
                mgr = p.manager_on(d)
                on_behalf = (not p.supplier and mgr is not None and mgr.role in ("lead", "head")
                             and rng.random() < 0.3)
                opener = mgr if on_behalf else p
                if opened > end_utc - timedelta(days=4):
                    decision = "requested"
                else:
                    decision = "rejected" if rng.random() < (0.2 if ent.privileged else 0.08) else "approved"
                end = None
                if decision == "approved" and not ent.privileged and rng.random() < 0.22:
                    end = d + timedelta(days=rng.randrange(14, 50))
                short = (f"Temporary access until {end.isoformat()}: {ent.key}" if end
                         else f"Access request: {ent.key}")
                r = self.new_ritm(p, ent, opener, opened, "adhoc", decision=decision, start=d, end=end, short=short,
                                  on_behalf=on_behalf)
                self.schedule_grant(r)

    def offboarding(self) -> None:
        """Terminations are removed in every system the same day (the clean case)."""
        rng, c = self.rng, self.c
        for p in c.people:
            if not p.term or not (c.start <= p.term < c.end) or not p.hr_term:
                continue
            ref_kind = "contract_end" if p.supplier == ENDING_SUPPLIER else "hr"
            ref = p.term_event
            for system in p.systems:
                t = utc(p.term, 12) + hours(rng, 0, 10)
                auto = system != "github" and rng.random() < 0.55
                self.ops.append(Op(t, "offboard", system, p, executor=None if auto else self.admin_for(p),
                                   ref_kind=ref_kind, ref=ref))

    def end_dates(self) -> None:
        for r in self.ritms:
            if r.end is None or r.grant_at is None or r.end >= self.c.end:
                continue
            p = r.subject
            if p.term and p.term <= r.end:
                continue
            r.end_removal = "ontime"

    def renumber(self) -> None:
        """ServiceNow numbers request items in the order they are opened."""
        self.ritms.sort(key=lambda r: (r.opened, r.sys_id))
        for i, r in enumerate(self.ritms, 10001):
            r.number = f"RITM{i:07d}"

    # -------------------------------------------------------------- governance records

    def exception_records(self) -> None:
        rng, c = self.rng, self.c
        n = max(8, round(0.05 * len(c.people)))
        quality, it = c.heads["Quality"], c.heads["IT"]
        candidates = [p for p in c.people if p.role == "staff" and p.term is None and p.transfer is None
                      and p.leave is None and p.hire < c.start and p.pid not in self.tainted
                      and p.supplier != ENDING_SUPPLIER]
        rng.shuffle(candidates)
        made = 0
        seq = 0
        for p in candidates:
            if made >= n:
                break
            options = [e for e in EXCEPTION_ENTS if e[1] in p.systems and e[0] not in self.ever[p.pid]
                       and not (p.supplier and e[1] == "github")]
            if not options:
                continue
            key, system, justification, control = rng.choice(options)
            ent = c.cat[key]
            d = random_workday(rng, c.start + timedelta(days=7), c.end - timedelta(days=60))
            seq += 1
            eid = f"EXC-{seq:04d}"
            opened = work_time(rng, d - timedelta(days=3))
            r = self.new_ritm(p, ent, p, opened, "exception",
                              short=f"Access under approved exception {eid}: {ent.key}")
            if r.decision != "approved":
                continue
            self.schedule_grant(r)
            if r.grant_at is None:
                continue
            valid_from = r.grant_at.date()
            room = (c.end - timedelta(days=10) - valid_from).days
            if rng.random() < 0.8 and room > 21:
                expiry = valid_from + timedelta(days=rng.randrange(21, min(100, room)))
            else:
                expiry = c.end + timedelta(days=rng.randrange(5, 90))
            exc = Exc(eid=eid, subject=p, system={"aws": "AWS", "okta": "Okta", "github": "GitHub"}[system],
                      ent=ent, justification=justification, control=control, owner=c.security,
                      approvers=[quality, it], approved_on=(opened + timedelta(days=1)).date(),
                      valid_from=valid_from, expiry=expiry, ritm=r)
            r.exception = exc
            self.exceptions.append(exc)
            self.tainted.add(p.pid)
            made += 1
        if self.exceptions:
            self.exceptions[0].justification = HOSTILE_FORMULA
            self.hostile.append({"file": "qms/exceptions.csv", "record": self.exceptions[0].eid,
                                 "field": "Justification", "value": HOSTILE_FORMULA})
    def exception_outcomes(self) -> None:
        """Expired in the period -> removed, renewed, or (injected) access remains."""
        rng, c = self.rng, self.c
        seq = max((int(e.eid.split("-")[1]) for e in self.exceptions), default=0)
        due = [e for e in self.exceptions if e.expiry <= c.end - timedelta(days=10)]
        k = count_for(self.rates.exception_expired_access_remains, len(due), self.rates.min_instances)
        k = min(k, len(due))
        remains = set(id(e) for e in rng.sample(due, k))
        renewals: list[Exc] = []
        for e in self.exceptions:
            if e.expiry >= c.end:
                e.outcome, e.status = "active", "Approved"
            elif id(e) in remains:
                e.outcome, e.status = "remains", "Expired"
                self.failures.append(Failure("exception_expired_access_remains", {
                    "exception_id": e.eid, "person_id": e.subject.pid, "system": e.ent.system,
                    "entitlement": e.ent.key, "expiry": e.expiry.isoformat(), "ritm": e.ritm.number}))
            elif e.expiry < c.end - timedelta(days=3) and rng.random() < 0.3:
                e.outcome, e.status = "renewed", "Closed"
                seq += 1
                new = Exc(eid=f"EXC-{seq:04d}", subject=e.subject, system=e.system, ent=e.ent,
                          justification=e.justification + " (extension)", control=e.control, owner=e.owner,
                          approvers=e.approvers, approved_on=e.expiry - timedelta(days=rng.randrange(2, 8)),
                          valid_from=e.expiry + timedelta(days=1), expiry=c.end + timedelta(days=rng.randrange(10, 120)),
                          ritm=e.ritm, renews=e)
                new.status = "Approved"
                renewals.append(new)
            else:
                e.outcome, e.status = "removed", "Closed"
                t = utc(e.expiry, 12) + hours(rng, 0, 9)
                auto = e.ent.system != "github" and rng.random() < 0.5
                self.ops.append(Op(t, "revoke", e.ent.system, e.subject, e.ent,
                                   executor=None if auto else self.admin_for(e.subject),
                                   ref_kind="exception", ref=e.eid, carry=e.ent.system == "okta"))
        self.exceptions.extend(renewals)

    def change_records(self) -> None:
        """QMS changes behind service accounts and Okta API tokens."""
        rng, c = self.rng, self.c
        cab = [c.heads["IT"], c.security]
        n_svc_clean = max(4, round(0.025 * len(c.people)))
        n_ownerless = count_for(self.rates.ownerless_service_account, len(c.people), self.rates.min_instances)
        purposes = [("svc-backup-etl", "Nightly export of validated records to the archive bucket", "AmazonS3ReadOnlyAccess"),
                    ("svc-grafana-readonly", "Dashboards for the device fleet", "CloudWatchReadOnlyAccess"),
                    ("svc-mes-sync", "Synchronise MES batch records", "AmazonS3ReadOnlyAccess"),
                    ("svc-qms-export", "Export QMS audit trail to long-term storage", "AmazonS3ReadOnlyAccess"),
                    ("svc-datalake-ingest", "Ingest anonymised device telemetry", "AmazonS3ReadOnlyAccess"),
                    ("svc-sbom-scanner", "Software bill of materials scanning", "ReadOnlyAccess"),
                    ("svc-vuln-scan", "Vulnerability scanning of the build images", "ReadOnlyAccess"),
                    ("svc-cost-report", "Monthly cost report", "AWSBillingReadOnlyAccess"),
                    ("svc-sftp-lims", "LIMS file transfer", "AmazonS3ReadOnlyAccess"),
                    ("svc-ci-artifacts", "CI artefact upload", "AmazonS3ReadOnlyAccess"),
                    ("svc-log-shipper", "Ship application logs", "CloudWatchReadOnlyAccess"),
                    ("svc-license-audit", "Licence usage reports", "ReadOnlyAccess")]
        total = n_svc_clean + n_ownerless
        names = [purposes[i % len(purposes)] for i in range(total)]
        ownerless_idx = set(rng.sample(range(total), n_ownerless))
        seq = 0
        owners = [p for p in c.people if p.role in ("lead", "admin", "head") and p.term is None]
        for i, (base_name, purpose, policy) in enumerate(names):
            name = base_name if i < len(purposes) else f"{base_name}-{i // len(purposes) + 1}"
            seq += 1
            cid = f"CR-{seq:04d}"
            d = random_workday(rng, c.start + timedelta(days=5), c.end - timedelta(days=20))
            requester = rng.choice(c.admins)
            opened = work_time(rng, d)
            approved = business(rng, opened + hours(rng, 4, 60))
            implemented = business(rng, approved + hours(rng, 1, 30))
            ch = Change(cid=cid, title=f"Create service account {name}: {purpose}", subject=name,
                        entitlement=f"AWS IAM user (service): {name}; policy arn:aws:iam::aws:policy/{policy}",
                        requested_by=requester, approvers=list(cab), opened=opened, approved=approved,
                        implemented=implemented, status="Closed")
            self.changes.append(ch)
            acc = Account(key=f"svc:{name}", system="aws", kind="service", name=name, uid=_aws_uid(rng),
                          display=name, owner=None if i in ownerless_idx else rng.choice(owners), change=ch,
                          created=implemented, policy=f"arn:aws:iam::aws:policy/{policy}", purpose=purpose)
            self.accounts.append(acc)
            executor = self.admin_for(None, (requester,)) if rng.random() < 0.5 else requester
            self.ops.append(Op(implemented, "svc_create", "aws", acc, executor=executor, ref_kind="change", ref=cid,
                               carry=True))
            if acc.owner is None:
                self.failures.append(Failure("ownerless_service_account", {
                    "system": "aws", "account": name, "change_id": cid}))
        # Okta API tokens for integrations
        for name in ("ServiceNow provisioning", "Workday inbound", "SIEM log export"):
            seq += 1
            cid = f"CR-{seq:04d}"
            d = random_workday(rng, c.start + timedelta(days=5), c.end - timedelta(days=30))
            requester = rng.choice(c.admins)
            opened = work_time(rng, d)
            approved = business(rng, opened + hours(rng, 4, 48))
            implemented = business(rng, approved + hours(rng, 1, 24))
            ch = Change(cid=cid, title=f"Create Okta API token for {name}", subject=name,
                        entitlement=f"Okta API token: {name}", requested_by=requester, approvers=list(cab),
                        opened=opened, approved=approved, implemented=implemented, status="Closed")
            self.changes.append(ch)
            tid = okta_id(rng, "00T")
            self.tokens.append((tid, name, ch, requester))
            self.ops.append(Op(implemented, "token_create", "okta", requester, executor=requester, ref_kind="change",
                               ref=cid, carry=rng.random() < 0.7, token=(tid, name)))
        # one token is rotated out later under its own change
        tid, name, old, requester = self.tokens[0]
        seq += 1
        cid = f"CR-{seq:04d}"
        opened = old.implemented + timedelta(days=rng.randrange(20, 40))
        if opened < utc(c.end) - timedelta(days=5):
            approved = business(rng, opened + hours(rng, 4, 30))
            implemented = business(rng, approved + hours(rng, 1, 10))
            self.changes.append(Change(cid=cid, title=f"Revoke Okta API token for {name} (rotation)", subject=name,
                                       entitlement=f"Okta API token: {name}", requested_by=requester,
                                       approvers=list(cab), opened=opened, approved=approved,
                                       implemented=implemented, status="Closed"))
            self.ops.append(Op(implemented, "token_revoke", "okta", requester, executor=requester,
                               ref_kind="change", ref=cid, carry=True, token=(tid, name)))

    # -------------------------------------------------------------- injected failures

    def _clean_adhoc(self, systems: tuple[str, ...] = ("okta", "aws", "github")) -> list[Ritm]:
        return [r for r in self.ritms if not r.tags and r.purpose == "adhoc" and r.end is None
                and r.decision == "approved" and r.grant_at is not None and r.ent.system in systems
                and r.ent.kind != "account" and r.subject.pid not in self.tainted]

    def _pick(self, pool: list, rate: float) -> list:
        k = count_for(rate, len(pool), self.rates.min_instances)
        return self.rng.sample(pool, k) if k else []

    def _tag(self, r: Ritm, cls: str, **data) -> None:
        r.tags.append(cls)
        self.failures.append(Failure(cls, {"ritm": r.number, "person_id": r.subject.pid,
                                           "system": r.ent.system, "entitlement": r.ent.key, **data}))

    def inject_ritm_failures(self) -> None:
        rng, c = self.rng, self.c
        rates = self.rates
        # scope beyond the approved entitlement: the broader entitlement is granted, citing the ticket
        pool = [r for r in self._clean_adhoc(("okta", "aws")) if r.ent.key in BROADER
                and BROADER[r.ent.key] not in self.ever[r.subject.pid]]
        for r in self._pick(pool, rates.scope_beyond_approval):
            broader = c.cat[BROADER[r.ent.key]]
            r.granted = broader
            r.carry = True
            if r.ent.system == "aws":
                r.executor = None
            self.ever[r.subject.pid].add(broader.key)
            self._tag(r, "scope_beyond_approval", granted_entitlement=broader.key)
        # provisioning after rejection: the rejected request is provisioned anyway, citing the ticket
        pool = [r for r in self.ritms if not r.tags and r.purpose == "adhoc" and r.decision == "rejected"
                and r.ent.system in ("okta", "aws") and r.subject.pid not in self.tainted]
        picked = []
        for r in rng.sample(pool, len(pool)):
            if len(picked) >= count_for(rates.provisioning_after_rejection, len(pool), rates.min_instances):
                break
            t = r.decided + hours(rng, 2, 40)
            p = r.subject
            if t >= utc(c.end) - timedelta(days=1) or (p.term and t >= utc(p.term) - timedelta(days=2)):
                continue
            if p.leave and utc(p.leave[0]) - timedelta(days=1) <= t <= utc(p.leave[1]) + timedelta(days=1):
                continue
            r.grant_at, r.granted, r.carry = t, r.ent, True
            r.executor = None if r.ent.system == "aws" else self.admin_for(p)
            picked.append(r)
            self._tag(r, "provisioning_after_rejection", rejected_at=r.decided.isoformat())
        # provisioning before approval: an admin grants while the approval is still open
        pool = [r for r in self._clean_adhoc() if r.decided - r.opened >= timedelta(hours=6)]
        for r in self._pick(pool, rates.provisioning_before_approval):
            gap = (r.decided - r.opened).total_seconds()
            r.grant_at = r.opened + timedelta(seconds=int(gap * rng.uniform(0.25, 0.75)))
            r.executor = self.admin_for(r.subject, tuple(a.approver for a in r.approvals))
            r.carry = r.ent.system == "okta"
            self._tag(r, "provisioning_before_approval", approved_at=r.decided.isoformat())
        # requester is approver: a manager raises a request for a report and approves it
        pool = [r for r in self._clean_adhoc() if r.on_behalf and len(r.approvals) == 1]
        for r in self._pick(pool, rates.requester_is_approver):
            r.approvals[0].approver = r.opened_by
            self._tag(r, "requester_is_approver", approver=r.opened_by.pid)
        # approver is executor: the approver's own account performs the grant
        pool = [r for r in self._clean_adhoc() if len(r.approvals) == 1
                and r.ent.system in r.approvals[0].approver.systems
                and r.approvals[0].approver.hire < c.start and r.approvals[0].approver.term is None]
        for r in self._pick(pool, rates.approver_is_executor):
            r.executor = r.approvals[0].approver
            self._tag(r, "approver_is_executor", approver=r.executor.pid)

    def inject_unapproved_grants(self) -> None:
        rng, c = self.rng, self.c
        people = [p for p in c.people if p.role == "staff" and p.hire < c.start and p.term is None
                  and p.pid not in self.tainted and not p.supplier]
        k = count_for(self.rates.provisioning_without_approval, len(self.ritms), self.rates.min_instances)
        rng.shuffle(people)
        for p in people:
            if k <= 0:
                break
            d = random_workday(rng, c.start + timedelta(days=10), c.end - timedelta(days=10))
            if p.leave and p.leave[0] - timedelta(days=2) <= d <= p.leave[1] + timedelta(days=2):
                continue
            if p.transfer and abs((p.transfer.on - d).days) < 10:
                continue
            opts = [key for key in OPTIONAL[p.bu_on(d)] if c.cat[key].system in p.systems
                    and key not in self.ever[p.pid]]
            if not opts:
                continue
            ent = c.cat[rng.choice(opts)]
            self.ever[p.pid].add(ent.key)
            f = Failure("provisioning_without_approval", {
                "person_id": p.pid, "system": ent.system, "entitlement": ent.key, "ritm": None})
            self.ops.append(Op(work_time(rng, d), "grant", ent.system, p, ent, executor=self.admin_for(p), failure=f))
            self.failures.append(f)
            self.tainted.add(p.pid)
            k -= 1

    def inject_revocation_failures(self) -> None:
        """Late and missing removals, after terminations and after end dates of time-bound access."""
        rng, c = self.rng, self.c
        limit = c.end - timedelta(days=10)
        term_pool = []
        for p in c.people:
            if (p.term and c.start <= p.term <= limit and p.hr_term and p.supplier != ENDING_SUPPLIER
                    and p.pid not in self.tainted):
                term_pool.append(("termination", p))
        end_pool = [("end_date", r) for r in self.ritms if r.end_removal == "ontime" and r.end <= limit
                    and not r.tags and r.subject.pid not in self.tainted
                    and r.subject.term is None
                    and not (r.subject.leave and r.subject.leave[0] - timedelta(days=3) <= r.end <= r.subject.leave[1])]
        pool = term_pool + end_pool
        rng.shuffle(pool)
        n_late = count_for(self.rates.late_revocation, len(pool), self.rates.min_instances)
        n_missing = count_for(self.rates.missing_revocation, len(pool), self.rates.min_instances)
        # both kinds of trigger appear among the failures of each class
        chosen: list[tuple[str, tuple]] = []
        terms = [x for x in pool if x[0] == "termination"]
        ends = [x for x in pool if x[0] == "end_date"]
        for cls, n in (("late_revocation", n_late), ("missing_revocation", n_missing)):
            for i in range(n):
                src = terms if (i % 2 == 0 and terms) or not ends else ends
                if not src:
                    break
                chosen.append((cls, src.pop()))
        for cls, (kind, obj) in chosen:
            if kind == "termination":
                p = obj
                systems = [s for s in p.systems if s != "okta"] or ["okta"]
                if cls == "missing_revocation" and len(p.systems) > 1:
                    systems = [s for s in p.systems if s != "okta"]
                system = rng.choice(systems)
                op = next(o for o in self.ops if o.kind == "offboard" and o.holder is p and o.system == system)
                data = {"person_id": p.pid, "system": system, "trigger": "termination", "trigger_ref": p.term_event,
                        "trigger_date": p.term.isoformat()}
                f = Failure(cls, data)
                if cls == "late_revocation":
                    op.t = utc(p.term + timedelta(days=rng.randrange(3, 9)), 9) + hours(rng, 0, 8)
                    op.failure = f
                    data["removed_at"] = op.t.isoformat()
                else:
                    self.ops.remove(op)
                self.tainted.add(p.pid)
            else:
                r = obj
                data = {"person_id": r.subject.pid, "system": r.ent.system, "trigger": "end_date",
                        "trigger_ref": r.number, "trigger_date": r.end.isoformat(), "ritm": r.number,
                        "entitlement": r.ent.key}
                if cls == "late_revocation":
                    r.end_removal = "late"
                    r.end_removal_at = utc(r.end + timedelta(days=rng.randrange(3, 9)), 9) + hours(rng, 0, 8)
                    data["removed_at"] = r.end_removal_at.isoformat()
                else:
                    r.end_removal = "missing"
                f = Failure(cls, data)
                r.end_failure = f
                r.tags.append(cls)
                self.tainted.add(r.subject.pid)
            self.failures.append(f)

    def supplier_failures(self) -> None:
        c = self.c
        sup = next(s for s in c.suppliers if s.sid == ENDING_SUPPLIER)
        for p in c.people:
            if p.supplier == ENDING_SUPPLIER and not p.hr_term:
                self.failures.append(Failure("supplier_access_after_contract_end", {
                    "person_id": p.pid, "supplier_id": sup.sid, "contract_end": sup.contract_end.isoformat(),
                    "systems": list(p.systems)}))

    def special_accounts(self) -> None:
        """Orphan accounts (no HR person behind them) and shared supplier accounts, all older than the period."""
        rng, c = self.rng, self.c
        names = _Names(rng)
        for p in c.people:
            names.reserve(p.email, p.username)
        n_orphan = count_for(self.rates.orphan_account, len(c.people), self.rates.min_instances)
        systems = ["aws", "okta", "github"]
        for i in range(n_orphan):
            system = systems[i % 3]
            first, last, email, handle = names.person()
            if system == "aws":
                name = email if i % 2 == 0 else f"test-{handle.split('-')[0]}"
                acc = Account(key=f"orphan:{i}", system="aws", kind="orphan", name=name, uid=_aws_uid(rng),
                              display=name)
            elif system == "okta":
                acc = Account(key=f"orphan:{i}", system="okta", kind="orphan", name=email, uid=okta_id(rng, "00u"),
                              display=f"{first} {last}")
            else:
                acc = Account(key=f"orphan:{i}", system="github", kind="orphan", name=handle,
                              uid=str(rng.randrange(1_000_000, 190_000_000)), display=handle)
            acc.ip, acc.ua = public_ip(rng), rng.choice(_UAS)
            self.accounts.append(acc)
            self.failures.append(Failure("orphan_account", {"system": system, "account": acc.name}))
        layout = [("SUP-001", "okta", "vendor-shared-medisoft@" + DOMAIN), ("SUP-002", "aws", "vendor-shared-cloudops"),
                  ("SUP-002", "github", "vendor-shared-cloudops")]
        n_shared = count_for(self.rates.shared_account, len(c.suppliers), self.rates.min_instances)
        for i in range(n_shared):
            sid, system, name = layout[i % len(layout)]
            if i >= len(layout):
                name = name.replace("vendor-shared", f"vendor-shared{i // len(layout) + 1}")
            users = [p for p in c.people if p.supplier == sid]
            uid = {"okta": okta_id(rng, "00u"), "aws": _aws_uid(rng),
                   "github": str(rng.randrange(1_000_000, 190_000_000))}[system]
            acc = Account(key=f"shared:{i}", system=system, kind="shared", name=name, uid=uid, display=name,
                          supplier=sid, users=users)
            self.accounts.append(acc)
            self.failures.append(Failure("shared_account", {
                "system": system, "account": name, "supplier_id": sid, "also_classes": ["orphan_account"],
                "used_by_person_ids": [p.pid for p in users]}))

    def approver_training(self) -> None:
        """Approver training for everyone who decides; some approvers let it lapse (the injected case)."""
        rng, c = self.rng, self.c
        decisions: dict[str, list[tuple[datetime, Ritm, Approval]]] = {}
        approvers: dict[str, Person] = {}
        for r in self.ritms:
            for a in r.approvals:
                approvers[a.approver.pid] = a.approver
                if a.decided is not None:
                    decisions.setdefault(a.approver.pid, []).append((a.decided, r, a))
        for ch in self.changes:
            for a in ch.approvers:
                approvers[a.pid] = a
        for e in self.exceptions:
            for a in e.approvers:
                approvers[a.pid] = a
        for lst in decisions.values():
            lst.sort(key=lambda x: (x[0], x[1].number))
        total = sum(len(v) for v in decisions.values())
        target = count_for(self.rates.approver_training_expired, total, self.rates.min_instances)
        protected = {c.heads["IT"].pid, c.heads["Quality"].pid, c.security.pid, c.ceo.pid}
        lapsed: dict[str, tuple[date, date | None]] = {}
        cand = [pid for pid in sorted(approvers) if pid not in protected and decisions.get(pid)]
        rng.shuffle(cand)
        got = 0
        for pid in cand:
            if got >= target:
                break
            lst = decisions[pid]
            for _attempt in range(6):
                i = rng.randrange(len(lst))
                k = min(target - got, rng.randint(1, 3), len(lst) - i)
                window = lst[i:i + k]
                if any(r.tags or a.state != "approved" or r.decision != "approved" or r.grant_at is None
                       or r.purpose == "exception" for _, r, a in window):
                    continue
                first_d = berlin_date(window[0][0])
                last_d = berlin_date(window[-1][0])
                prev_d = berlin_date(lst[i - 1][0]) if i > 0 else c.start - timedelta(days=30)
                nxt_d = berlin_date(lst[i + k][0]) if i + k < len(lst) else None
                expiry = first_d - timedelta(days=rng.randint(1, 6))
                if expiry <= prev_d or expiry < c.start - timedelta(days=1):
                    continue
                if nxt_d is not None and (nxt_d - last_d).days < 2:
                    continue
                renewal = None
                if nxt_d is not None:
                    renewal = last_d + timedelta(days=rng.randint(1, (nxt_d - last_d).days - 1))
                elif rng.random() < 0.5 and last_d < c.end - timedelta(days=3):
                    renewal = last_d + timedelta(days=rng.randint(1, max(1, (c.end - last_d).days - 2)))
                lapsed[pid] = (expiry, renewal)
                for when, r, a in window:
                    r.tags.append("approver_training_expired")
                    self.failures.append(Failure("approver_training_expired", {
                        "ritm": r.number, "approval_sys_id": a.sys_id, "approver": pid, "person_id": r.subject.pid,
                        "system": r.ent.system, "entitlement": r.ent.key, "approved_at": when.isoformat(),
                        "training_valid_until": expiry.isoformat()}))
                got += k
                break
        seq = 0

        def rec(p: Person, course: str, done: date, until: date) -> None:
            nonlocal seq
            seq += 1
            status = "Completed" if until >= c.end else "Expired"
            self.training.append(Training(f"TRN-{seq:05d}", p, course, done, until, status))

        for pid in sorted(approvers):
            p = approvers[pid]
            if pid in lapsed:
                expiry, renewal = lapsed[pid]
                rec(p, APPROVER_COURSE, expiry - timedelta(days=365), expiry)
                if renewal:
                    rec(p, APPROVER_COURSE, renewal, renewal + timedelta(days=365))
                continue
            done = c.start - timedelta(days=rng.randrange(10, 330))
            until = done + timedelta(days=365)
            rec(p, APPROVER_COURSE, done, until)
            # renew before it lapses when it would lapse within the period
            while until < c.end + timedelta(days=30):
                done = until - timedelta(days=rng.randrange(5, 30))
                until = done + timedelta(days=365)
                rec(p, APPROVER_COURSE, done, until)
        for p in c.people:
            if p.hire >= c.end:
                continue
            done = max(p.hire + timedelta(days=rng.randrange(1, 20)), c.start - timedelta(days=rng.randrange(30, 700)))
            if p.hire >= c.start:
                done = p.hire + timedelta(days=rng.randrange(1, 10))
            if done >= c.end:
                continue
            rec(p, GXP_COURSE, done, done + timedelta(days=730))

    # -------------------------------------------------------------- ops from requests

    def grant_ops(self) -> None:
        rng = self.rng
        for r in self.ritms:
            if r.grant_at is not None:
                ent = r.granted or r.ent
                self.ops.append(Op(r.grant_at, "grant", ent.system, r.subject, ent, executor=r.executor,
                                   ref_kind="ritm", ref=r.number, carry=r.carry, ritm=r))
            if r.end_removal in ("ontime", "late") and r.grant_at is not None:
                t = r.end_removal_at or (utc(r.end, 12) + hours(rng, 0, 9))
                r.end_removal_at = t
                ent = r.granted or r.ent
                auto = ent.system != "github" and rng.random() < 0.6
                self.ops.append(Op(t, "revoke", ent.system, r.subject, ent,
                                   executor=None if auto else self.admin_for(r.subject),
                                   ref_kind="end_date", ref=r.number, carry=ent.system == "okta" and rng.random() < 0.7,
                                   ritm=r, failure=r.end_failure))

    def hostile_and_quirks(self) -> None:
        rng, c = self.rng, self.c
        candidates = [p for p in c.people if p.role == "staff" and p.term is None and p.hire < c.start]
        p = rng.choice(candidates)
        p.okta_display = HOSTILE_NAME
        self.hostile.append({"file": "okta/system_log.json", "person_id": p.pid, "field": "displayName",
                             "value": HOSTILE_NAME})
        approvals = [a for r in self.ritms for a in r.approvals if a.state == "approved"]
        if approvals:
            a = rng.choice(approvals)
            a.comment = HOSTILE_NAME
            self.hostile.append({"file": "servicenow/sysapproval_approver.json", "record": a.sys_id,
                                 "field": "comments", "value": HOSTILE_NAME})
        for p in c.people:
            if p.okta_login != p.email:
                self.quirks.append({"kind": "email_case", "system": "okta", "person_id": p.pid,
                                    "value": p.okta_login, "canonical": p.email})
            if p.snow_email != p.email:
                self.quirks.append({"kind": "email_case", "system": "servicenow", "person_id": p.pid,
                                    "value": p.snow_email, "canonical": p.email})
            if p.aws_name and p.aws_name != p.email:
                self.quirks.append({"kind": "email_case", "system": "aws", "person_id": p.pid,
                                    "value": p.aws_name, "canonical": p.email})
            if "github" in p.systems:
                self.quirks.append({"kind": "username_only_in_hr", "system": "github", "person_id": p.pid,
                                    "value": p.username})

    def build(self) -> Plan:
        self.decide_supplier_end()
        self.hr()
        self.preexisting()
        self.joiners()
        self.movers()
        self.leaves()
        self.adhoc()
        self.offboarding()
        self.end_dates()
        self.exception_records()
        self.renumber()
        self.exception_outcomes()
        self.change_records()
        self.inject_ritm_failures()
        self.inject_unapproved_grants()
        self.inject_revocation_failures()
        self.supplier_failures()
        self.special_accounts()
        self.approver_training()
        self.hostile_and_quirks()
        self.grant_ops()
        self.ops.sort(key=lambda o: (o.t, _op_rank(o.kind), o.system, o.ref))
        return Plan(company=self.c, ritms=self.ritms, changes=self.changes, exceptions=self.exceptions,
                    training=self.training, hr_events=self.hr_events, accounts=self.accounts, ops=self.ops,
                    failures=self.failures, pre_holdings=self.pre, hostile=self.hostile, quirks=self.quirks,
                    tokens=self.tokens)


def _op_rank(kind: str) -> int:
    return {"svc_create": 0, "grant": 1, "token_create": 2, "unsuspend": 3, "revoke": 4, "suspend": 5,
            "token_revoke": 6, "offboard": 7}[kind]


def _aws_uid(rng: random.Random) -> str:
    return aws_id(rng, "AIDA")


_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off",
    "git/2.43.0",
]

