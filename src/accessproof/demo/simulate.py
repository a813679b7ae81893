"""Simulate the identity life of a regulated medical-device company, written in the vendors' own formats.

"Acme Medical" has employees, contractors and the staff of three suppliers (one supplier's contract ends
mid-period) in six business units. People join, move and leave; they ask for access in ServiceNow, their
manager (and, for privileged access, the entitlement's owner) approves, and automation or an IT admin
grants it in Okta (org ``acme``), AWS (account ``111122223333``) or GitHub (org ``acme-medical``).
Terminations, end dates of time-bound access, contract ends and expiring QMS exceptions trigger removal.

``simulate()`` writes, under ``out``::

    hr/workers.csv, hr/events.csv                       Workday-style worker report and business events
    servicenow/sc_req_item.json                         Table API export (display values) of request items
    servicenow/sysapproval_approver.json                ... and of their approvals
    qms/exceptions.csv, training.csv, suppliers.csv,    ComplianceQuest-style QMS exports
        changes.csv
    okta/system_log.json                                /api/v1/logs LogEvent objects (JSON array)
    cloudtrail/AWSLogs/<acct>/CloudTrail/us-east-1/...  gzipped {"Records": [...]} files, as delivered to S3
    github/audit_log.json                               /orgs/{org}/audit-log entries (JSON array, oldest first)
    ground_truth.json                                   what really happened, and every injected failure

Control failures are injected at ``FailureRates`` and recorded, with the ids of the records involved, in
``ground_truth.json``; the rest of the company is clean. The same arguments give byte-identical files.
Usage noise (sign-ins, read-only API calls, git traffic) is generated one day at a time, so volume scales
with ``noise_per_person_day`` and ``people`` in constant memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson

from accessproof.demo._common import (
    add_months,
    ct_suffix,
    iso_berlin,
    snow,
)
from accessproof.demo._noise import Noise
from accessproof.demo._plan import CLASSES, Plan, Planner
from accessproof.demo._render import Emitted, Renderer
from accessproof.demo._world import AWS_ACCOUNT, GH_ORG, OKTA_ORG, SOURCES, build_company

__all__ = ["CLASSES", "FailureRates", "SimulationSummary", "simulate"]

CT_PREFIX = f"cloudtrail/AWSLogs/{AWS_ACCOUNT}/CloudTrail/us-east-1"
#: Largest number of records in one CloudTrail file (real deliveries are ~5 minutes of activity).
CT_MAX_RECORDS = 5000
SLA_HOURS = 24
_OUTPUTS = ("hr", "servicenow", "qms", "okta", "cloudtrail", "github", "ground_truth.json")


@dataclass(frozen=True)
class FailureRates:
    """How often each control failure is injected.

    Each rate is a share of the population the failure can happen to (named per field). A positive rate
    injects at least ``min_instances`` cases (when that many candidates exist), so a small demo company
    still shows every class; ``0`` switches a class off.
    """

    provisioning_without_approval: float = 0.01  # unapproved grants, per request raised
    provisioning_before_approval: float = 0.02  # of approved, provisioned ad-hoc requests
    provisioning_after_rejection: float = 0.15  # of rejected requests
    scope_beyond_approval: float = 0.05  # of approved requests for which a broader entitlement exists
    late_revocation: float = 0.08  # of revocation triggers (terminations, end dates) due in the period
    missing_revocation: float = 0.07  # same population
    exception_expired_access_remains: float = 0.45  # of exceptions expiring in the period
    supplier_access_after_contract_end: float = 0.5  # of the ending supplier's staff
    shared_account: float = 1.0  # shared accounts per supplier
    requester_is_approver: float = 0.07  # of requests a manager raised on someone's behalf
    approver_is_executor: float = 0.018  # of approved, provisioned ad-hoc requests
    approver_training_expired: float = 0.009  # of approval decisions
    orphan_account: float = 0.02  # per person
    ownerless_service_account: float = 0.02  # per person
    min_instances: int = 3

    @classmethod
    def none(cls) -> FailureRates:
        """A company without injected failures (data-quality realities remain)."""
        return cls(**{k: 0.0 for k in CLASSES}, min_instances=0)


@dataclass
class SimulationSummary:
    out: Path
    people: int
    months: int
    seed: int
    start: date
    end: date
    files: dict[str, int] = field(default_factory=dict)  # relative path -> records ("cloudtrail/*" summed)
    cloudtrail_files: int = 0
    events: dict[str, int] = field(default_factory=dict)  # per identity system, records written
    failures: dict[str, int] = field(default_factory=dict)  # per failure class
    cloudtrail_read_only_share: float = 0.0
    duplicates: dict[str, int] = field(default_factory=dict)

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["start"] = self.start.isoformat()
        d["end"] = self.end.isoformat()
        d["total_events"] = self.total_events
        return d


def simulate(people: int = 200, months: int = 6, seed: int = 7, out: Path | str | None = None,
             start: date = date(2026, 1, 1), rates: FailureRates | None = None,
             noise_per_person_day: float = 4.0) -> SimulationSummary:
    """Generate the demo company into ``out`` and return counts of what was written.

    ``noise_per_person_day`` is the mean number of usage events (sign-ins, read-only API calls, git
    traffic) per active person and working day across the systems; volume grows linearly with it.
    """
    if out is None:
        raise ValueError("simulate() needs an output directory (out=...)")
    if people < 40:
        raise ValueError("the demo company needs at least 40 people")
    if months < 2:
        raise ValueError("the demo period must be at least 2 months")
    out = Path(out)
    _prepare(out)
    rates = rates or FailureRates()
    end = add_months(start, months)
    rng = random.Random(seed)
    company = build_company(rng, people, start, end)
    plan = Planner(rng, company, rates, months).build()
    renderer = Renderer(plan, rng)
    renderer.run()
    noise = Noise(plan, renderer, seed, noise_per_person_day)
    summary = SimulationSummary(out=out, people=people, months=months, seed=seed, start=start, end=end)
    _write_governance(out, plan, summary)
    dups = _write_logs(out, plan, renderer, noise, rng, summary, seed)
    truth = _ground_truth(plan, renderer, noise, dups, seed, noise_per_person_day, rates)
    (out / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    summary.files["ground_truth.json"] = len(truth["failures"])  # injected failures recorded
    summary.failures = {k: v for k, v in truth["failure_counts"].items()}
    return summary


def _prepare(out: Path) -> None:
    """Clear a previous simulation's files (never anything else) so every run writes a fresh tree."""
    out.mkdir(parents=True, exist_ok=True)
    existing = [out / name for name in _OUTPUTS if (out / name).exists()]
    if existing and not (out / "ground_truth.json").exists():
        raise FileExistsError(f"{out} already holds {existing[0].name} and is not a previous simulation's output")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


# ------------------------------------------------------------------ governance exports


def _csv(path: Path, header: list[str], rows: Iterable[list]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow(row)
        n += 1
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return n


def _d(x: date | None) -> str:
    return x.isoformat() if x else ""


def _de(x: date | None) -> str:
    return x.strftime("%d.%m.%Y") if x else ""


def _write_governance(out: Path, plan: Plan, summary: SimulationSummary) -> None:
    c = plan.company
    files = summary.files

    def term(p) -> str:
        return _d(p.term) if p.term and p.hr_term and p.term < c.end else ""

    workers = sorted(c.people, key=lambda p: p.pid)
    files["hr/workers.csv"] = _csv(out / "hr/workers.csv", [
        "Employee ID", "Legal Name", "Work Email", "Username", "Worker Type", "Supplier ID", "Manager ID",
        "Business Unit", "Job Title", "Hire Date", "Termination Date"],
        ([p.pid, p.name, p.email, p.username, p.worker_type, p.supplier or "", p.manager.pid if p.manager else "",
          p.bu, p.title, _d(p.hire), term(p)] for p in workers))
    files["hr/events.csv"] = _csv(out / "hr/events.csv", [
        "Event ID", "Employee ID", "Event Type", "Effective Date", "Entered At", "Entered By"],
        ([e.eid, e.person.pid, e.type, _d(e.effective), iso_berlin(e.entered), e.entered_by.pid]
         for e in plan.hr_events))

    items = []
    approvals = []
    for r in sorted(plan.ritms, key=lambda r: r.number):
        updated = r.grant_at + timedelta(minutes=3) if r.grant_at and r.decision == "approved" else (
            r.decided or r.approvals[-1].created if r.approvals else r.opened)
        items.append({
            "number": r.number, "sys_id": r.sys_id, "cat_item": r.ent.key, "short_description": r.short_description,
            "requested_for": r.subject.snow_email, "opened_by": r.opened_by.snow_email, "opened_at": snow(r.opened),
            "approval": r.decision, "approval_set": snow(r.decided), "state": r.state,
            "stage": {"Closed Complete": "Completed", "Closed Incomplete": "Request Cancelled",
                      "Open": "Waiting for Approval", "Work in Progress": "Fulfillment"}[r.state],
            "sys_updated_on": snow(updated), "u_start_date": _d(r.start), "u_end_date": _d(r.end),
            "u_environment": "production", "u_business_unit": r.subject.bu_on(r.opened.date())})
        for a in r.approvals:
            approvals.append({
                "sys_id": a.sys_id, "sysapproval": r.number, "source_table": "sc_req_item",
                "approver": a.approver.snow_email, "state": a.state, "sys_created_on": snow(a.created),
                "sys_updated_on": snow(a.decided or a.created), "comments": a.comment})
    (out / "servicenow").mkdir(parents=True, exist_ok=True)
    _json_result(out / "servicenow/sc_req_item.json", items)
    _json_result(out / "servicenow/sysapproval_approver.json", approvals)
    files["servicenow/sc_req_item.json"] = len(items)
    files["servicenow/sysapproval_approver.json"] = len(approvals)

    files["qms/exceptions.csv"] = _csv(out / "qms/exceptions.csv", [
        "Exception ID", "Subject", "System", "Entitlement", "Justification", "Compensating Control", "Owner",
        "Approved By", "Approved On", "Valid From", "Expiry Date", "Status"],
        ([e.eid, e.subject.email, e.system, e.ent.key, e.justification, e.control, e.owner.email,
          ";".join(a.email for a in e.approvers), _de(e.approved_on), _de(e.valid_from), _de(e.expiry), e.status]
         for e in sorted(plan.exceptions, key=lambda e: e.eid)))
    files["qms/training.csv"] = _csv(out / "qms/training.csv", [
        "Record ID", "Trainee", "Course", "Completed On", "Valid Until", "Status"],
        ([t.rid, t.trainee.email, t.course, _d(t.completed), _d(t.valid_until), t.status] for t in plan.training))
    files["qms/suppliers.csv"] = _csv(out / "qms/suppliers.csv", [
        "Supplier ID", "Supplier Name", "Qualification Status", "Contract Start", "Contract End", "Approved Scope",
        "Owner", "Next Review"],
        ([s.sid, s.name, s.qualification, _d(s.contract_start), _d(s.contract_end), s.scope,
          s.sponsor.email if s.sponsor else "", _d(s.next_review)] for s in c.suppliers))
    files["qms/changes.csv"] = _csv(out / "qms/changes.csv", [
        "Change ID", "Title", "Subject", "Entitlement", "Requested By", "Approved By", "Opened", "Approved",
        "Implemented", "Status"],
        ([ch.cid, ch.title, ch.subject, ch.entitlement, ch.requested_by.email, ";".join(a.email for a in ch.approvers),
          iso_berlin(ch.opened), iso_berlin(ch.approved), iso_berlin(ch.implemented) if ch.implemented else "",
          ch.status] for ch in sorted(plan.changes, key=lambda ch: ch.cid)))


def _json_result(path: Path, rows: list[dict]) -> None:
    body = b",\n".join(orjson.dumps(r) for r in rows)
    path.write_bytes(b'{"result":[\n' + body + b"\n]}\n")


# ------------------------------------------------------------------ logs


class _ArrayWriter:
    """A JSON array written one element at a time."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.fh.write(b"[\n")
        self.n = 0

    def write(self, obj: dict) -> None:
        if self.n:
            self.fh.write(b",\n")
        self.fh.write(orjson.dumps(obj))
        self.n += 1

    def close(self) -> None:
        self.fh.write(b"\n]\n")
        self.fh.close()


def _by_day(events: list[Emitted], start: date, end: date) -> dict[date, list[tuple[datetime, str, dict]]]:
    out: dict[date, list[tuple[datetime, str, dict]]] = {}
    for e in events:
        d = e.t.date()
        if not (start <= d < end):
            raise AssertionError(f"control event outside the period: {e.vendor_action} at {e.t}")
        out.setdefault(d, []).append((e.t, e.eid, e.obj))
    return out


def _write_logs(out: Path, plan: Plan, renderer: Renderer, noise: Noise, rng: random.Random,
                summary: SimulationSummary, seed: int) -> dict:
    c = plan.company
    days = [c.start + timedelta(days=i) for i in range((c.end - c.start).days)]
    ctrl = {s: _by_day(renderer.events[s], c.start, c.end) for s in ("okta", "aws", "github")}
    n_dup = max(2, len(days) // 45)
    okta_dup_days = set(rng.sample(range(1, len(days)), n_dup))
    ct_dup_days = set(rng.sample(range(len(days)), n_dup))
    dups: dict[str, list] = {"okta_events": [], "cloudtrail_files": []}
    okta_w = _ArrayWriter(out / "okta/system_log.json")
    gh_w = _ArrayWriter(out / "github/audit_log.json")
    ct_files = 0
    ct_records = 0
    ct_read_only = 0
    prev_tail: list[dict] = []

    def key(x: tuple[datetime, str, dict]) -> tuple[datetime, str]:
        return x[0], x[1]

    for i, d in enumerate(days):
        # ---- Okta: one growing array; some pages overlap the previous one (duplicate events)
        rows = sorted(ctrl["okta"].get(d, []) + noise.okta(d), key=key)
        if i in okta_dup_days and prev_tail:
            for obj in prev_tail:
                okta_w.write(obj)
                dups["okta_events"].append(obj["uuid"])
        for _, _, obj in rows:
            okta_w.write(obj)
        if rows:
            prev_tail = [obj for _, _, obj in rows[-3:]]
        # ---- GitHub
        for _, _, obj in sorted(ctrl["github"].get(d, []) + noise.github(d), key=key):
            gh_w.write(obj)
        # ---- CloudTrail: a file per six hours (more when busy), some delivered twice
        recs = sorted(ctrl["aws"].get(d, []) + noise.aws(d), key=key)
        frng = random.Random(f"{seed}:ctfiles:{d.isoformat()}")
        first_file = True
        blocks: list[list] = [[], [], [], []]
        for rec in recs:
            blocks[rec[0].hour // 6].append(rec)
        for block, part in enumerate(blocks):
            for j in range(0, len(part), CT_MAX_RECORDS):
                chunk = part[j:j + CT_MAX_RECORDS]
                last = chunk[-1][0]
                stamp = min(last + timedelta(minutes=frng.randrange(3, 12)),
                            datetime(d.year, d.month, d.day, block * 6 + 5, 59, tzinfo=last.tzinfo))
                payload = b'{"Records":[' + b",".join(orjson.dumps(r[2]) for r in chunk) + b"]}"
                data = gzip.compress(payload, compresslevel=4, mtime=0)
                rel = _ct_name(d, stamp, ct_suffix(frng))
                path = out / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                ct_files += 1
                ct_records += len(chunk)
                ct_read_only += sum(1 for r in chunk if r[2].get("readOnly") is True)
                if first_file and i in ct_dup_days:
                    again = min(stamp + timedelta(minutes=frng.randrange(1, 9)),
                                datetime(d.year, d.month, d.day, 23, 59, tzinfo=last.tzinfo))
                    rel2 = _ct_name(d, again, ct_suffix(frng))
                    (out / rel2).write_bytes(data)
                    dups["cloudtrail_files"].append({"original": rel, "duplicate": rel2, "records": len(chunk)})
                    ct_files += 1
                    ct_records += len(chunk)
                    ct_read_only += sum(1 for r in chunk if r[2].get("readOnly") is True)
                first_file = False
    okta_w.close()
    gh_w.close()
    summary.files["okta/system_log.json"] = okta_w.n
    summary.files["github/audit_log.json"] = gh_w.n
    summary.files[f"{CT_PREFIX}/**/*.json.gz"] = ct_records
    summary.cloudtrail_files = ct_files
    summary.events = {"okta": okta_w.n, "aws": ct_records, "github": gh_w.n}
    summary.cloudtrail_read_only_share = round(ct_read_only / ct_records, 4) if ct_records else 0.0
    summary.duplicates = {"okta_events": len(dups["okta_events"]), "cloudtrail_files": len(dups["cloudtrail_files"])}
    return dups


def _ct_name(d: date, stamp: datetime, suffix: str) -> str:
    return (f"{CT_PREFIX}/{d.year:04d}/{d.month:02d}/{d.day:02d}/"
            f"{AWS_ACCOUNT}_CloudTrail_us-east-1_{stamp.strftime('%Y%m%dT%H%MZ')}_{suffix}.json.gz")


# ------------------------------------------------------------------ ground truth


def _accounts_of(p) -> dict:
    acc = {"okta": {"id": p.okta_id, "login": p.okta_login}}
    if p.aws_name:
        acc["aws"] = {"userName": p.aws_name, "userId": p.aws_uid}
    if p.gh_id:
        acc["github"] = {"login": p.username, "id": p.gh_id}
    return acc


def _ground_truth(plan: Plan, r: Renderer, noise: Noise, dups: dict, seed: int, npd: float,
                  rates: FailureRates) -> dict:
    c = plan.company
    by_pid = c.by_pid
    ritms = {x.number: x for x in plan.ritms}
    open_h: dict[tuple[str, str], list] = {}
    for h in r.holdings:
        if h.removed is None:
            open_h.setdefault((h.holder, h.system), []).append(h)
    acc_by_name = {(a.system, a.name): a for a in plan.accounts}

    def grant_ids(number: str) -> list[str]:
        return [row["event_id"] for row in r.pairs.get(number, []) if not row.get("removal")]

    failures = []
    counters: dict[str, int] = {k: 0 for k in CLASSES}
    order = {k: i for i, k in enumerate(CLASSES)}
    for f in sorted(plan.failures, key=lambda f: order[f.cls]):
        counters[f.cls] += 1
        data = dict(f.data)
        data["class"] = f.cls
        data["id"] = f"{f.cls}:{counters[f.cls]:03d}"
        ids = list(data.pop("event_ids", []))
        number = data.get("ritm")
        system = data.get("system")
        if number and f.cls not in ("late_revocation", "missing_revocation"):
            ids = grant_ids(number) + [i for i in ids if i not in grant_ids(number)]
        if f.cls in ("late_revocation", "missing_revocation") and number:
            data["grant_event_ids"] = grant_ids(number)
        if f.cls == "missing_revocation":
            pid = data["person_id"]
            held = open_h.get((pid, system), [])
            if data["trigger"] == "end_date":
                held = [h for h in held if h.ent == (ritms[number].granted or ritms[number].ent).key]
            data["still_held"] = sorted(h.ent for h in held)
            ids += [e for h in held for e in h.grant_events]
            other = r.other_pairs["hr"].get(data["trigger_ref"], [])
            data["other_system_removal_event_ids"] = [row["event_id"] for row in other]
        if f.cls == "supplier_access_after_contract_end":
            pid = data["person_id"]
            data["still_held"] = {s: sorted(h.ent for h in open_h.get((pid, s), [])) for s in by_pid[pid].systems}
        if f.cls in ("orphan_account", "shared_account", "ownerless_service_account"):
            acc = acc_by_name[(system, data["account"])]
            data["account_id"] = acc.uid
            ids += noise.special_ids.get(acc.key, [])
            if acc.change:
                ids = [row["event_id"] for row in r.other_pairs["change"].get(acc.change.cid, [])
                       if row["vendor_action"] in ("CreateUser", "AssumeRole")] + ids
        if "person_id" in data:
            data["accounts"] = _accounts_of(by_pid[data["person_id"]])
        if system:
            data["source"] = SOURCES[system]
        data["event_ids"] = ids
        failures.append(data)

    def holding_row(h) -> dict:
        return {"entitlement": h.ent, "granted": h.granted.isoformat(), "removed": h.removed.isoformat() if h.removed else None,
                "pre_period": h.pre, "approval": h.via, "grant_event_ids": h.grant_events,
                "removal_event_ids": h.remove_events}

    access: dict[str, dict[str, list]] = {}
    other_access: dict[str, list] = {}
    for h in sorted(r.holdings, key=lambda h: (h.holder, h.system, h.granted, h.ent)):
        if h.holder in by_pid:
            access.setdefault(h.holder, {}).setdefault(h.system, []).append(holding_row(h))
        else:
            other_access.setdefault(f"{SOURCES[h.system]}/{h.holder}", []).append(holding_row(h))

    requests = {}
    for x in sorted(plan.ritms, key=lambda x: x.number):
        requests[x.number] = {
            "subject": x.subject.pid, "entitlement": x.ent.key, "system": x.ent.system, "purpose": x.purpose,
            "opened_by": x.opened_by.pid, "approvers": [a.approver.pid for a in x.approvals],
            "decision": x.decision, "decided": x.decided.isoformat() if x.decided else None,
            "granted_at": x.grant_at.isoformat() if x.grant_at else None,
            "granted_entitlement": (x.granted or x.ent).key if x.grant_at else None,
            "executor": (x.executor.pid if x.executor else "automation") if x.grant_at else None,
            "end_date": _d(x.end) or None, "end_removal": x.end_removal, "classes": sorted(x.tags),
            "exception": x.exception.eid if x.exception else None}

    people = {}
    for p in sorted(c.people, key=lambda p: p.pid):
        people[p.pid] = {"email": p.email, "username": p.username, "worker_type": p.worker_type, "role": p.role,
                         "supplier": p.supplier, "systems": p.systems, "accounts": _accounts_of(p),
                         "hired": _d(p.hire), "terminated": _d(p.term), "hr_recorded_termination": p.hr_term,
                         "transfer": _d(p.transfer.on) if p.transfer else None,
                         "leave": [_d(p.leave[0]), _d(p.leave[1])] if p.leave else None}

    accounts = {"orphan": [], "shared": [], "service": []}
    for a in plan.accounts:
        row = {"system": a.system, "source": SOURCES[a.system], "account": a.name, "account_id": a.uid}
        if a.kind == "shared":
            row.update(supplier_id=a.supplier, used_by_person_ids=[p.pid for p in a.users])
        if a.kind == "service":
            row.update(owner=a.owner.email if a.owner else None, change_id=a.change.cid if a.change else None,
                       owner_basis="IAM user tag 'owner' set at CreateUser")
        accounts[a.kind].append(row)
    expected_orphans = accounts["orphan"] + [dict(x, reason="shared supplier account") for x in accounts["shared"]]

    return {
        "generator": {"name": "accessproof.demo.simulate", "seed": seed, "people": len(c.people),
                      "start": c.start.isoformat(), "end": c.end.isoformat(), "noise_per_person_day": npd,
                      "rates": asdict(rates)},
        "company": {"name": "Acme Medical", "okta_org": OKTA_ORG, "aws_account": AWS_ACCOUNT, "github_org": GH_ORG,
                    "sources": SOURCES, "sla_hours": SLA_HOURS,
                    "conventions": {
                        "trigger_time": "termination / end date / contract end / exception expiry: the calendar "
                                        "date; clean removals happen on that date (12:00-22:00 UTC), late ones "
                                        "3-9 days after it",
                        "ownership": "service accounts (svc-*) are owned through the IAM tag 'owner'",
                        "automation": "Okta Workflows (PublicClientApp) and the AWS role servicenow-provisioner "
                                      "(session named after the ticket) provision; IT admins assume iam-admin",
                        "standing_sessions": "AssumeRole into iam-admin / servicenow-provisioner opens a session of "
                                             "standing access; it is not a grant",
                        "unsuspend": "user.lifecycle.unsuspend after a leave is triggered by the HR Return event "
                                     "(hr_execution_pairs)"}},
        "failure_classes": list(CLASSES),
        "failure_counts": {k: counters[k] for k in CLASSES},
        "failures": failures,
        "approval_execution_pairs": r.pairs,
        "change_execution_pairs": r.other_pairs["change"],
        "hr_execution_pairs": {**r.other_pairs["hr"], **r.other_pairs["transfer"]},
        "contract_end_execution_pairs": r.other_pairs["contract_end"],
        "exception_execution_pairs": r.other_pairs["exception"],
        "requests": requests,
        "people": people,
        "access_truth": access,
        "account_access_truth": other_access,
        "expected_orphan_accounts": expected_orphans,
        "ownerless_service_accounts": [x for x in accounts["service"] if x["owner"] is None],
        "service_accounts": accounts["service"],
        "shared_accounts": accounts["shared"],
        "exceptions": {e.eid: {"subject": e.subject.pid, "entitlement": e.ent.key, "expiry": e.expiry.isoformat(),
                               "outcome": e.outcome, "ritm": e.ritm.number if e.ritm else None,
                               "renews": e.renews.eid if e.renews else None} for e in plan.exceptions},
        "duplicates": dups,
        "identity_quirks": plan.quirks,
        "hostile_values": plan.hostile,
    }
