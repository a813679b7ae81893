"""Everyday use of the systems: sign-ins, read-only API calls, git traffic — most of any real log's volume.

Noise is generated one day at a time from an RNG seeded by (seed, system, day), so it streams in
constant memory and never depends on the order anything else was drawn in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from accessproof.demo._common import (
    aws_id,
    epoch_ms,
    gh_doc_id,
    hex32,
    is_workday,
    okta_txn,
    poisson,
    utc,
)
from accessproof.demo._plan import Account, Plan
from accessproof.demo._render import (
    Renderer,
    ct_record,
    iam_user_identity,
    okta_client,
    okta_event,
    okta_user_actor,
    role_identity,
)
from accessproof.demo._world import AWS_ACCOUNT, GH_ORG, GH_ORG_ID, Person

#: Share of the usage noise each system gets (before spreading it over the people who use the system).
SHARE = {"okta": 0.25, "aws": 0.55, "github": 0.20}
SSO_APPS = [("0oa1slck9Xk2PqZr0697", "Slack"), ("0oa1o365Fh3TwQ8d0697", "Microsoft Office 365"),
            ("0oa1zoomL5mNb7Vc0697", "Zoom"), ("0oa1sncwR2kJd9Hs0697", "ServiceNow")]
BUCKETS = ["acme-device-telemetry-prod", "acme-qms-archive", "acme-build-artifacts", "acme-terraform-state",
           "acme-datalake-raw", "acme-firmware-releases"]
CLI_UA = "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-49-generic md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off"
SDK_UA = "Boto3/1.35.76 md/Botocore#1.35.76 ua/2.0 os/linux#5.10.228-219.884.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.76"
TF_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.10.2 (+https://www.terraform.io) terraform-provider-aws/5.81.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.6 ua/2.1 os/linux lang/go#1.23.3 md/GOOS#linux md/GOARCH#amd64 api/cloudformation#1.56.1"
CONSOLE_UA = "AWS Internal"
TEAM_REPOS = {
    "firmware": ["firmware-core", "infusion-pump-ui", "bootloader"],
    "cloud-platform": ["cloud-backend", "infra-terraform", "device-gateway"],
    "mobile-app": ["patient-app", "clinician-app"],
    "data-science": ["analytics-notebooks", "dose-model"],
    "qa-automation": ["qms-validation", "test-harness"],
    "it-infra": ["infra-terraform", "okta-config"],
}


def _read_calls(rng: random.Random, user: str) -> tuple[str, str, dict | None, str]:
    """One read-only management call: (eventSource, eventName, requestParameters, TLS host)."""
    k = rng.randrange(20)
    bucket = rng.choice(BUCKETS)
    if k < 4:
        return "ec2.amazonaws.com", "DescribeInstances", {"instancesSet": {}, "filterSet": {}}, "ec2.us-east-1.amazonaws.com"
    if k < 5:
        return "ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupSet": {}, "securityGroupIdSet": {},
                                                               "filterSet": {}}, "ec2.us-east-1.amazonaws.com"
    if k < 6:
        return "ec2.amazonaws.com", "DescribeVpcs", {"vpcSet": {}, "filterSet": {}}, "ec2.us-east-1.amazonaws.com"
    if k < 7:
        return "ec2.amazonaws.com", "DescribeVolumes", {"volumeSet": {}, "filterSet": {}}, "ec2.us-east-1.amazonaws.com"
    if k < 9:
        return "s3.amazonaws.com", "ListBuckets", {"Host": "s3.amazonaws.com"}, "s3.amazonaws.com"
    if k < 10:
        return "s3.amazonaws.com", "GetBucketLocation", {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com",
                                                         "location": ""}, f"{bucket}.s3.amazonaws.com"
    if k < 11:
        return "s3.amazonaws.com", "GetBucketPolicy", {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com",
                                                       "policy": ""}, f"{bucket}.s3.amazonaws.com"
    if k < 12:
        return "iam.amazonaws.com", "GetUser", {"userName": user} if rng.random() < 0.5 else None, "iam.amazonaws.com"
    if k < 13:
        return "iam.amazonaws.com", "ListRoles", {"maxItems": 100}, "iam.amazonaws.com"
    if k < 14:
        return "iam.amazonaws.com", "ListAttachedUserPolicies", {"userName": user}, "iam.amazonaws.com"
    if k < 16:
        return "sts.amazonaws.com", "GetCallerIdentity", None, "sts.us-east-1.amazonaws.com"
    if k < 17:
        return "kms.amazonaws.com", "ListKeys", {"limit": 100}, "kms.us-east-1.amazonaws.com"
    if k < 18:
        return "monitoring.amazonaws.com", "DescribeAlarms", {"maxRecords": 100}, "monitoring.us-east-1.amazonaws.com"
    if k < 19:
        return "logs.amazonaws.com", "DescribeLogGroups", {"limit": 50}, "logs.us-east-1.amazonaws.com"
    return "lambda.amazonaws.com", "ListFunctions20150331", {"maxItems": 50}, "lambda.us-east-1.amazonaws.com"


@dataclass
class Window:
    first: date  # first day with use
    last: date  # first day without use


@dataclass
class Noise:
    plan: Plan
    renderer: Renderer
    seed: int
    per_person_day: float
    users: dict[str, list[tuple[Person, list[Window]]]] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    special_ids: dict[str, list[str]] = field(default_factory=dict)
    console_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.plan.company
        self._by_holder: dict[str, list] = {}
        for h in self.renderer.holdings:
            self._by_holder.setdefault(h.holder, []).append(h)
        for system in ("okta", "aws", "github"):
            rows = []
            for p in c.people:
                ws = self._windows(p, system)
                if ws:
                    rows.append((p, ws))
            self.users[system] = rows
        n_all = max(1, len(c.people))
        for system in ("okta", "aws", "github"):
            n = max(1, sum(1 for p in c.people if system in p.systems))
            self.rate[system] = self.per_person_day * SHARE[system] * n_all / n
        for acc in self.plan.accounts:
            self.special_ids[acc.key] = []

    def _windows(self, p: Person, system: str) -> list[Window]:
        c = self.plan.company
        hs = [h for h in self._by_holder.get(p.pid, []) if h.system == system]
        if not (system == "github" and p.supplier):
            hs = [h for h in hs if h.ent.startswith(("Okta account", "AWS IAM user", "GitHub org membership"))]
        out = []
        for h in hs:
            first = max(h.granted.date() + timedelta(days=1), p.hire, c.start)
            last = min(h.removed.date() if h.removed else c.end, p.term or c.end, c.end)
            if p.term and not p.hr_term:
                last = min(last, p.term)
            if first < last:
                out.append(Window(first, last))
        return out

    @staticmethod
    def _active(p: Person, windows: list[Window], d: date) -> bool:
        if p.leave and p.leave[0] <= d < p.leave[1]:
            return False
        return any(w.first <= d < w.last for w in windows)

    def _rng(self, system: str, d: date) -> random.Random:
        return random.Random(f"{self.seed}:{system}:{d.isoformat()}")

    def _keep(self, acc: Account, eid: str) -> None:
        ids = self.special_ids[acc.key]
        if len(ids) < 12:
            ids.append(eid)

    # -------------------------------------------------------------- okta

    def okta(self, d: date) -> list[tuple[datetime, str, dict]]:
        rng = self._rng("okta", d)
        out: list[tuple[datetime, str, dict]] = []
        workday = is_workday(d)
        lam = self.rate["okta"]
        for p, ws in self.users["okta"]:
            if not self._active(p, ws, d) or (not workday and rng.random() > 0.04):
                continue
            n = poisson(rng, lam)
            if n == 0:
                continue
            ip = p.ip_office if rng.random() < 0.7 else p.ip_home
            t = utc(d, 6) + timedelta(seconds=rng.randrange(4 * 3600), milliseconds=rng.randrange(1000))
            client = okta_client(ip, p.ua)
            actor = okta_user_actor(p)
            sess = "102" + okta_txn(rng)[:22]
            if rng.random() < 0.04:
                bad = okta_event(rng, t - timedelta(seconds=rng.randrange(5, 60)), "user.session.start",
                                 "User login to Okta", actor, client, [], {"_uri": "/idp/idx/identify"},
                                 outcome="FAILURE", reason="INVALID_CREDENTIALS", legacy="core.user_auth.login_failed",
                                 session="unknown")
                out.append((t - timedelta(seconds=60), bad["uuid"], bad))
            ok = okta_event(rng, t, "user.session.start", "User login to Okta", actor, client, [],
                            {"_uri": "/idp/idx/authenticators/poll", "authnRequestId": okta_txn(rng)},
                            legacy="core.user_auth.login_success", session=sess)
            out.append((t, ok["uuid"], ok))
            for _ in range(n - 1):
                t2 = t + timedelta(seconds=rng.randrange(60, 9 * 3600))
                app_id, app = rng.choice(SSO_APPS)
                e = okta_event(rng, t2, "user.authentication.sso", "User single sign on to app", actor, client,
                               [{"id": app_id, "type": "AppInstance", "alternateId": app, "displayName": app,
                                 "detailEntry": {"signOnModeType": "SAML_2_0"}}],
                               {"_uri": f"/app/{app.lower().replace(' ', '')}/sso/saml"}, session=sess)
                out.append((t2, e["uuid"], e))
        for acc in self.plan.accounts:
            if acc.system != "okta" or acc.kind == "service":
                continue
            if acc.kind == "orphan":
                if not workday or rng.random() > 0.25:
                    continue
                sessions = [(acc.ip, acc.ua)]
            else:
                staff = [p for p in acc.users if p.employed(d)]
                if not workday or len(staff) < 2 or rng.random() > 0.75:
                    continue
                sessions = [(p.ip_home, p.ua) for p in rng.sample(staff, min(len(staff), rng.randint(2, 4)))]
            actor = {"id": acc.uid, "type": "User", "alternateId": acc.name, "displayName": acc.display,
                     "detailEntry": None}
            base = utc(d, 7) + timedelta(seconds=rng.randrange(3600))
            for i, (ip, ua) in enumerate(sessions):
                t = base + timedelta(minutes=25 * i + rng.randrange(20), seconds=rng.randrange(60))
                e = okta_event(rng, t, "user.session.start", "User login to Okta", actor, okta_client(ip, ua), [],
                               {"_uri": "/idp/idx/authenticators/poll"}, legacy="core.user_auth.login_success",
                               session="102" + okta_txn(rng)[:22])
                out.append((t, e["uuid"], e))
                self._keep(acc, e["uuid"])
        return out

    # -------------------------------------------------------------- cloudtrail

    def aws(self, d: date) -> list[tuple[datetime, str, dict]]:
        rng = self._rng("aws", d)
        out: list[tuple[datetime, str, dict]] = []
        workday = is_workday(d)
        lam = self.rate["aws"]
        for p, ws in self.users["aws"]:
            if not self._active(p, ws, d) or (not workday and rng.random() > 0.04):
                continue
            n = poisson(rng, lam)
            if n == 0:
                continue
            ip = p.ip_office if rng.random() < 0.75 else p.ip_home
            t0 = utc(d, 7) + timedelta(seconds=rng.randrange(3 * 3600))
            cli = p.aws_dev and rng.random() < 0.4
            if cli:
                key = self.console_keys.setdefault(p.pid, aws_id(random.Random(f"{self.seed}:key:{p.pid}"), "AKIA", 20))
                ident = iam_user_identity(p.aws_name, p.aws_uid, key)
                ua = CLI_UA
            else:
                login = ct_record(rng, t0, "signin.amazonaws.com", "ConsoleLogin",
                                  {"type": "IAMUser", "principalId": p.aws_uid,
                                   "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{p.aws_name}", "accountId": AWS_ACCOUNT,
                                   "userName": p.aws_name},
                                  p.ip_office, p.ua, None, {"ConsoleLogin": "Success"}, False, "AwsConsoleSignIn",
                                  {"LoginTo": "https://console.aws.amazon.com/console/home?region=us-east-1",
                                   "MobileVersion": "No", "MFAUsed": "Yes"}, tls_host="signin.aws.amazon.com")
                out.append((t0, login["eventID"], login))
                ident = iam_user_identity(p.aws_name, p.aws_uid, aws_id(rng, "ASIA", 20), console=True, t=t0)
                ua = CONSOLE_UA
            for _ in range(n):
                t = t0 + timedelta(seconds=rng.randrange(10, 8 * 3600))
                src, name, req, host = _read_calls(rng, p.aws_name)
                rec = ct_record(rng, t, src, name, ident, ip, ua, req, None, True, tls_host=host)
                out.append((t, rec["eventID"], rec))
        # automation: CI pipeline role, service accounts
        n_ci = poisson(rng, self.per_person_day * 2.5)
        created = utc(d, 2)
        ci_ident = role_identity("ci-deploy", f"gha-{hex32(rng)[:12]}", aws_id(rng, "ASIA", 20), created, None, False)
        for _ in range(n_ci):
            t = utc(d) + timedelta(seconds=rng.randrange(86400))
            src, name, req, host = _read_calls(rng, "ci-deploy")
            rec = ct_record(rng, t, src, name, ci_ident, "20.42.17.108", TF_UA, req, None, True, tls_host=host)
            out.append((t, rec["eventID"], rec))
        for acc in self.plan.accounts:
            if acc.system != "aws":
                continue
            if acc.kind == "service":
                if acc.created is None or acc.created.date() >= d:
                    continue
                keys = self.renderer.keys.get(acc.key) or [aws_id(rng, "AKIA", 20)]
                ident = iam_user_identity(acc.name, acc.uid, keys[0])
                ident["arn"] = f"arn:aws:iam::{AWS_ACCOUNT}:user/service/{acc.name}"
                for _ in range(poisson(rng, self.per_person_day * 1.2)):
                    t = utc(d) + timedelta(seconds=rng.randrange(86400))
                    src, name, req, host = _read_calls(rng, acc.name)
                    rec = ct_record(rng, t, src, name, ident, "3.120.181.44", SDK_UA, req, None, True, tls_host=host)
                    out.append((t, rec["eventID"], rec))
                continue
            if acc.kind == "orphan":
                if not workday or rng.random() > 0.2:
                    continue
                sessions = [(acc.ip, acc.ua)]
            else:
                staff = [p for p in acc.users if p.employed(d)]
                if not workday or len(staff) < 2 or rng.random() > 0.75:
                    continue
                sessions = [(p.ip_home, p.ua) for p in rng.sample(staff, min(len(staff), rng.randint(2, 3)))]
            base = utc(d, 7) + timedelta(seconds=rng.randrange(3600))
            for i, (ip, ua) in enumerate(sessions):
                t = base + timedelta(minutes=30 * i + rng.randrange(25), seconds=rng.randrange(60))
                login = ct_record(rng, t, "signin.amazonaws.com", "ConsoleLogin",
                                  {"type": "IAMUser", "principalId": acc.uid,
                                   "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{acc.name}", "accountId": AWS_ACCOUNT,
                                   "userName": acc.name},
                                  ip, ua, None, {"ConsoleLogin": "Success"}, False, "AwsConsoleSignIn",
                                  {"LoginTo": "https://console.aws.amazon.com/console/home?region=us-east-1",
                                   "MobileVersion": "No", "MFAUsed": "No"}, tls_host="signin.aws.amazon.com")
                out.append((t, login["eventID"], login))
                self._keep(acc, login["eventID"])
                ident = iam_user_identity(acc.name, acc.uid, aws_id(rng, "ASIA", 20), console=True, t=t)
                for _ in range(rng.randint(1, 5)):
                    t2 = t + timedelta(seconds=rng.randrange(10, 1800))
                    src, name, req, host = _read_calls(rng, acc.name)
                    rec = ct_record(rng, t2, src, name, ident, ip, CONSOLE_UA, req, None, True, tls_host=host)
                    out.append((t2, rec["eventID"], rec))
        return out

    # -------------------------------------------------------------- github

    def _git(self, rng: random.Random, t: datetime, action: str, actor: str, actor_id: int, ip: str, repo: str,
             ssh: bool) -> dict:
        ms = epoch_ms(t)
        return {"@timestamp": ms, "_document_id": gh_doc_id(rng), "action": action, "actor": actor,
                "actor_id": actor_id, "actor_ip": ip, "actor_location": {"country_code": "DE"},
                "business": "acme-medical-enterprise", "business_id": 40211, "created_at": ms, "org": GH_ORG,
                "org_id": GH_ORG_ID, "repo": f"{GH_ORG}/{repo}", "repository": f"{GH_ORG}/{repo}",
                "repository_public": False, "transport_protocol": 2 if ssh else 1,
                "transport_protocol_name": "ssh" if ssh else "http", "user": "", "user_agent": "git/2.47.1",
                "user_id": 0}

    def github(self, d: date) -> list[tuple[datetime, str, dict]]:
        rng = self._rng("github", d)
        out: list[tuple[datetime, str, dict]] = []
        workday = is_workday(d)
        lam = self.rate["github"]
        for p, ws in self.users["github"]:
            if not self._active(p, ws, d) or (not workday and rng.random() > 0.05):
                continue
            n = poisson(rng, lam)
            if n == 0:
                continue
            repos = TEAM_REPOS.get(p.team or "") or (["infra-terraform"] if p.supplier == "SUP-002" else
                                                           ["firmware-core"] if p.supplier else
                                                           TEAM_REPOS["it-infra"] if p.bu == "IT" else
                                                           TEAM_REPOS["qa-automation"])
            ip = p.ip_office if rng.random() < 0.7 else p.ip_home
            ssh = rng.random() < 0.6
            for _ in range(n):
                t = utc(d, 7) + timedelta(seconds=rng.randrange(10 * 3600), milliseconds=rng.randrange(1000))
                k = rng.random()
                action = "git.fetch" if k < 0.45 else "git.clone" if k < 0.8 else "git.push"
                e = self._git(rng, t, action, p.username, p.gh_id, ip, rng.choice(repos), ssh)
                out.append((t, e["_document_id"], e))
        for acc in self.plan.accounts:
            if acc.system != "github":
                continue
            if acc.kind == "orphan":
                if not workday or rng.random() > 0.25:
                    continue
                sessions = [acc.ip]
            else:
                staff = [p for p in acc.users if p.employed(d)]
                if not workday or len(staff) < 2 or rng.random() > 0.75:
                    continue
                sessions = [p.ip_home for p in rng.sample(staff, min(len(staff), rng.randint(2, 4)))]
            for ip in sessions:
                t = utc(d, 7) + timedelta(seconds=rng.randrange(10 * 3600), milliseconds=rng.randrange(1000))
                e = self._git(rng, t, "git.clone", acc.name, int(acc.uid), ip,
                              "infra-terraform" if acc.kind == "shared" else "firmware-core", False)
                out.append((t, e["_document_id"], e))
                self._keep(acc, e["_document_id"])
        return out


