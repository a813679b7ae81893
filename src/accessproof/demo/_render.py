"""The plan's operations written as the identity systems log them: Okta System Log events, CloudTrail
records and GitHub audit log entries, with the access state each one leaves behind."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from accessproof.demo._common import (
    aws_date,
    aws_id,
    epoch_ms,
    gh_doc_id,
    hex32,
    iso_z,
    iso_z_ms,
    okta_txn,
    uuid4,
)
from accessproof.demo._plan import Account, Op, Plan
from accessproof.demo._world import AWS_ACCOUNT, GH_ORG, GH_ORG_ID, Ent, Person

REGION = "us-east-1"
TLS = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
       "clientProvidedHostHeader": "iam.amazonaws.com"}
CONSOLE_UA = "AWS Internal"
WORKFLOWS = {"id": "0oa7wkfl0wsPr0v1s697", "type": "PublicClientApp", "alternateId": "0oa7wkfl0wsPr0v1s697",
             "displayName": "Okta Workflows", "detailEntry": None}
WORKFLOWS_IP = "44.234.52.16"
WORKFLOWS_UA = "okta-workflows/2024.12 (+https://www.okta.com)"
MID_SERVER = "i-0a7c3e9d41f25b806"
BERLIN_GEO = {"city": "Berlin", "state": "Land Berlin", "country": "Germany", "postalCode": "10117",
              "geolocation": {"lat": 52.5167, "lon": 13.3833}}
SECURITY_CTX = {"asNumber": 3320, "asOrg": "deutsche telekom ag", "isp": "deutsche telekom ag",
                "domain": "t-ipconnect.de", "isProxy": False}
ROLE_IDS = {"iam-admin": "AROAQX4Z7IAMADMIN0001", "servicenow-provisioner": "AROAQX4Z7SNOWPROV0002",
            "servicenow-mid-server": "AROAQX4Z7SNOWMID00003", "ci-deploy": "AROAQX4Z7CIDEPLOY0004"}


def ua_parts(ua: str) -> tuple[str, str]:
    os_ = ("Windows 10" if "Windows" in ua else "Mac OS X" if "Mac OS" in ua else "Linux" if "Linux" in ua
           else "Unknown")
    br = ("EDGE" if "Edg/" in ua else "CHROME" if "Chrome/" in ua else "FIREFOX" if "Firefox/" in ua
          else "SAFARI" if "Safari/" in ua else "UNKNOWN")
    return os_, br


def okta_client(ip: str, ua: str) -> dict:
    os_, br = ua_parts(ua)
    return {"userAgent": {"rawUserAgent": ua, "os": os_, "browser": br}, "zone": "null",
            "device": "Computer", "id": None, "ipAddress": ip, "geographicalContext": BERLIN_GEO}


def okta_user_actor(p: Person) -> dict:
    return {"id": p.okta_id, "type": "User", "alternateId": p.okta_login, "displayName": p.okta_display,
            "detailEntry": None}


def okta_user_target(uid: str, login: str, display: str) -> dict:
    return {"id": uid, "type": "User", "alternateId": login, "displayName": display, "detailEntry": None}


def okta_event(rng: random.Random, t: datetime, event_type: str, message: str, actor: dict, client: dict,
               targets: list[dict], debug: dict | None = None, outcome: str = "SUCCESS", reason: str | None = None,
               legacy: str | None = None, severity: str = "INFO", session: str | None = None) -> dict:
    txn = okta_txn(rng)
    data = {"requestId": txn, "requestUri": debug.pop("_uri", "/api/v1/users") if debug else "/api/v1/users",
            "url": None}
    data["url"] = data["requestUri"]
    if debug:
        data.update(debug)
    ip = client.get("ipAddress")
    return {
        "actor": actor,
        "client": client,
        "device": None,
        "authenticationContext": {"authenticationProvider": None, "credentialProvider": None,
                                  "credentialType": None, "issuer": None, "interface": None,
                                  "authenticationStep": 0, "externalSessionId": session or "unknown"},
        "displayMessage": message,
        "eventType": event_type,
        "outcome": {"result": outcome, "reason": reason},
        "published": iso_z_ms(t),
        "securityContext": SECURITY_CTX if ip and not ip.startswith("44.") else {
            "asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": None},
        "severity": severity,
        "debugContext": {"debugData": data},
        "legacyEventType": legacy,
        "transaction": {"type": "WEB", "id": txn, "detail": {}},
        "uuid": uuid4(rng),
        "version": "0",
        "request": {"ipChain": [{"ip": ip, "geographicalContext": BERLIN_GEO, "version": "V4", "source": None}]},
        "target": targets,
    }


def ct_record(rng: random.Random, t: datetime, source: str, name: str, identity: dict, ip: str, ua: str,
              req: dict | None, resp: dict | None, read_only: bool, event_type: str = "AwsApiCall",
              additional: dict | None = None, tls_host: str | None = "iam.amazonaws.com") -> dict:
    rec: dict = {
        "eventVersion": "1.09" if event_type == "AwsApiCall" else "1.08",
        "userIdentity": identity,
        "eventTime": iso_z(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": req,
        "responseElements": resp,
    }
    if additional is not None:
        rec["additionalEventData"] = additional
    if event_type == "AwsApiCall":
        rec["requestID"] = uuid4(rng)
    rec["eventID"] = uuid4(rng)
    rec["readOnly"] = read_only
    rec["eventType"] = event_type
    rec["managementEvent"] = True
    rec["recipientAccountId"] = AWS_ACCOUNT
    rec["eventCategory"] = "Management"
    if tls_host:
        rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                             "clientProvidedHostHeader": tls_host}
    return rec


def iam_user_identity(name: str, uid: str, key: str, console: bool = False, t: datetime | None = None) -> dict:
    ident = {"type": "IAMUser", "principalId": uid, "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{name}",
             "accountId": AWS_ACCOUNT, "accessKeyId": key, "userName": name}
    if console and t is not None:
        ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                   "attributes": {"creationDate": iso_z(t), "mfaAuthenticated": "true"}}
    return ident


def role_identity(role: str, session: str, key: str, created: datetime, source_identity: str | None,
                  mfa: bool = True) -> dict:
    rid = ROLE_IDS[role]
    ctx: dict = {"sessionIssuer": {"type": "Role", "principalId": rid,
                                   "arn": f"arn:aws:iam::{AWS_ACCOUNT}:role/{role}", "accountId": AWS_ACCOUNT,
                                   "userName": role},
                 "webIdFederationData": {},
                 "attributes": {"creationDate": iso_z(created), "mfaAuthenticated": "true" if mfa else "false"}}
    if source_identity:
        ctx["sourceIdentity"] = source_identity
    return {"type": "AssumedRole", "principalId": f"{rid}:{session}",
            "arn": f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/{session}", "accountId": AWS_ACCOUNT,
            "accessKeyId": key, "sessionContext": ctx}


def gh_entry(rng: random.Random, t: datetime, action: str, actor: str, actor_id: int, **fields) -> dict:
    ms = epoch_ms(t)
    e = {"@timestamp": ms, "_document_id": gh_doc_id(rng), "action": action, "actor": actor, "actor_id": actor_id,
         "actor_location": {"country_code": "DE"}, "created_at": ms, "operation_type": "modify",
         "org": GH_ORG, "org_id": GH_ORG_ID, "business": "acme-medical-enterprise", "business_id": 40211}
    e.update(fields)
    return e


# ------------------------------------------------------------------ state


@dataclass(eq=False)
class Holding:
    holder: str  # person id or account key
    system: str
    ent: str
    granted: datetime
    pre: bool
    via: str | None = None
    grant_events: list[str] = field(default_factory=list)
    removed: datetime | None = None
    remove_events: list[str] = field(default_factory=list)


@dataclass
class Emitted:
    t: datetime
    system: str
    eid: str
    obj: dict
    vendor_action: str
    carries: bool = False


class Renderer:
    """Applies the plan's operations in time order, writing vendor records and keeping who holds what."""

    def __init__(self, plan: Plan, rng: random.Random):
        self.plan = plan
        self.rng = rng
        self.c = plan.company
        self.events: dict[str, list[Emitted]] = {"okta": [], "aws": [], "github": []}
        self.holdings: list[Holding] = []
        self.open: dict[tuple[str, str], dict[str, Holding]] = {}
        self.pairs: dict[str, list[dict]] = {}  # RITM -> events
        self.other_pairs: dict[str, dict[str, list[dict]]] = {"change": {}, "hr": {}, "exception": {},
                                                              "contract_end": {}, "transfer": {}}
        self.keys: dict[str, list[str]] = {}  # holder -> active access key ids
        self.pats: dict[str, str] = {}  # holder -> token id
        self.sessions: dict[tuple, tuple[str, str, datetime]] = {}
        self.suspended: set[str] = set()

    # -------------------------------------------------------------- state helpers

    def hold(self, holder: str, system: str, ent: str, t: datetime, events: list[str], via: str | None,
             pre: bool = False) -> Holding:
        h = Holding(holder, system, ent, t, pre, via, list(events))
        self.holdings.append(h)
        self.open.setdefault((holder, system), {})[ent] = h
        return h

    def release(self, holder: str, system: str, ent: str, t: datetime, events: list[str]) -> bool:
        h = self.open.get((holder, system), {}).pop(ent, None)
        if h is None:
            return False
        h.removed = t
        h.remove_events = list(events)
        return True

    def held(self, holder: str, system: str) -> dict[str, Holding]:
        return self.open.get((holder, system), {})

    def emit(self, system: str, t: datetime, obj: dict, vendor_action: str, carries: bool = False) -> Emitted:
        eid = obj.get("uuid") or obj.get("eventID") or obj.get("_document_id")
        e = Emitted(t, system, eid, obj, vendor_action, carries)
        self.events[system].append(e)
        return e

    # -------------------------------------------------------------- run

    def run(self) -> None:
        c = self.c
        for p, ent, t in self.plan.pre_holdings:
            self.hold(p.pid, ent.system, ent.key, t, [], None, pre=True)
            if ent.kind == "account" and ent.system == "aws" and p.aws_dev:
                self.keys[p.pid] = [aws_id(self.rng, "AKIA", 20)]
        for acc in self.plan.accounts:
            if acc.kind in ("orphan", "shared"):
                when = datetime(c.start.year - 1, 1 + self.rng.randrange(12), 1 + self.rng.randrange(27),
                                9, tzinfo=UTC)
                self.hold(acc.key, acc.system, f"account:{acc.name}", when, [], None, pre=True)
                if acc.system == "aws":
                    self.keys[acc.key] = [aws_id(self.rng, "AKIA", 20)]
        for op in self.plan.ops:
            emitted = getattr(self, f"_op_{op.kind}")(op)
            if op.failure is not None and emitted:
                op.failure.data.setdefault("event_ids", []).extend(e.eid for e in emitted)
            self._pair(op, emitted)

    def _pair(self, op: Op, emitted: list[Emitted]) -> None:
        if not emitted:
            return
        rows = [{"event_id": e.eid, "system": e.system, "vendor_action": e.vendor_action,
                 "carries_ticket": e.carries, "time": e.t.isoformat()} for e in emitted]
        if op.ref_kind == "ritm":
            self.pairs.setdefault(op.ref, []).extend(rows)
        elif op.ref_kind == "end_date":
            self.pairs.setdefault(op.ref, []).extend(dict(r, removal=True) for r in rows)
        elif op.ref_kind in self.other_pairs:
            self.other_pairs[op.ref_kind].setdefault(op.ref, []).extend(rows)

    # -------------------------------------------------------------- actors

    def _okta_actor(self, op: Op) -> tuple[dict, dict, str]:
        if op.executor is None:
            return WORKFLOWS, okta_client(WORKFLOWS_IP, WORKFLOWS_UA), "unknown"
        p = op.executor
        return okta_user_actor(p), okta_client(p.ip_office, p.ua), "102" + okta_txn(self.rng)[:22]

    def _aws_actor(self, op: Op, t: datetime, session_ref: str | None) -> tuple[dict, str, str, list[Emitted]]:
        """The identity of AWS calls for ``op``; emits the AssumeRole that opened the session when new."""
        rng = self.rng
        out: list[Emitted] = []
        if op.executor is None:
            session = session_ref or f"provisioning-{hex32(rng)[:8]}"
            key = (None, session, t.date())
            if key not in self.sessions:
                created = t - timedelta(seconds=rng.randrange(5, 40))
                akey = aws_id(rng, "ASIA", 20)
                caller = role_identity("servicenow-mid-server", MID_SERVER, aws_id(rng, "ASIA", 20),
                                       created - timedelta(minutes=rng.randrange(5, 50)), None, mfa=False)
                obj = ct_record(rng, created, "sts.amazonaws.com", "AssumeRole", caller, "18.184.33.7",
                                "aws-sdk-java/1.12.661 Linux/5.10.214 OpenJDK_64-Bit_Server_VM/17.0.10 ServiceNow-MID",
                                {"roleArn": f"arn:aws:iam::{AWS_ACCOUNT}:role/servicenow-provisioner",
                                 "roleSessionName": session, "durationSeconds": 900},
                                {"credentials": {"accessKeyId": akey, "sessionToken": "IQoJb3JpZ2luX2VjE" + hex32(rng),
                                                 "expiration": aws_date(created + timedelta(minutes=15))},
                                 "assumedRoleUser": {"assumedRoleId": f"{ROLE_IDS['servicenow-provisioner']}:{session}",
                                                     "arn": f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/servicenow-provisioner/{session}"}},
                                True, tls_host="sts.us-east-1.amazonaws.com")
                out.append(self.emit("aws", created, obj, "AssumeRole", carries=session_ref is not None))
                self.sessions[key] = (session, akey, created)
            session, akey, created = self.sessions[key]
            ident = role_identity("servicenow-provisioner", session, akey, created, None, mfa=False)
            return ident, "18.184.33.7", "aws-sdk-java/1.12.661 Linux/5.10.214 ServiceNow-MID", out
        p = op.executor
        key = (p.pid, t.date(), t.hour)
        if key not in self.sessions:
            created = t - timedelta(seconds=rng.randrange(30, 900))
            akey = aws_id(rng, "ASIA", 20)
            src = p.username if not (p.role == "admin" and p is self.c.admins[-1]) else None
            session = src or p.email.split("@")[0]
            caller = iam_user_identity(p.aws_name, p.aws_uid, aws_id(rng, "ASIA", 20), console=True, t=created)
            req = {"roleArn": f"arn:aws:iam::{AWS_ACCOUNT}:role/iam-admin", "roleSessionName": session,
                   "durationSeconds": 3600}
            resp = {"credentials": {"accessKeyId": akey, "sessionToken": "IQoJb3JpZ2luX2VjE" + hex32(rng),
                                    "expiration": aws_date(created + timedelta(hours=1))},
                    "assumedRoleUser": {"assumedRoleId": f"{ROLE_IDS['iam-admin']}:{session}",
                                        "arn": f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/iam-admin/{session}"}}
            if src:
                req["sourceIdentity"] = src
                resp["sourceIdentity"] = src
            obj = ct_record(rng, created, "sts.amazonaws.com", "AssumeRole", caller, p.ip_office, CONSOLE_UA, req, resp,
                            True, tls_host="sts.amazonaws.com")
            out.append(self.emit("aws", created, obj, "AssumeRole"))
            self.sessions[key] = (session, akey, created, src)
        session, akey, created, src = self.sessions[key]
        return role_identity("iam-admin", session, akey, created, src), p.ip_office, CONSOLE_UA, out

    def _gh_actor(self, op: Op) -> Person:
        return op.executor or self.rng.choice(self.c.admins)

    # -------------------------------------------------------------- operations

    def _op_grant(self, op: Op) -> list[Emitted]:
        holder = op.holder
        ent = op.ent
        return getattr(self, f"_grant_{ent.system}")(op, holder, ent)

    def _ticket(self, op: Op) -> str | None:
        return op.ref if op.carry and op.ref_kind in ("ritm", "exception", "change", "end_date") else None

    # ---- okta

    def _okta_user_target(self, p: Person) -> dict:
        return okta_user_target(p.okta_id, p.okta_login, p.okta_display)

    def _grant_okta(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        rng = self.rng
        actor, client, sess = self._okta_actor(op)
        ticket = self._ticket(op)
        debug_extra = {"justification": ticket} if ticket else {}
        t = op.t
        out: list[Emitted] = []
        if ent.kind == "account":
            tgt = self._okta_user_target(p)
            o1 = okta_event(rng, t, "user.lifecycle.create", "Create Okta user", actor, client, [tgt],
                            {"_uri": "/api/v1/users?activate=false", **debug_extra},
                            legacy="core.user.config.user_creation.success", session=sess)
            o2 = okta_event(rng, t + timedelta(seconds=2), "user.lifecycle.activate", "Activate Okta user", actor,
                            client, [tgt], {"_uri": f"/api/v1/users/{p.okta_id}/lifecycle/activate", **debug_extra},
                            legacy="core.user.config.user_activated", session=sess)
            out.append(self.emit("okta", t, o1, "user.lifecycle.create", bool(ticket)))
            out.append(self.emit("okta", t + timedelta(seconds=2), o2, "user.lifecycle.activate", bool(ticket)))
            self.hold(p.pid, "okta", ent.key, t, [e.eid for e in out], op.ref or None)
            # the new user enrols a factor at first login (not a grant; not paired with the request)
            first = max(t + timedelta(hours=1), datetime(p.hire.year, p.hire.month, p.hire.day, 7, tzinfo=t.tzinfo))
            first += timedelta(minutes=rng.randrange(0, 90), seconds=rng.randrange(60))
            if first < datetime(self.c.end.year, self.c.end.month, self.c.end.day, tzinfo=t.tzinfo):
                mfa = okta_event(rng, first, "user.mfa.factor.activate", "Activate factor for user",
                                 okta_user_actor(p), okta_client(p.ip_office, p.ua),
                                 [tgt], {"_uri": f"/api/v1/users/{p.okta_id}/factors/activate",
                                         "factor": "OKTA_VERIFY_PUSH"},
                                 legacy="core.user.factor.activate", session="102" + okta_txn(rng)[:22])
                self.emit("okta", first, mfa, "user.mfa.factor.activate")
            return out
        if not self.held(p.pid, "okta").get("Okta account: standard user"):
            raise AssertionError(f"{p.pid} has no Okta account for {ent.key}")
        if ent.kind == "group":
            tgts = [self._okta_user_target(p), {"id": ent.vendor_id, "type": "UserGroup", "alternateId": "unknown",
                                                "displayName": ent.name, "detailEntry": None}]
            o = okta_event(rng, t, "group.user_membership.add", "Add user to group membership", actor, client, tgts,
                           {"_uri": f"/api/v1/groups/{ent.vendor_id}/users/{p.okta_id}", **debug_extra},
                           legacy="core.user_group_member.user_add", session=sess)
            vendor = "group.user_membership.add"
        else:
            tgts = [self._okta_user_target(p), {"id": ent.vendor_id, "type": "AppInstance", "alternateId": ent.name,
                                                "displayName": ent.name, "detailEntry": None}]
            o = okta_event(rng, t, "application.user_membership.add", "Add user to application membership", actor,
                           client, tgts, {"_uri": f"/api/v1/apps/{ent.vendor_id}/users", **debug_extra},
                           legacy="app.generic.provision.assign_user_to_app", session=sess)
            vendor = "application.user_membership.add"
        out.append(self.emit("okta", t, o, vendor, bool(ticket)))
        self.hold(p.pid, "okta", ent.key, t, [out[-1].eid], op.ref or None)
        return out

    def _revoke_okta(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        rng = self.rng
        actor, client, sess = self._okta_actor(op)
        ticket = self._ticket(op)
        debug_extra = {"justification": ticket} if ticket else {}
        if ent.kind == "group":
            tgts = [self._okta_user_target(p), {"id": ent.vendor_id, "type": "UserGroup", "alternateId": "unknown",
                                                "displayName": ent.name, "detailEntry": None}]
            o = okta_event(rng, op.t, "group.user_membership.remove", "Remove user from group membership", actor,
                           client, tgts, {"_uri": f"/api/v1/groups/{ent.vendor_id}/users/{p.okta_id}", **debug_extra},
                           legacy="core.user_group_member.user_remove", session=sess)
            vendor = "group.user_membership.remove"
        else:
            tgts = [self._okta_user_target(p), {"id": ent.vendor_id, "type": "AppInstance", "alternateId": ent.name,
                                                "displayName": ent.name, "detailEntry": None}]
            o = okta_event(rng, op.t, "application.user_membership.remove", "Remove user from application membership",
                           actor, client, tgts, {"_uri": f"/api/v1/apps/{ent.vendor_id}/users/{p.okta_id}",
                                                 **debug_extra},
                           legacy="app.generic.unprovision.user_deactivated", session=sess)
            vendor = "application.user_membership.remove"
        e = self.emit("okta", op.t, o, vendor, bool(ticket))
        self.release(p.pid, "okta", ent.key, op.t, [e.eid])
        return [e]

    def _offboard_okta(self, op: Op, p: Person) -> list[Emitted]:
        held = self.held(p.pid, "okta")
        if not held:
            return []
        actor, client, sess = self._okta_actor(op)
        o = okta_event(self.rng, op.t, "user.lifecycle.deactivate", "Deactivate Okta user", actor, client,
                       [self._okta_user_target(p)], {"_uri": f"/api/v1/users/{p.okta_id}/lifecycle/deactivate"},
                       legacy="core.user.config.user_deactivated", session=sess)
        e = self.emit("okta", op.t, o, "user.lifecycle.deactivate")
        for k in list(held):
            self.release(p.pid, "okta", k, op.t, [e.eid])
        return [e]

    def _op_suspend(self, op: Op) -> list[Emitted]:
        return self._okta_lifecycle(op, "user.lifecycle.suspend", "Suspend Okta user", "core.user.config.user_suspended")

    def _op_unsuspend(self, op: Op) -> list[Emitted]:
        return self._okta_lifecycle(op, "user.lifecycle.unsuspend", "Unsuspend Okta user",
                                    "core.user.config.user_unsuspended")

    def _okta_lifecycle(self, op: Op, etype: str, msg: str, legacy: str) -> list[Emitted]:
        p = op.holder
        if not self.held(p.pid, "okta"):
            return []
        actor, client, sess = self._okta_actor(op)
        verb = etype.rsplit(".", 1)[1]
        o = okta_event(self.rng, op.t, etype, msg, actor, client, [self._okta_user_target(p)],
                       {"_uri": f"/api/v1/users/{p.okta_id}/lifecycle/{verb}"}, legacy=legacy, session=sess)
        return [self.emit("okta", op.t, o, etype)]

    def _op_token_create(self, op: Op) -> list[Emitted]:
        return self._token(op, "system.api_token.create", "Create API token", "api.token.create")

    def _op_token_revoke(self, op: Op) -> list[Emitted]:
        return self._token(op, "system.api_token.revoke", "Revoke API token", "api.token.revoke")

    def _token(self, op: Op, etype: str, msg: str, legacy: str) -> list[Emitted]:
        tid, name = op.token
        actor, client, sess = self._okta_actor(op)
        debug = {"_uri": "/api/internal/tokens" if etype.endswith("create") else f"/api/internal/tokens/{tid}"}
        if op.carry:
            debug["changeRequest"] = op.ref
        o = okta_event(self.rng, op.t, etype, msg, actor, client,
                       [{"id": tid, "type": "Token", "alternateId": "unknown", "displayName": name,
                         "detailEntry": None}], debug, legacy=legacy, session=sess)
        key = f"token:{tid}"
        e = self.emit("okta", op.t, o, etype, op.carry)
        if etype.endswith("create"):
            self.hold(key, "okta", f"Okta API token: {name}", op.t, [e.eid], op.ref)
        else:
            self.release(key, "okta", f"Okta API token: {name}", op.t, [e.eid])
        return [e]

    # ---- aws

    def _iam_call(self, op: Op, t: datetime, name: str, req: dict, resp: dict | None, carries: bool,
                  session_ref: str | None, out: list[Emitted]) -> Emitted:
        ident, ip, ua, pre = self._aws_actor(op, t, session_ref)
        out.extend(pre)
        obj = ct_record(self.rng, t, "iam.amazonaws.com", name, ident, ip, ua, req, resp, False)
        e = self.emit("aws", t, obj, name, carries)
        out.append(e)
        return e

    def _session_ref(self, op: Op) -> str | None:
        """Automation names its role session after the ticket it works on."""
        if op.executor is None and op.ref:
            return op.ref
        return None

    def _grant_aws(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        out: list[Emitted] = []
        sref = self._session_ref(op)
        carries = sref is not None and op.ref_kind in ("ritm", "exception", "change", "end_date")
        name = p.aws_name
        t = op.t
        if ent.kind == "account":
            tags = [{"key": "email", "value": p.email}, {"key": "department", "value": p.bu_on(t.date())}]
            ticket = op.ref if (op.carry or sref) and op.ref_kind == "ritm" else None
            if ticket:
                tags.append({"key": "ticket", "value": ticket})
            created = aws_date(t)
            e1 = self._iam_call(op, t, "CreateUser", {"userName": name, "tags": tags},
                                {"user": {"path": "/", "userName": name, "userId": p.aws_uid,
                                          "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{name}", "createDate": created,
                                          "tags": tags}}, carries or bool(ticket), sref, out)
            ids = [e1.eid]
            t2 = t + timedelta(seconds=3)
            e2 = self._iam_call(op, t2, "CreateLoginProfile", {"userName": name, "passwordResetRequired": True},
                                {"loginProfile": {"userName": name, "createDate": aws_date(t2),
                                                  "passwordResetRequired": True}}, carries, sref, out)
            ids.append(e2.eid)
            if p.aws_dev:
                t3 = t + timedelta(seconds=5)
                k = aws_id(self.rng, "AKIA", 20)
                e3 = self._iam_call(op, t3, "CreateAccessKey", {"userName": name},
                                    {"accessKey": {"userName": name, "accessKeyId": k, "status": "Active",
                                                   "createDate": aws_date(t3)}}, carries, sref, out)
                self.keys[p.pid] = [k]
                ids.append(e3.eid)
            self.hold(p.pid, "aws", ent.key, t, ids, op.ref or None)
            return out
        if not self.held(p.pid, "aws").get(f"AWS IAM user: {AWS_ACCOUNT}"):
            raise AssertionError(f"{p.pid} has no IAM user for {ent.key}")
        if ent.kind == "awsgroup":
            e = self._iam_call(op, t, "AddUserToGroup", {"groupName": ent.name, "userName": name}, None, carries, sref,
                               out)
        else:
            e = self._iam_call(op, t, "AttachUserPolicy", {"userName": name, "policyArn": ent.name}, None, carries,
                               sref, out)
        self.hold(p.pid, "aws", ent.key, t, [e.eid], op.ref or None)
        return out

    def _revoke_aws(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        out: list[Emitted] = []
        sref = self._session_ref(op)
        carries = sref is not None and op.ref_kind in ("ritm", "exception", "change", "end_date")
        if ent.kind == "awsgroup":
            e = self._iam_call(op, op.t, "RemoveUserFromGroup", {"groupName": ent.name, "userName": p.aws_name}, None,
                               carries, sref, out)
        else:
            e = self._iam_call(op, op.t, "DetachUserPolicy", {"userName": p.aws_name, "policyArn": ent.name}, None,
                               carries, sref, out)
        self.release(p.pid, "aws", ent.key, op.t, [e.eid])
        return out

    def _offboard_aws(self, op: Op, p: Person) -> list[Emitted]:
        held = self.held(p.pid, "aws")
        if not held:
            return []
        out: list[Emitted] = []
        sref = self._session_ref(op)
        name = p.aws_name
        t = op.t
        step = 0

        def nxt() -> datetime:
            nonlocal step
            step += 1
            return t + timedelta(seconds=2 * step)

        ids: list[str] = []
        ids.append(self._iam_call(op, nxt(), "DeleteLoginProfile", {"userName": name}, None, False, sref, out).eid)
        for k in self.keys.pop(p.pid, []):
            if self.rng.random() < 0.5:
                ids.append(self._iam_call(op, nxt(), "UpdateAccessKey",
                                          {"userName": name, "accessKeyId": k, "status": "Inactive"}, None, False, sref,
                                          out).eid)
            ids.append(self._iam_call(op, nxt(), "DeleteAccessKey", {"userName": name, "accessKeyId": k}, None, False,
                                      sref, out).eid)
        for key in list(held):
            ent = self.c.cat.get(key)
            if ent is None or ent.kind == "account":
                continue
            if ent.kind == "awsgroup":
                e = self._iam_call(op, nxt(), "RemoveUserFromGroup", {"groupName": ent.name, "userName": name}, None,
                                   False, sref, out)
            else:
                e = self._iam_call(op, nxt(), "DetachUserPolicy", {"userName": name, "policyArn": ent.name}, None,
                                   False, sref, out)
            self.release(p.pid, "aws", key, e.t, [e.eid])
            ids.append(e.eid)
        e = self._iam_call(op, nxt(), "DeleteUser", {"userName": name}, None, False, sref, out)
        ids.append(e.eid)
        for key in list(held):
            self.release(p.pid, "aws", key, e.t, ids)
        return out

    def _op_svc_create(self, op: Op) -> list[Emitted]:
        acc: Account = op.holder
        out: list[Emitted] = []
        t = op.t
        tags = [{"key": "purpose", "value": acc.purpose}, {"key": "change", "value": op.ref}]
        if acc.owner is not None:
            tags.insert(0, {"key": "owner", "value": acc.owner.email})
        e1 = self._iam_call(op, t, "CreateUser", {"userName": acc.name, "path": "/service/", "tags": tags},
                            {"user": {"path": "/service/", "userName": acc.name, "userId": acc.uid,
                                      "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/service/{acc.name}",
                                      "createDate": aws_date(t), "tags": tags}}, True, None, out)
        k = aws_id(self.rng, "AKIA", 20)
        t2 = t + timedelta(seconds=4)
        e2 = self._iam_call(op, t2, "CreateAccessKey", {"userName": acc.name},
                            {"accessKey": {"userName": acc.name, "accessKeyId": k, "status": "Active",
                                           "createDate": aws_date(t2)}}, False, None, out)
        t3 = t + timedelta(seconds=7)
        e3 = self._iam_call(op, t3, "AttachUserPolicy", {"userName": acc.name, "policyArn": acc.policy}, None, False,
                            None, out)
        self.keys[acc.key] = [k]
        self.hold(acc.key, "aws", f"account:{acc.name}", t, [e1.eid, e2.eid], op.ref)
        self.hold(acc.key, "aws", f"AWS policy: {acc.policy}", t3, [e3.eid], op.ref)
        return out

    # ---- github

    def _gh_target(self, p: Person) -> dict:
        return {"user": p.username, "user_id": p.gh_id}

    def _grant_github(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        rng = self.rng
        actor = self._gh_actor(op)
        t = op.t
        out: list[Emitted] = []
        if ent.kind == "account":
            if rng.random() < 0.4:
                ti = t - timedelta(minutes=rng.randrange(2, 30))
                inv = gh_entry(rng, ti, "org.invite_member", actor.username, actor.gh_id, invitee=p.username,
                               **self._gh_target(p))
                out.append(self.emit("github", ti, inv, "org.invite_member"))
            o = gh_entry(rng, t, "org.add_member", actor.username, actor.gh_id, permission="read",
                         **self._gh_target(p))
        elif ent.kind == "team":
            self._need_gh(p, ent)
            o = gh_entry(rng, t, "team.add_member", actor.username, actor.gh_id, team=f"{GH_ORG}/{ent.name}",
                         **self._gh_target(p))
        elif ent.kind == "repo":
            o = gh_entry(rng, t, "repo.add_member", actor.username, actor.gh_id, repo=ent.name, permission=ent.perm,
                         repository=ent.name, repository_public=False, visibility="private", **self._gh_target(p))
        else:
            self._need_gh(p, ent)
            tid = str(rng.randrange(1_000_000, 9_999_999))
            self.pats[p.pid] = tid
            o = gh_entry(rng, t, "personal_access_token.access_granted", actor.username, actor.gh_id,
                         token_id=int(tid), programmatic_access_type="Fine-grained personal access token",
                         permissions={"contents": "read", "metadata": "read", "pull_requests": "write"},
                         **self._gh_target(p))
        out.append(self.emit("github", t, o, o["action"]))
        self.hold(p.pid, "github", ent.key, t, [e.eid for e in out], op.ref or None)
        return out

    def _need_gh(self, p: Person, ent: Ent) -> None:
        if not self.held(p.pid, "github").get(f"GitHub org membership: {GH_ORG}"):
            raise AssertionError(f"{p.pid} is no org member for {ent.key}")

    def _revoke_github(self, op: Op, p: Person, ent: Ent) -> list[Emitted]:
        rng = self.rng
        actor = self._gh_actor(op)
        if ent.kind == "team":
            o = gh_entry(rng, op.t, "team.remove_member", actor.username, actor.gh_id, team=f"{GH_ORG}/{ent.name}",
                         **self._gh_target(p))
        elif ent.kind == "repo":
            o = gh_entry(rng, op.t, "repo.remove_member", actor.username, actor.gh_id, repo=ent.name,
                         repository=ent.name, **self._gh_target(p))
        else:
            tid = self.pats.pop(p.pid, "0")
            o = gh_entry(rng, op.t, "personal_access_token.access_revoked", actor.username, actor.gh_id,
                         token_id=int(tid), **self._gh_target(p))
        e = self.emit("github", op.t, o, o["action"])
        self.release(p.pid, "github", ent.key, op.t, [e.eid])
        return [e]

    def _offboard_github(self, op: Op, p: Person) -> list[Emitted]:
        held = self.held(p.pid, "github")
        if not held:
            return []
        rng = self.rng
        actor = self._gh_actor(op)
        out: list[Emitted] = []
        t = op.t
        if p.pid in self.pats:
            o = gh_entry(rng, t, "personal_access_token.access_revoked", actor.username, actor.gh_id,
                         token_id=int(self.pats.pop(p.pid)), **self._gh_target(p))
            out.append(self.emit("github", t, o, o["action"]))
        member = f"GitHub org membership: {GH_ORG}" in held
        if member:
            o = gh_entry(rng, t + timedelta(seconds=3), "org.remove_member", actor.username, actor.gh_id,
                         **self._gh_target(p))
            out.append(self.emit("github", t + timedelta(seconds=3), o, o["action"]))
        else:
            for key in list(held):
                ent = self.c.cat[key]
                o = gh_entry(rng, t + timedelta(seconds=3), "repo.remove_member", actor.username, actor.gh_id,
                             repo=ent.name, repository=ent.name, **self._gh_target(p))
                e = self.emit("github", t + timedelta(seconds=3), o, o["action"])
                out.append(e)
                self.release(p.pid, "github", key, e.t, [e.eid])
        ids = [e.eid for e in out]
        for key in list(held):
            self.release(p.pid, "github", key, t, ids)
        return out

    # ---- dispatch for revoke / offboard

    def _op_revoke(self, op: Op) -> list[Emitted]:
        p = op.holder
        if op.ent.key not in self.held(p.pid, op.ent.system):
            return []
        return getattr(self, f"_revoke_{op.ent.system}")(op, p, op.ent)

    def _op_offboard(self, op: Op) -> list[Emitted]:
        return getattr(self, f"_offboard_{op.system}")(op, op.holder)


