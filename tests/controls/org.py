"""A small organisation in vendor formats for control tests: HR (Workday-style CSV with managers), ServiceNow
Table API requests and approvals, QMS CSV exports (exceptions, training, suppliers, changes, access reviews),
Okta System Log, GitHub audit log and CloudTrail — ingested through ``ingest_paths``, then linked.

``build_org`` writes one organisation where every control of the catalogue has at least one passing and one
failing resource; each case is commented with the control it is for.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

from accessproof.ingest import ingest_paths
from tests.linking.vendor import (
    OKTA,
    Org,
    approval,
    cloudtrail,
    github,
    okta,
    ritm,
    write_csv,
)

POLICY = Path(__file__).with_name("policy_test.yaml")
MARIA = "maria.manager@acme.com"  # manager of the IT team, Head of IT, approver
QUINN = "quinn.quality@acme.com"  # Head of Quality
CARL = "carl.admin@acme.com"  # IT admin who executes grants
ANNA, BEN, EVE, DAN, WALT = ("anna.schmidt@acme.com", "ben.ortiz@acme.com", "eve.adams@acme.com",
                             "dan.quick@acme.com", "walt.dormant@acme.com")
SAM, SUE, SID, SAL = "sam.vendor@ext.com", "sue.vendor@ext.com", "sid.vendor@ext.com", "sal.vendor@ext.com"
APPROVER_COURSE = "SOP-IT-012 Access Management for Approvers"
GXP_COURSE = "SOP-QA-001 GxP Fundamentals"

WORKER_COLUMNS = ["Employee ID", "Legal Name", "Work Email", "Username", "Worker Type", "Supplier ID", "Manager ID",
                  "Business Unit", "Job Title", "Hire Date", "Termination Date"]
HR_EVENT_COLUMNS = ["Event ID", "Employee ID", "Event Type", "Effective Date", "Entered At", "Entered By"]
EXC_COLUMNS = ["Exception ID", "Subject", "System", "Entitlement", "Justification", "Compensating Control", "Owner",
               "Approved By", "Approved On", "Valid From", "Expiry Date", "Status"]
TRN_COLUMNS = ["Record ID", "Trainee", "Course", "Completed On", "Valid Until", "Status"]
SUP_COLUMNS = ["Supplier ID", "Supplier Name", "Qualification Status", "Contract Start", "Contract End",
               "Approved Scope", "Owner", "Next Review"]
CHG_COLUMNS = ["Change ID", "Title", "Subject", "Entitlement", "Requested By", "Approved By", "Opened", "Approved",
               "Implemented", "Status"]
REVIEW_COLUMNS = ["Review ID", "Campaign", "User", "Access", "Decision", "Reviewer", "Decided On"]
#: An IGA access-review campaign export (SailPoint-style) read through a declarative mapping.
REVIEW_MAPPING: dict[str, Any] = {
    "description": "access review decisions", "system": "iga:reviews", "record": "workflow",
    "kind": "recertification_decision", "format": "csv", "timezone": "UTC", "id": "Review ID",
    "fields": {"subject": "User", "scope": "Access", "decision": {"column": "Decision", "lower": True},
               "decided": {"column": "Decided On", "format": "%Y-%m-%d %H:%M"},
               "approvers": {"column": "Reviewer", "split": ";"}, "attributes.campaign": "Campaign"},
    "required": ["subject", "scope", "decision"],
}


def person(pid: str, name: str, email: str, username: str = "", *, manager: str = "", title: str = "Engineer",
           worker_type: str = "Employee", supplier: str = "", terminated: str = "", bu: str = "IT") -> dict:
    return {"Employee ID": pid, "Legal Name": name, "Work Email": email, "Username": username,
            "Worker Type": worker_type, "Supplier ID": supplier, "Manager ID": manager, "Business Unit": bu,
            "Job Title": title, "Hire Date": "2020-01-06", "Termination Date": terminated}


def signin(when: str, login: str, ip: str = "198.51.100.7") -> dict:
    e = okta(when, "user.session.start", actor=login)
    e["client"] = copy.deepcopy(e["client"])
    e["client"]["ipAddress"] = ip
    e["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"signin|{when}|{login}|{ip}"))
    return e


def ct(when: str, name: str, params: dict, *, response: dict | None = None, session: str = "OPS",
       role: str = "servicenow-provisioner") -> dict:
    rec = cloudtrail(when, name, params, session=session, role=role)
    rec["responseElements"] = response
    return rec


class ControlOrg(Org):
    """``Org`` plus the QMS exports and access reviews."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.exceptions: list[dict] = []
        self.training: list[dict] = []
        self.suppliers: list[dict] = []
        self.changes: list[dict] = []
        self.reviews: list[dict] = []

    def ingest(self, store) -> dict[str, int]:
        out = super().ingest(store)
        r = self.root
        for rows, cols, rel, mapping in (
            (self.exceptions, EXC_COLUMNS, "qms/exceptions.csv", "qms_exceptions"),
            (self.training, TRN_COLUMNS, "qms/training.csv", "qms_training"),
            (self.suppliers, SUP_COLUMNS, "qms/suppliers.csv", "qms_suppliers"),
            (self.changes, CHG_COLUMNS, "qms/changes.csv", "qms_changes"),
            (self.reviews, REVIEW_COLUMNS, "iga/reviews.csv", REVIEW_MAPPING),
        ):
            if rows:
                s = ingest_paths(store, "csv", [write_csv(r / rel, cols, rows)], options={"mapping": mapping})
                assert s.quarantined == 0 and not s.file_errors, (rel, s.as_dict())
                out[rel] = s.accepted
        return out

    # ------------------------------------------------------------ helpers

    def request(self, number: str, subject: str, item: str, opened: str, decided: str | None,
                approvers: tuple[str, ...] = (MARIA,), *, state: str = "approved", end: str | None = None,
                opened_by: str | None = None) -> None:
        r = ritm(number, subject=subject, item=item, opened=opened, approved=decided if state != "requested" else None,
                 approval=state, end=end, state="3" if state == "approved" else "4")
        if opened_by:
            r["opened_by.email"] = opened_by
        self.ritms.append(r)
        for a in approvers:
            self.approvals.append(approval(number, approver=a, state=state.capitalize(), created=opened,
                                           decided=decided if state != "requested" else None))

    def exception(self, eid: str, subject: str, entitlement: str, valid_from: str, expiry: str, *,
                  owner: str = QUINN, control: str = "Second signature on every approval",
                  status: str = "Approved", system: str = "Okta") -> None:
        self.exceptions.append({"Exception ID": eid, "Subject": subject, "System": system,
                                "Entitlement": entitlement, "Justification": "Deputy during absence",
                                "Compensating Control": control, "Owner": owner,
                                "Approved By": f"{QUINN};{MARIA}", "Approved On": valid_from,
                                "Valid From": valid_from, "Expiry Date": expiry, "Status": status})


def build_org(root: Path) -> ControlOrg:
    o = ControlOrg(root)
    o.workers += [
        person("M-1", "Maria Manager", MARIA, "mmanager", title="Head of IT"),
        person("A-1", "Carl Admin", CARL, "cadmin", manager="M-1", title="Systems Administrator"),
        person("Q-1", "Quinn Quality", QUINN, "qquality", title="Head of Quality and Regulatory Affairs",
               bu="Quality"),
        person("W-1", "Anna Schmidt", ANNA, "aschmidt", manager="M-1"),
        person("W-2", "Ben Ortiz", BEN, "bortiz-gh", manager="M-1"),
        person("W-3", "Eve Adams", EVE, "eadams", manager="M-1", terminated="2025-03-10"),
        person("W-5", "Dan Quick", DAN, "dquick", manager="M-1", terminated="2025-03-12"),
        person("W-6", "Walt Dormant", WALT, "wdormant", manager="M-1"),
        person("S-1", "Sam Vendor", SAM, "svendor", worker_type="Supplier", supplier="SUP-9", manager="M-1"),
        person("S-4", "Sal Vendor", SAL, "salvendor", worker_type="Supplier", supplier="SUP-9", manager="M-1"),
        person("S-2", "Sue Vendor", SUE, "suvendor", worker_type="Supplier", supplier="SUP-8", manager="M-1"),
        person("S-3", "Sid Vendor", SID, "sivendor", worker_type="Supplier", supplier="SUP-7", manager="M-1"),
    ]
    o.hr_events += [
        {"Event ID": "HRE-000003", "Employee ID": "W-3", "Event Type": "Termination", "Effective Date": "2025-03-10",
         "Entered At": "2025-03-03T09:00:00+01:00", "Entered By": "hr@acme.com"},
        {"Event ID": "HRE-000005", "Employee ID": "W-5", "Event Type": "Termination", "Effective Date": "2025-03-12",
         "Entered At": "2025-03-04T09:00:00+01:00", "Entered By": "hr@acme.com"},
    ]
    o.training += [  # approver training: Maria's lapsed on 5 March; Quinn's and Carl's are current
        {"Record ID": "TRN-1", "Trainee": MARIA, "Course": APPROVER_COURSE, "Completed On": "2024-03-05",
         "Valid Until": "2025-03-05", "Status": "Expired"},
        {"Record ID": "TRN-2", "Trainee": QUINN, "Course": APPROVER_COURSE, "Completed On": "2025-01-10",
         "Valid Until": "2026-01-10", "Status": "Completed"},
        {"Record ID": "TRN-3", "Trainee": CARL, "Course": APPROVER_COURSE, "Completed On": "2025-01-10",
         "Valid Until": "2026-01-10", "Status": "Completed"},
        {"Record ID": "TRN-4", "Trainee": ANNA, "Course": GXP_COURSE, "Completed On": "2025-01-10",
         "Valid Until": "2027-01-10", "Status": "Completed"},
    ]
    o.suppliers += [
        {"Supplier ID": "SUP-9", "Supplier Name": "Ending GmbH", "Qualification Status": "Qualified",
         "Contract Start": "2023-01-01", "Contract End": "2025-03-15", "Approved Scope": "Validation",
         "Owner": MARIA, "Next Review": "2025-12-01"},
        {"Supplier ID": "SUP-8", "Supplier Name": "Current Ltd", "Qualification Status": "Qualified",
         "Contract Start": "2023-01-01", "Contract End": "2027-01-01", "Approved Scope": "Operations",
         "Owner": MARIA, "Next Review": "2025-12-01"},
        {"Supplier ID": "SUP-7", "Supplier Name": "Suspended s.r.o.", "Qualification Status": "Suspended",
         "Contract Start": "2023-01-01", "Contract End": "2027-01-01", "Approved Scope": "Firmware",
         "Owner": MARIA, "Next Review": "2025-12-01"},
    ]

    def grant(when: str, login: str, group: str, ticket: str | None = None, actor: str = CARL) -> None:
        o.okta.append(okta(when, "group.user_membership.add", target_login=login, group=group, actor=actor,
                           debug={"justification": ticket} if ticket else None))

    def revoke(when: str, login: str, group: str, actor: str = CARL) -> None:
        o.okta.append(okta(when, "group.user_membership.remove", target_login=login, group=group, actor=actor))

    # access_without_approval / approver_*: approved, executed by the admin after approval (ok everywhere)
    o.request("RITM0010001", ANNA, "Okta group: vpn-users", "2025-03-01 08:00:00", "2025-03-01 10:00:00")
    grant("2025-03-01T10:30:00", ANNA, "vpn-users", "RITM0010001")
    # access_before_approval (alarm): GitHub grant on the 8th, approval on the 9th
    o.request("RITM0010006", ANNA, "GitHub team: release-managers", "2025-03-08 08:00:00", "2025-03-09 10:00:00")
    o.github.append(github("2025-03-08T12:00:00Z", "team.add_member", user="aschmidt", team="acme/release-managers"))
    # approved first, then granted (ok): inferred from GitHub
    o.request("RITM0010002", BEN, "GitHub team: firmware", "2025-03-02 08:00:00", "2025-03-02 09:00:00")
    o.github.append(github("2025-03-02T12:00:00Z", "team.add_member", user="bortiz-gh", team="acme/firmware"))
    # access_after_rejection (alarm)
    o.request("RITM0010004", BEN, "Okta group: qms-approvers", "2025-03-04 08:00:00", "2025-03-04 10:00:00",
              state="rejected")
    grant("2025-03-05T09:00:00", BEN, "qms-approvers", "RITM0010004")
    # access_without_approval + privileged_access_outside_emergency (alarm): no record at all
    grant("2025-03-07T09:00:00", ANNA, "okta-admins")
    # scope_beyond_approval (alarm): approved erp-purchasing, granted erp-payment-approvers; plus the approved
    # purchasing grant, so Ben holds both sides of purchase-to-pay (sod_conflict alarm)
    o.request("RITM0010007", BEN, "Okta group: erp-purchasing", "2025-03-06 07:00:00", "2025-03-06 08:00:00")
    grant("2025-03-06T09:30:00", BEN, "erp-purchasing", "RITM0010007")
    grant("2025-03-06T10:00:00", BEN, "erp-payment-approvers", "RITM0010007")
    # sod_conflict (ok): Anna holds only the purchasing side
    o.request("RITM0010014", ANNA, "Okta group: erp-purchasing", "2025-03-05 07:00:00", "2025-03-05 08:00:00")
    grant("2025-03-05T09:00:00", ANNA, "erp-purchasing", "RITM0010014")
    # requester_is_approver (alarm): Maria raises for Ben and approves; her approver training lapsed on the 5th
    # (approver_training_expired alarm); Ben's manager is Maria, so approver_not_authorised is ok
    o.request("RITM0010009", BEN, "Okta group: vpn-users", "2025-03-10 08:00:00", "2025-03-10 09:00:00",
              opened_by=MARIA)
    grant("2025-03-10T10:00:00", BEN, "vpn-users", "RITM0010009")
    # approver_not_authorised (alarm): Carl is not Anna's manager; GxP training: Anna has it (conditions ok)
    o.request("RITM0010010", ANNA, "Okta group: qms-authors", "2025-03-03 08:00:00", "2025-03-03 09:00:00",
              approvers=(CARL,))
    grant("2025-03-03T10:00:00", ANNA, "qms-authors", "RITM0010010")
    # approver_is_executor (alarm): Quinn approves and grants herself; manager + system owner approved (ok)
    o.request("RITM0010011", ANNA, "Okta group: qms-approvers", "2025-03-04 08:00:00", "2025-03-04 09:00:00",
              approvers=(MARIA, QUINN))
    grant("2025-03-04T11:00:00", ANNA, "qms-approvers", "RITM0010011", actor=QUINN)
    # access_conditions_not_met (alarm): Ben has no GxP training
    o.request("RITM0010012", BEN, "Okta group: qms-authors", "2025-03-04 08:00:00", "2025-03-04 09:00:00")
    grant("2025-03-04T10:00:00", BEN, "qms-authors", "RITM0010012")
    # time_bound_access_not_removed: Anna's ends on the 20th, removed on the 25th (alarm); Ben's on time (ok)
    o.request("RITM0010003", ANNA, "AWS policy: arn:aws:iam::aws:policy/ReadOnlyAccess", "2025-03-03 08:00:00",
              "2025-03-03 09:00:00", end="2025-03-20")
    o.request("RITM0010013", BEN, "AWS policy: arn:aws:iam::aws:policy/ReadOnlyAccess", "2025-03-03 08:00:00",
              "2025-03-03 09:00:00", end="2025-03-20")
    for who, sess, off in (("aschmidt", "RITM0010003", "2025-03-25T09:00:00Z"),
                           ("bortiz-gh", "RITM0010013", "2025-03-20T15:00:00Z")):
        pol = {"userName": who, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
        o.cloudtrail.append(ct("2025-03-03T09:10:00Z", "AttachUserPolicy", pol, session=sess))
        o.cloudtrail.append(ct(off, "DetachUserPolicy", pol))
    # leavers. Eve (terminated 10 March): Okta deactivated 33 h late (revocation_late alarm), GitHub team and
    # AWS user never removed (revocation_missing alarm), her access key never deleted
    # (credential_not_revoked_at_offboarding alarm). Dan (12 March): everything removed the same day (ok).
    grant("2025-03-01T11:00:00", EVE, "vpn-users")
    o.github.append(github("2025-03-01T11:00:00Z", "team.add_member", user="eadams", team="acme/firmware"))
    o.cloudtrail.append(ct("2025-03-01T11:00:00Z", "CreateAccessKey", {"userName": "eadams"},
                           response={"accessKey": {"accessKeyId": "AKIAEVE0000000000001", "userName": "eadams",
                                                   "status": "Active"}}))
    o.okta.append(okta("2025-03-11T09:00:00", "user.lifecycle.deactivate", target_login=EVE, actor=CARL))
    grant("2025-03-02T11:00:00", DAN, "vpn-users")
    o.cloudtrail.append(ct("2025-03-02T11:00:00Z", "CreateAccessKey", {"userName": "dquick"},
                           response={"accessKey": {"accessKeyId": "AKIADAN0000000000001", "userName": "dquick",
                                                   "status": "Active"}}))
    o.okta.append(okta("2025-03-12T15:00:00", "user.lifecycle.deactivate", target_login=DAN, actor=CARL))
    o.cloudtrail.append(ct("2025-03-12T16:00:00Z", "DeleteAccessKey",
                           {"userName": "dquick", "accessKeyId": "AKIADAN0000000000001"}))
    o.cloudtrail.append(ct("2025-03-12T16:30:00Z", "DeleteUser", {"userName": "dquick"}))
    # exceptions. EXC-1 (Ben, qms-approvers) expired on the 15th and the access remains
    # (exception_expired_access_remains alarm); EXC-2 (Anna, vpn-admins) expired on the 10th and the access went
    # that day (ok) — held 8 days, beyond the policy's 5 (access_beyond_max_duration alarm; Ben's 2 days ok);
    # EXC-3 (Ben, erp-payment-approvers) is in force at the end of the data and excepts his findings on it;
    # EXC-4 names neither owner nor compensating control (exception_incomplete alarm).
    o.exception("EXC-1", BEN, "Okta group: qms-approvers", "01.03.2025", "15.03.2025")
    o.exception("EXC-2", ANNA, "Okta group: vpn-admins", "01.03.2025", "10.03.2025")
    grant("2025-03-02T09:00:00", ANNA, "vpn-admins", "EXC-2")
    revoke("2025-03-10T12:00:00", ANNA, "vpn-admins")
    grant("2025-03-20T09:00:00", BEN, "vpn-admins")
    revoke("2025-03-22T09:00:00", BEN, "vpn-admins")
    o.exception("EXC-3", BEN, "Okta group: erp-payment-approvers", "05.03.2025", "30.04.2025",
                control="Four-eyes check of each payment batch")
    o.exception("EXC-4", ANNA, "Okta group: vpn-users", "01.03.2025", "31.12.2025", owner="", control="")
    # suppliers. SUP-9's contract ended on the 15th: Sam still holds access (supplier_access_after_contract_end
    # alarm), Sal's was removed that day (ok). SUP-7 is suspended: Sid holds access (supplier_not_qualified and
    # access_conditions_not_met alarms); Sue's SUP-8 is qualified (ok).
    for who in (SAM, SAL, SUE, SID):
        grant("2025-03-01T12:00:00", who, "external-suppliers")
    revoke("2025-03-15T12:00:00", SAL, "external-suppliers")
    o.okta.append(okta("2025-03-15T12:05:00", "user.lifecycle.deactivate", target_login=SAL, actor=CARL))
    # privileged_access_outside_emergency (ok): emergency change for Carl, removed within 24 h
    o.changes.append({"Change ID": "CR-0009", "Title": "Emergency access: Okta outage", "Subject": CARL,
                      "Entitlement": "Okta group: okta-admins", "Requested By": CARL, "Approved By": MARIA,
                      "Opened": "2025-03-15T09:00:00+01:00", "Approved": "2025-03-15T09:30:00+01:00",
                      "Implemented": "2025-03-15T10:00:00+01:00", "Status": "Closed"})
    grant("2025-03-15T10:00:00", CARL, "okta-admins", "CR-0009", actor=MARIA)
    revoke("2025-03-15T18:00:00", CARL, "okta-admins", actor=MARIA)
    # service accounts (ownerless_service_account): svc-backup carries an owner tag (ok), svc-reports none (alarm)
    o.cloudtrail.append(ct("2025-03-05T09:00:00Z", "CreateUser",
                           {"userName": "svc-backup", "tags": [{"key": "owner", "value": ANNA}]}))
    o.cloudtrail.append(ct("2025-03-05T09:05:00Z", "CreateUser", {"userName": "svc-reports"}))
    # credential_not_rotated (max_age_days=20 in the test): Anna's first key is old (alarm), her second new (ok)
    o.cloudtrail.append(ct("2025-03-01T08:00:00Z", "CreateAccessKey", {"userName": "aschmidt"},
                           response={"accessKey": {"accessKeyId": "AKIAANNA000000000001", "userName": "aschmidt",
                                                   "status": "Active"}}))
    o.cloudtrail.append(ct("2025-03-25T08:00:00Z", "CreateAccessKey", {"userName": "aschmidt"},
                           response={"accessKey": {"accessKeyId": "AKIAANNA000000000002", "userName": "aschmidt",
                                                   "status": "Active"}}))
    # use. shared_account: one account from three addresses on two days (alarm; it is an orphan too);
    # orphan_account: ghost@acme.com is nobody (alarm); dormant_account (dormant_days=10 in the test): Walt
    # signed in on the 1st only (alarm), Anna on the 31st (ok)
    for day in ("2025-03-20", "2025-03-21"):
        for i, ip in enumerate(("198.51.100.1", "198.51.100.2", "198.51.100.3")):
            o.okta.append(signin(f"{day}T{8 + i:02d}:00:00", "vendor-shared@acme.com", ip))
    o.okta.append(signin("2025-03-18T08:00:00", "ghost@acme.com", "192.0.2.99"))
    o.okta.append(signin("2025-03-01T08:00:00", WALT))
    for d in ("2025-03-02", "2025-03-16", "2025-03-31"):
        o.okta.append(signin(f"{d}T07:00:00", ANNA))
    return o


def build_reviews(o: ControlOrg) -> None:
    """Access reviews for the recertification controls (recert_revoke_not_enforced, recertification_overdue):
    Anna's vpn-users is confirmed (ok); Ben's vpn-users is revoked on the 12th and removed on the 13th (ok);
    Ben's firmware team is revoked and never removed (alarm); Ben's qms-authors is never reviewed (overdue)."""
    def review(rid: str, user: str, access: str, decision: str, when: str) -> None:
        o.reviews.append({"Review ID": rid, "Campaign": "Q1-2025", "User": user, "Access": access,
                          "Decision": decision, "Reviewer": MARIA, "Decided On": when})

    review("REV-1", ANNA, "Okta group: vpn-users", "Keep", "2025-03-12 10:00")
    review("REV-2", BEN, "Okta group: vpn-users", "Revoke", "2025-03-12 10:00")
    review("REV-3", BEN, "GitHub team: firmware", "Revoke", "2025-03-12 10:00")
    o.okta.append(okta("2025-03-13T09:00:00", "group.user_membership.remove", target_login=BEN, group="vpn-users",
                       actor=CARL))


def results(store, assessment, control_id: str) -> list[dict]:
    """Rows of one control's run in ``assessment``, dimensions merged in."""
    from accessproof.controls.findings import run_results
    from accessproof.controls.score import flatten

    run = next(r for r in assessment.runs if r["control_id"] == control_id)
    assert run["status"] == "completed", run
    return [flatten(r) for r in run_results(store, run["run_id"])]


__all__ = ["OKTA", "POLICY", "ControlOrg", "build_org", "build_reviews", "results"]
