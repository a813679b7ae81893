"""The demo simulator: vendor shapes, determinism, and a ground truth that matches what the files say.

The checks below read the written files back like an auditor would (not the simulator's internals), so
they prove that every injected failure is visible in the data and that the clean cases really are clean.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from accessproof.demo.simulate import CLASSES, FailureRates, simulate

PEOPLE, MONTHS, SEED = 120, 4, 11

GRANTS = {
    "user.lifecycle.create", "user.lifecycle.activate", "group.user_membership.add",
    "application.user_membership.add", "system.api_token.create",
    "CreateUser", "AddUserToGroup", "AttachUserPolicy", "CreateAccessKey", "CreateLoginProfile",
    "org.add_member", "team.add_member", "repo.add_member", "personal_access_token.access_granted",
}
HEADERS = {
    "hr/workers.csv": ["Employee ID", "Legal Name", "Work Email", "Username", "Worker Type", "Supplier ID",
                       "Manager ID", "Business Unit", "Job Title", "Hire Date", "Termination Date"],
    "hr/events.csv": ["Event ID", "Employee ID", "Event Type", "Effective Date", "Entered At", "Entered By"],
    "qms/exceptions.csv": ["Exception ID", "Subject", "System", "Entitlement", "Justification",
                           "Compensating Control", "Owner", "Approved By", "Approved On", "Valid From",
                           "Expiry Date", "Status"],
    "qms/training.csv": ["Record ID", "Trainee", "Course", "Completed On", "Valid Until", "Status"],
    "qms/suppliers.csv": ["Supplier ID", "Supplier Name", "Qualification Status", "Contract Start",
                          "Contract End", "Approved Scope", "Owner", "Next Review"],
    "qms/changes.csv": ["Change ID", "Title", "Subject", "Entitlement", "Requested By", "Approved By", "Opened",
                        "Approved", "Implemented", "Status"],
}


# ------------------------------------------------------------------ reading the output back


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _berlin_date(t: datetime) -> date:
    # EU summer time: last Sunday of March 01:00 UTC .. last Sunday of October 01:00 UTC
    def last_sunday(month: int) -> datetime:
        d = date(t.year, month, 31)
        d -= timedelta(days=(d.weekday() + 1) % 7)
        return datetime(d.year, d.month, d.day, 1, tzinfo=UTC)

    off = 2 if last_sunday(3) <= t < last_sunday(10) else 1
    return (t + timedelta(hours=off)).date()


def _snow(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


class Out:
    """Everything the simulator wrote, parsed."""

    def __init__(self, root: Path):
        self.root = root
        self.truth = json.loads((root / "ground_truth.json").read_bytes())
        self.workers = {r["Employee ID"]: r for r in _rows(root / "hr/workers.csv")}
        self.by_email = {r["Work Email"].lower(): pid for pid, r in self.workers.items()}
        self.by_username = {r["Username"]: pid for pid, r in self.workers.items()}
        self.hr_events = _rows(root / "hr/events.csv")
        self.ritms = {r["number"]: r for r in json.loads((root / "servicenow/sc_req_item.json").read_bytes())["result"]}
        self.approvals: dict[str, list[dict]] = {}
        for a in json.loads((root / "servicenow/sysapproval_approver.json").read_bytes())["result"]:
            self.approvals.setdefault(a["sysapproval"], []).append(a)
        self.training = _rows(root / "qms/training.csv")
        self.okta = json.loads((root / "okta/system_log.json").read_bytes())
        self.github = json.loads((root / "github/audit_log.json").read_bytes())
        self.ct_files = sorted((root / "cloudtrail").rglob("*.json.gz"))
        self.cloudtrail = [r for f in self.ct_files for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]]
        self.events: dict[str, tuple[str, dict]] = {}
        for e in self.okta:
            self.events[e["uuid"]] = ("okta", e)
        for e in self.github:
            self.events[e["_document_id"]] = ("github", e)
        for e in self.cloudtrail:
            self.events[e["eventID"]] = ("aws", e)

    def pid(self, email_or_login: str | None) -> str | None:
        if not email_or_login:
            return None
        return self.by_email.get(email_or_login.lower()) or self.by_username.get(email_or_login)

    # ---- event reading, as a parser would

    def time(self, system: str, e: dict) -> datetime:
        if system == "okta":
            return datetime.strptime(e["published"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if system == "aws":
            return datetime.strptime(e["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return datetime.fromtimestamp(e["@timestamp"] / 1000, UTC)

    def action(self, system: str, e: dict) -> str:
        return {"okta": "eventType", "aws": "eventName", "github": "action"}[system] and e.get(
            {"okta": "eventType", "aws": "eventName", "github": "action"}[system])

    def actor_pid(self, system: str, e: dict) -> str | None:
        if system == "okta":
            return self.pid(e["actor"].get("alternateId")) if e["actor"]["type"] == "User" else None
        if system == "github":
            return self.pid(e["actor"])
        ident = e["userIdentity"]
        if ident["type"] == "IAMUser":
            return self.pid(ident.get("userName"))
        ctx = ident.get("sessionContext", {})
        src = ctx.get("sourceIdentity")
        if src:
            return self.pid(src)
        session = ident["arn"].rsplit("/", 1)[1]
        if ctx.get("sessionIssuer", {}).get("userName") == "iam-admin":
            return self.pid(session + "@acme.com")
        return None

    def entitlement(self, system: str, e: dict) -> str | None:
        a = self.action(system, e)
        if system == "okta":
            if a.startswith("user.lifecycle."):
                return "Okta account: standard user"
            for t in e["target"]:
                if t["type"] == "UserGroup":
                    return f"Okta group: {t['displayName']}"
                if t["type"] == "AppInstance":
                    return f"Okta app: {t['displayName']}"
            return None
        if system == "aws":
            rp = e.get("requestParameters") or {}
            if a in ("CreateUser", "CreateLoginProfile", "CreateAccessKey"):
                return "AWS IAM user: 111122223333"
            if "groupName" in rp:
                return f"AWS group: {rp['groupName']}"
            if "policyArn" in rp:
                return f"AWS policy: {rp['policyArn']}"
            return None
        if a in ("org.add_member", "org.invite_member"):
            return "GitHub org membership: acme-medical"
        if a.startswith("team."):
            return f"GitHub team: {e['team'].split('/', 1)[1]}"
        if a.startswith("repo."):
            return f"GitHub repo: {e['repo']} ({e.get('permission')})"
        if a.startswith("personal_access_token."):
            return "GitHub fine-grained PAT: acme-medical"
        return None

    def trained(self, email: str, day: date) -> bool:
        for t in self.training:
            if t["Trainee"].lower() == email.lower() and t["Course"].startswith("SOP-IT-012") and (
                    date.fromisoformat(t["Completed On"]) <= day <= date.fromisoformat(t["Valid Until"])):
                return True
        return False


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Out:
    root = tmp_path_factory.mktemp("demo") / "run"
    simulate(people=PEOPLE, months=MONTHS, seed=SEED, out=root)
    return Out(root)


def _failures(out: Out, cls: str) -> list[dict]:
    return [f for f in out.truth["failures"] if f["class"] == cls]


def _tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ tests


def test_same_seed_gives_byte_identical_files(tmp_path, out):
    second = tmp_path / "again"
    simulate(people=PEOPLE, months=MONTHS, seed=SEED, out=second)
    assert _tree_hash(second) == _tree_hash(out.root)
    third = tmp_path / "other-seed"
    simulate(people=PEOPLE, months=MONTHS, seed=SEED + 1, out=third)
    assert _tree_hash(third)["ground_truth.json"] != _tree_hash(out.root)["ground_truth.json"]


def test_rerun_into_the_same_directory_replaces_the_previous_output(tmp_path):
    root = tmp_path / "x"
    simulate(people=60, months=2, seed=3, out=root)
    first = _tree_hash(root)
    simulate(people=60, months=2, seed=3, out=root)
    assert _tree_hash(root) == first
    foreign = tmp_path / "foreign"
    (foreign / "github").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        simulate(people=60, months=2, seed=3, out=foreign)


def test_every_failure_class_is_injected_at_least_three_times(out):
    counts = out.truth["failure_counts"]
    assert set(counts) == set(CLASSES)
    assert all(counts[c] >= 3 for c in CLASSES), counts
    assert sum(counts.values()) == len(out.truth["failures"])


def test_rates_of_zero_switch_failures_off(tmp_path):
    summary = simulate(people=60, months=2, seed=5, out=tmp_path / "clean", rates=FailureRates.none())
    assert sum(summary.failures.values()) == 0
    truth = json.loads((tmp_path / "clean/ground_truth.json").read_bytes())
    assert truth["failures"] == []
    assert all(not r["classes"] for r in truth["requests"].values())


def test_csv_exports_have_the_vendor_headers(out):
    for rel, header in HEADERS.items():
        with open(out.root / rel, newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == header, rel
    for r in out.workers.values():
        assert r["Worker Type"] in ("Employee", "Contractor", "Supplier")
        date.fromisoformat(r["Hire Date"])
        assert (r["Supplier ID"] != "") == (r["Worker Type"] == "Supplier")
    for e in out.hr_events:
        assert e["Event Type"] in ("Hire", "Termination", "Transfer", "Leave", "Return")
        date.fromisoformat(e["Effective Date"])
        assert datetime.fromisoformat(e["Entered At"]).utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    for e in _rows(out.root / "qms/exceptions.csv"):
        for col in ("Approved On", "Valid From", "Expiry Date"):
            datetime.strptime(e[col], "%d.%m.%Y")
    for e in _rows(out.root / "qms/changes.csv"):
        assert datetime.fromisoformat(e["Opened"]).utcoffset() is not None
        assert ";" in e["Approved By"]


def test_servicenow_exports_are_table_api_json(out):
    assert out.ritms and out.approvals
    for r in out.ritms.values():
        for key in ("number", "sys_id", "cat_item", "requested_for", "opened_by", "opened_at", "approval",
                    "approval_set", "state", "sys_updated_on", "u_start_date", "u_end_date", "u_environment",
                    "u_business_unit"):
            assert key in r
        assert r["approval"] in ("approved", "rejected", "requested")
        _snow(r["opened_at"])
    for rows in out.approvals.values():
        for a in rows:
            assert a["sysapproval"] in out.ritms
            assert a["state"] in ("approved", "rejected", "requested")


def test_log_shapes(out):
    assert out.okta and out.github and out.cloudtrail
    okta_types = {e["eventType"] for e in out.okta}
    assert {"user.lifecycle.create", "user.lifecycle.activate", "user.lifecycle.deactivate", "user.lifecycle.suspend",
            "group.user_membership.add", "group.user_membership.remove", "application.user_membership.add",
            "user.session.start", "user.mfa.factor.activate", "system.api_token.create"} <= okta_types
    assert {e["outcome"]["result"] for e in out.okta if e["eventType"] == "user.session.start"} == {"SUCCESS", "FAILURE"}
    for e in out.okta[:50]:
        assert e["published"].endswith("Z") and e["version"] == "0"
        assert {"actor", "client", "outcome", "target", "transaction", "debugContext", "uuid"} <= set(e)
    names = {e["eventName"] for e in out.cloudtrail}
    assert {"CreateUser", "AddUserToGroup", "AttachUserPolicy", "CreateAccessKey", "DeleteAccessKey",
            "CreateLoginProfile", "RemoveUserFromGroup", "DetachUserPolicy", "DeleteLoginProfile", "DeleteUser",
            "ConsoleLogin", "AssumeRole"} <= names
    for e in out.cloudtrail[:200]:
        assert e["recipientAccountId"] == "111122223333" and e["eventID"] and e["userIdentity"]["type"]
    assert any((e.get("requestParameters") or {}).get("sourceIdentity") for e in out.cloudtrail
               if e["eventName"] == "AssumeRole")
    tagged = [e for e in out.cloudtrail if e["eventName"] == "CreateUser"
              and any(t["key"] == "ticket" for t in e["requestParameters"].get("tags", []))]
    assert tagged
    actions = {e["action"] for e in out.github}
    assert {"org.add_member", "org.remove_member", "team.add_member", "repo.add_member", "git.clone",
            "personal_access_token.access_granted"} <= actions
    for e in out.github[:50]:
        assert isinstance(e["@timestamp"], int) and e["org"] == "acme-medical" and e["_document_id"]
    # CloudTrail files: the S3 key layout and the gzip header carry no name or time
    for f in out.ct_files[:5]:
        rel = f.relative_to(out.root).as_posix()
        assert rel.startswith("cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/")
        assert f.name.startswith("111122223333_CloudTrail_us-east-1_2026")
        head = f.read_bytes()[:10]
        assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0" and not head[3] & 0x08


def test_cloudtrail_is_mostly_read_only_noise(out):
    noise = [e for e in out.cloudtrail if e["readOnly"] is True and e["eventName"] != "AssumeRole"]
    assert noise and all(e["eventName"].startswith(("Describe", "List", "Get")) for e in noise)
    share = len(noise) / len(out.cloudtrail)
    assert 0.78 <= share <= 0.95, share


def test_ground_truth_references_exist(out):
    t = out.truth
    for f in t["failures"]:
        if f.get("ritm"):
            assert f["ritm"] in out.ritms, f
        for eid in f["event_ids"]:
            assert eid in out.events, (f["id"], eid)
        # findings of absence (nothing removed) may have no event behind them; every other one has
        assert f["event_ids"] or f["class"] in ("missing_revocation", "supplier_access_after_contract_end"), f
    for number, rows in t["approval_execution_pairs"].items():
        assert number in out.ritms
        for row in rows:
            system, e = out.events[row["event_id"]]
            assert system == row["system"] and out.action(system, e) == row["vendor_action"]
    for group in ("change_execution_pairs", "hr_execution_pairs", "exception_execution_pairs"):
        for rows in t[group].values():
            for row in rows:
                assert row["event_id"] in out.events
    for systems in t["access_truth"].values():
        for rows in systems.values():
            for h in rows:
                for eid in h["grant_event_ids"] + h["removal_event_ids"]:
                    assert eid in out.events
    for pid in t["access_truth"]:
        assert pid in out.workers


def test_ticket_flags_match_the_events(out):
    for number, rows in out.truth["approval_execution_pairs"].items():
        for row in rows:
            _, e = out.events[row["event_id"]]
            assert (number in json.dumps(e)) == row["carries_ticket"], (number, row)


def _ritm_failures(out: Out) -> dict[str, set[str]]:
    by: dict[str, set[str]] = {}
    for f in out.truth["failures"]:
        if f.get("ritm"):
            by.setdefault(f["ritm"], set()).add(f["class"])
    return by


def test_requests_are_clean_unless_injected(out):
    """Approved before the grant, granted what was approved, no self-approval, approver not the executor,
    approver trained — for every request no failure names; and each injected one shows its violation."""
    failed = _ritm_failures(out)
    checked = 0
    for number, rows in out.truth["approval_execution_pairs"].items():
        r = out.ritms[number]
        grants = [(out.events[x["event_id"]]) for x in rows if not x.get("removal")
                  and x["vendor_action"] in GRANTS]
        if not grants:
            continue
        classes = failed.get(number, set()) - {"late_revocation", "missing_revocation",
                                               "exception_expired_access_remains"}
        approvals = out.approvals[number]
        approvers = {out.pid(a["approver"]) for a in approvals}
        decided = max(_snow(a["sys_updated_on"]) for a in approvals)
        first_grant = min(out.time(s, e) for s, e in grants)
        executors = {out.actor_pid(s, e) for s, e in grants}
        ents = {out.entitlement(s, e) for s, e in grants}
        untrained = [a for a in approvals if a["state"] == "approved"
                     and not out.trained(a["approver"], _berlin_date(_snow(a["sys_updated_on"])))]
        violations = set()
        if r["approval"] == "rejected":
            violations.add("provisioning_after_rejection")
        elif first_grant < decided:
            violations.add("provisioning_before_approval")
        if ents != {r["cat_item"]}:
            violations.add("scope_beyond_approval")
        if out.pid(r["opened_by"]) in approvers:
            violations.add("requester_is_approver")
        if approvers & executors:
            violations.add("approver_is_executor")
        if untrained:
            violations.add("approver_training_expired")
        assert out.pid(r["requested_for"]) not in approvers or "requester_is_approver" in classes, number
        assert violations == classes, (number, violations, classes)
        checked += 1
    assert checked > 100


def test_every_grant_is_explained(out):
    """Each granting event belongs to a request, a change, an HR event — or is an injected unapproved grant."""
    explained = set()
    for rows in out.truth["approval_execution_pairs"].values():
        explained |= {x["event_id"] for x in rows}
    for group in ("change_execution_pairs", "hr_execution_pairs", "exception_execution_pairs",
                  "contract_end_execution_pairs"):
        for rows in out.truth[group].values():
            explained |= {x["event_id"] for x in rows}
    unapproved = {e for f in _failures(out, "provisioning_without_approval") for e in f["event_ids"]}
    missing = []
    for eid, (system, e) in out.events.items():
        a = out.action(system, e)
        if a in GRANTS and eid not in explained and eid not in unapproved:
            missing.append((system, a, eid))
    assert not missing, missing[:5]
    for f in _failures(out, "provisioning_without_approval"):
        grants = [out.events[e] for e in f["event_ids"] if out.action(*out.events[e]) in GRANTS]
        assert grants and all(f["ritm"] is None for _ in grants)
        assert not any(f["entitlement"] == r["cat_item"] and out.pid(r["requested_for"]) == f["person_id"]
                       for r in out.ritms.values())


def _day(s: str) -> date:
    return datetime.fromisoformat(s).date()


def test_revocations_are_timely_unless_injected(out):
    """After terminations, end dates, contract ends and exception expiries, access goes the same day —
    except where a late / missing revocation (or a supplier / exception failure) is recorded."""
    t = out.truth
    end = date.fromisoformat(t["generator"]["end"])
    late = {(f["person_id"], f["system"], f["trigger_ref"]) for f in _failures(out, "late_revocation")}
    missing = {(f["person_id"], f["system"], f["trigger_ref"]) for f in _failures(out, "missing_revocation")}
    supplier = {f["person_id"] for f in _failures(out, "supplier_access_after_contract_end")}
    exc_fail = {f["exception_id"] for f in _failures(out, "exception_expired_access_remains")}
    seen = {"termination": 0, "end_date": 0}
    for ev in out.hr_events:
        if ev["Event Type"] != "Termination":
            continue
        pid, day = ev["Employee ID"], date.fromisoformat(ev["Effective Date"])
        for system, rows in t["access_truth"].get(pid, {}).items():
            for h in rows:
                if _day(h["granted"]) > day or (h["removed"] and _day(h["removed"]) < day):
                    continue  # granted after, or already gone before (end date, transfer)
                key = (pid, system, ev["Event ID"])
                if key in missing:
                    continue
                assert h["removed"], (key, h)
                delay = _day(h["removed"]) - day
                assert (delay >= timedelta(days=3)) == (key in late), (key, h)
                for eid in h["removal_event_ids"]:
                    s, e = out.events[eid]
                    assert abs(out.time(s, e) - datetime.fromisoformat(h["removed"])) < timedelta(minutes=5)
                seen["termination"] += 1
        assert not any(k[0] == pid and k[2] == ev["Event ID"] for k in missing) or any(
            h["removed"] is None for rows in t["access_truth"][pid].values() for h in rows)
    for number, req in t["requests"].items():
        if not req["end_date"] or not req["granted_at"] or date.fromisoformat(req["end_date"]) >= end:
            continue
        if req["end_removal"] is None:
            continue  # access ended earlier, with the person's termination
        pid, system = req["subject"], req["system"]
        rows = [h for h in t["access_truth"][pid][system] if h["approval"] == number]
        key = (pid, system, number)
        assert rows
        if key in missing:
            assert rows[0]["removed"] is None
            continue
        delay = _day(rows[0]["removed"]) - date.fromisoformat(req["end_date"])
        assert (delay >= timedelta(days=3)) == (key in late), key
        seen["end_date"] += 1
    assert seen["termination"] > 10 and seen["end_date"] > 5
    suppliers = {r["Supplier ID"]: r for r in _rows(out.root / "qms/suppliers.csv")}
    for pid, w in out.workers.items():
        contract_end = date.fromisoformat(suppliers[w["Supplier ID"]]["Contract End"]) if w["Supplier ID"] else None
        if not contract_end or contract_end >= end:
            continue
        still = [h for rows in t["access_truth"][pid].values() for h in rows if h["removed"] is None]
        assert bool(still) == (pid in supplier), pid
        assert (w["Termination Date"] == "") == (pid in supplier)
    for e in _rows(out.root / "qms/exceptions.csv"):
        expiry = datetime.strptime(e["Expiry Date"], "%d.%m.%Y").date()
        info = t["exceptions"][e["Exception ID"]]
        if expiry >= end or info["renews"]:
            continue
        pid = out.pid(e["Subject"])
        rows = [h for rows in t["access_truth"][pid].values() for h in rows if h["entitlement"] == e["Entitlement"]]
        renewed = any(x["renews"] == e["Exception ID"] for x in t["exceptions"].values())
        if e["Exception ID"] in exc_fail:
            assert rows[-1]["removed"] is None and not renewed and e["Status"] == "Expired"
        elif not renewed:
            assert _day(rows[-1]["removed"]) == expiry


def test_every_account_maps_to_a_person_or_is_a_known_exception(out):
    t = out.truth
    known = {(a["system"], a["account"].lower()) for a in t["expected_orphan_accounts"] + t["service_accounts"]}
    unknown = set()
    for e in out.okta:
        for obj in [e["actor"], *e["target"]]:
            if obj["type"] == "User" and not out.pid(obj["alternateId"]):
                unknown.add(("okta", obj["alternateId"].lower()))
    for e in out.cloudtrail:
        ident = e["userIdentity"]
        names = [ident.get("userName"), (e.get("requestParameters") or {}).get("userName")]
        for n in names:
            if n and not out.pid(n) and n not in ("ci-deploy",):
                unknown.add(("aws", n.lower()))
    for e in out.github:
        for n in (e.get("actor"), e.get("user")):
            if n and not out.pid(n):
                unknown.add(("github", n.lower()))
    assert unknown == known
    orphans = {(f["system"], f["account"].lower()) for f in _failures(out, "orphan_account")}
    shared = {(f["system"], f["account"].lower()) for f in _failures(out, "shared_account")}
    services = {(a["system"], a["account"].lower()) for a in t["service_accounts"]}
    assert orphans | shared | services == known and not orphans & shared


def test_service_accounts_without_owner_tag_are_the_ownerless_ones(out):
    ownerless = {f["account"] for f in _failures(out, "ownerless_service_account")}
    created = {}
    for e in out.cloudtrail:
        if e["eventName"] == "CreateUser" and e["requestParameters"]["userName"].startswith("svc-"):
            tags = {x["key"]: x["value"] for x in e["requestParameters"]["tags"]}
            created[e["requestParameters"]["userName"]] = tags
    assert ownerless and ownerless <= set(created)
    for name, tags in created.items():
        assert ("owner" not in tags) == (name in ownerless)
        if "owner" in tags:
            assert out.pid(tags["owner"])


def test_shared_accounts_are_used_from_several_places_on_one_day(out):
    for f in _failures(out, "shared_account"):
        per_day: dict[date, set[str]] = {}
        for eid in f["event_ids"]:
            system, e = out.events[eid]
            ip = {"okta": lambda x: x["client"]["ipAddress"], "aws": lambda x: x["sourceIPAddress"],
                  "github": lambda x: x["actor_ip"]}[system](e)
            per_day.setdefault(out.time(system, e).date(), set()).add(ip)
        assert max(len(v) for v in per_day.values()) >= 2, f


def test_data_quality_realities(out):
    t = out.truth
    dup = t["duplicates"]
    assert dup["cloudtrail_files"] and dup["okta_events"]
    uuids = [e["uuid"] for e in out.okta]
    assert len(uuids) > len(set(uuids))
    for d in dup["cloudtrail_files"]:
        assert (out.root / d["original"]).read_bytes() == (out.root / d["duplicate"]).read_bytes()
    kinds = {(q["kind"], q["system"]) for q in t["identity_quirks"]}
    assert ("email_case", "okta") in kinds and ("username_only_in_hr", "github") in kinds
    logins = {e["actor"]["alternateId"] for e in out.okta if e["actor"]["type"] == "User"}
    assert any(x != x.lower() for x in logins)


def test_hostile_values_are_written_verbatim(out):
    values = {h["value"] for h in out.truth["hostile_values"]}
    assert "<img src=x onerror=alert(1)>" in values and '=HYPERLINK("http://x","click")' in values
    okta_text = (out.root / "okta/system_log.json").read_text(encoding="utf-8")
    assert "<img src=x onerror=alert(1)>" in json.loads(json.dumps(okta_text))
    assert any(e["Justification"] == '=HYPERLINK("http://x","click")' for e in _rows(out.root / "qms/exceptions.csv"))


def test_default_company_size(tmp_path):
    s = simulate(out=tmp_path / "default")
    assert 50_000 <= s.total_events <= 150_000, s.total_events
    assert all(3 <= n <= 12 for n in s.failures.values()), s.failures
    assert s.cloudtrail_read_only_share > 0.8
