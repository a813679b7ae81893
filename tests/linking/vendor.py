"""Vendor-shaped records for identity and linking tests: Okta System Log, GitHub audit log, CloudTrail,
ServiceNow Table API and Workday-style CSV — written to files and ingested through ``ingest_paths`` so the
tests exercise the real parsers, never canonical rows made to fit.
"""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from accessproof.ingest import ingest_paths

OKTA = "okta:acme"
AWS_ACCOUNT = "111122223333"


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC) if "+" not in s else datetime.fromisoformat(s)


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(parts)))


def okta(when: str, event_type: str, *, target_login: str | None = None, target_id: str | None = None,
         group: str | None = None, app: str | None = None, actor: str = "admin@acme.com",
         actor_type: str = "User", debug: dict | None = None, result: str = "SUCCESS") -> dict:
    targets = []
    if target_login:
        targets.append({"id": target_id or "00u" + _uid(target_login)[:17], "type": "User",
                        "alternateId": target_login, "displayName": target_login.split("@")[0]})
    if group:
        targets.append({"id": "00g" + _uid(group)[:17], "type": "UserGroup", "alternateId": "unknown",
                        "displayName": group})
    if app:
        targets.append({"id": "0oa" + _uid(app)[:17], "type": "AppInstance", "alternateId": app, "displayName": app})
    return {
        "uuid": _uid("okta", when, event_type, target_login or "", group or "", app or ""),
        "published": when.replace("+00:00", "") + ("" if when.endswith("Z") else "Z"),
        "eventType": event_type, "version": "0", "severity": "INFO",
        "displayMessage": event_type,
        "actor": {"id": "00u" + _uid(actor)[:17], "type": actor_type, "alternateId": actor,
                  "displayName": actor.split("@")[0]},
        "client": {"ipAddress": "203.0.113.10", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
        "outcome": {"result": result},
        "target": targets,
        "debugContext": {"debugData": debug or {}},
        "transaction": {"type": "WEB", "id": _uid(when)[:20]},
    }


def github(when: str, action: str, *, user: str | None = None, actor: str = "org-admin", team: str | None = None,
           repo: str | None = None, org: str = "acme", **extra) -> dict:
    ms = int(t(when.replace("Z", "")).timestamp() * 1000)
    e = {"@timestamp": ms, "_document_id": _uid("gh", when, action, user or "", team or "", repo or ""),
         "action": action, "actor": actor, "actor_id": abs(hash(actor)) % 10_000_000, "org": org,
         "created_at": ms, "operation_type": "modify"}
    if user:
        e["user"] = user
    if team:
        e["team"] = team
    if repo:
        e["repo"] = repo
    e.update(extra)
    return e


def cloudtrail(when: str, name: str, params: dict, *, actor_user: str = "iam-admin-user",
               session: str | None = None, role: str = "servicenow-provisioner", error: str | None = None) -> dict:
    if session:
        ident = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
                 "arn": f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/{session}", "accountId": AWS_ACCOUNT,
                 "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                      "arn": f"arn:aws:iam::{AWS_ACCOUNT}:role/{role}",
                                                      "accountId": AWS_ACCOUNT, "userName": role}}}
    else:
        ident = {"type": "IAMUser", "principalId": "AIDAEXAMPLE" + actor_user.upper()[:6],
                 "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{actor_user}", "accountId": AWS_ACCOUNT,
                 "userName": actor_user}
    rec = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": when.replace("+00:00", "Z"),
           "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
           "sourceIPAddress": "203.0.113.20", "userAgent": "aws-cli/2.15.0", "requestParameters": params,
           "responseElements": None, "requestID": _uid("req", when, name), "eventID": _uid("ct", when, name,
                                                                                         json.dumps(params)),
           "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
           "recipientAccountId": AWS_ACCOUNT, "eventCategory": "Management"}
    if error:
        rec["errorCode"] = error
        rec["errorMessage"] = error
    return rec


def ritm(number: str, *, subject: str, item: str, opened: str, approved: str | None = None,
         approval: str = "approved", end: str | None = None, state: str = "3", variables: dict | None = None) -> dict:
    """``sc_req_item`` as the Table API returns it with ``sysparm_display_value=all`` for references."""
    r = {"sys_id": _uid("ritm", number).replace("-", ""), "number": number,
         "cat_item": {"display_value": item, "value": _uid("item", item).replace("-", "")},
         "requested_for": {"display_value": subject.split("@")[0], "value": _uid("user", subject).replace("-", "")},
         "requested_for.email": subject, "opened_by.email": subject,
         "opened_at": opened, "sys_created_on": opened, "approval": approval, "state": state,
         "sys_updated_on": approved or opened, "sys_class_name": "sc_req_item",
         "short_description": f"Access request: {item}"}
    if approved:
        r["approval_set"] = approved
    if end or variables:
        r["variables"] = dict(variables or {})
        if end:
            r["variables"]["u_end_date"] = end
    return r


def approval(parent: str, *, approver: str, state: str, created: str, decided: str | None) -> dict:
    return {"sys_id": _uid("appr", parent, approver).replace("-", ""), "sysapproval": parent, "document_id": parent,
            "source_table": "sc_req_item", "approver": approver.split("@")[0], "approver.email": approver,
            "state": state, "comments": "", "sys_created_on": created, "sys_updated_on": decided or created,
            "sys_class_name": "Approval"}


WORKER_COLUMNS = ["Employee ID", "Legal Name", "Work Email", "Username", "Worker Type", "Supplier ID", "Manager ID",
                  "Business Unit", "Job Title", "Hire Date", "Termination Date"]
HR_EVENT_COLUMNS = ["Event ID", "Employee ID", "Event Type", "Effective Date", "Entered At", "Entered By"]


def worker(pid: str, name: str, email: str, username: str = "", *, worker_type: str = "Employee",
           hired: str = "2020-01-06", terminated: str = "", supplier: str = "") -> dict:
    return {"Employee ID": pid, "Legal Name": name, "Work Email": email, "Username": username,
            "Worker Type": worker_type, "Supplier ID": supplier, "Manager ID": "", "Business Unit": "IT",
            "Job Title": "Engineer", "Hire Date": hired, "Termination Date": terminated}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_table_api(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"result": records}, indent=1), encoding="utf-8")
    return path


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


class Org:
    """Collects vendor records of one small organisation and ingests them into a store."""

    def __init__(self, root: Path):
        self.root = root
        self.okta: list[dict] = []
        self.github: list[dict] = []
        self.cloudtrail: list[dict] = []
        self.ritms: list[dict] = []
        self.approvals: list[dict] = []
        self.workers: list[dict] = []
        self.hr_events: list[dict] = []

    def ingest(self, store) -> dict[str, int]:
        out = {}
        r = self.root

        def run(kind: str, path: Path, **kw) -> None:
            s = ingest_paths(store, kind, [path], **kw)
            assert s.quarantined == 0, f"{path.name}: quarantined records"
            out[path.name] = s.accepted

        if self.workers:
            run("csv", write_csv(r / "hr" / "workers.csv", WORKER_COLUMNS, self.workers),
                options={"mapping": "hr_workers"})
        if self.hr_events:
            run("csv", write_csv(r / "hr" / "events.csv", HR_EVENT_COLUMNS, self.hr_events),
                options={"mapping": "hr_events"})
        if self.okta:
            run("okta", write_jsonl(r / "okta" / "system_log.jsonl", self.okta), source_name=OKTA)
        if self.github:
            run("github", write_jsonl(r / "github" / "audit.jsonl", self.github))
        if self.cloudtrail:
            run("cloudtrail", write_jsonl(r / "cloudtrail" / "events.jsonl", self.cloudtrail))
        if self.ritms:
            run("servicenow", write_table_api(r / "servicenow" / "sc_req_item.json", self.ritms),
                options={"instance": "acme"})
        if self.approvals:
            run("servicenow", write_table_api(r / "servicenow" / "sysapproval_approver.json", self.approvals),
                options={"instance": "acme"})
        return out
