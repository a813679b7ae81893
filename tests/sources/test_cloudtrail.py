"""AWS CloudTrail parser, on the real samples (``shared/data/dev/cloudtrail``: Panther rule-test events and
Stratus Red Team detonation logs) and, where the samples have nothing, on records built from CloudTrail's
documented record shape (DeleteUser, RemoveUserFromGroup, DeleteAccessKey, UpdateAccessKey, Identity
Center, session tags and sourceIdentity)."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from accessproof.model import Action, IdentityEvent, OCSFClass, Outcome
from accessproof.sources import get_source
from accessproof.sources.base import Context, Reject, iter_json_records
from accessproof.sources.cloudtrail import MAPPED_NAMES, SOURCE


def dev_data() -> Path:
    """The real samples: ``../shared/data/dev`` beside the repository, else the copy bundled in it."""
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dev"
    return shared if shared.exists() else Path(__file__).resolve().parents[2] / "data" / "samples"


CT = dev_data() / "cloudtrail"
PANTHER = CT / "panther-tests.jsonl"
STRATUS = CT / "stratus"

pytestmark = pytest.mark.skipif(not PANTHER.exists(), reason=f"real samples not found at {CT}")

#: Panther lines quarantined, and why: a timestamp is there but is not one.
EXPECTED_REJECTS = {
    312: "eventTime 'redacted' is not ISO 8601",
    436: "eventTime '...' is not ISO 8601",
}
#: Panther lines with no eventTime at all (the rule tests did not need one): kept, time unknown.
NO_TIME = {34, 35, 36, 37, 74, 87, 317, 318, 376, 377, 378, 379, 380, 428, 434}


def _ctx(data: bytes = b"", position: str = "t:1", source_name: str | None = None, **options: Any) -> Context:
    return Context(source_type="cloudtrail", file="t", position=position, raw_id="r",
                   sha256=hashlib.sha256(data).hexdigest(), source_name=source_name, options=options)


def _norm(obj: Any, data: bytes | None = None, **options: Any) -> IdentityEvent:
    events = SOURCE.normalize(obj, _ctx(orjson.dumps(obj) if data is None else data, **options))
    assert len(events) == 1
    return events[0]


def _files() -> list[Path]:
    return [PANTHER, *sorted(STRATUS.glob("*.json"))]


class Sample:
    """Every sample record read once: raw bytes, decoded object, event or rejection, by position."""

    def __init__(self) -> None:
        self.raw: dict[str, bytes] = {}
        self.obj: dict[str, Any] = {}
        self.accepted: dict[str, IdentityEvent] = {}
        self.rejected: dict[str, str] = {}
        for path in _files():
            for chunk in iter_json_records(path):
                assert chunk.error is None, (chunk.position, chunk.error)
                pos = f"{path.name}{chunk.position[len(str(path)):]}"
                obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
                self.raw[pos], self.obj[pos] = chunk.data, obj
                try:
                    events = SOURCE.normalize(obj, _ctx(chunk.data, pos))
                except Reject as e:
                    self.rejected[pos] = str(e)
                    continue
                assert len(events) == 1
                self.accepted[pos] = events[0]

    def line(self, n: int) -> IdentityEvent:
        return self.accepted[f"{PANTHER.name}:{n}"]

    def by_id(self, event_id: str) -> IdentityEvent:
        found = [e for e in self.accepted.values() if e.event_id == event_id]
        assert len(found) == 1, event_id
        return found[0]

    def raw_of(self, event_id: str) -> dict[str, Any]:
        return next(o for o in self.obj.values() if o.get("eventID") == event_id)


@pytest.fixture(scope="module")
def sample() -> Sample:
    return Sample()


# ------------------------------------------------------------------ every record accounted for

def test_every_sample_record_is_accounted_for(sample):
    panther = [p for p in sample.raw if p.startswith(PANTHER.name)]
    stratus = [p for p in sample.raw if not p.startswith(PANTHER.name)]
    assert (len(panther), len(stratus)) == (438, 310)
    assert len(sample.accepted) + len(sample.rejected) == 748
    assert {int(p.rsplit(":", 1)[1]): r for p, r in sample.rejected.items()} == EXPECTED_REJECTS
    for reason in sample.rejected.values():
        assert reason and "\n" not in reason


def test_sample_acceptance_rate(sample):
    """746 of 748 (99.7 %): the two others carry a placeholder ('redacted', '...') for eventTime."""
    assert len(sample.accepted) == 746
    assert len(sample.accepted) / len(sample.raw) >= 0.99
    assert all(not p.startswith(PANTHER.name) or int(p.rsplit(":", 1)[1]) in EXPECTED_REJECTS
               for p in sample.rejected)


def test_records_without_event_time_are_kept_with_time_unknown(sample):
    for n in NO_TIME:
        obj = sample.obj[f"{PANTHER.name}:{n}"]
        assert obj.get("eventTime") is None and obj.get("eventtime") is None, n  # really none
        e = sample.line(n)
        assert e.time is None, n  # unknown, never invented
        assert e.vendor_action == obj["eventName"]
    timed = [e for e in sample.accepted.values() if e.time is not None]
    assert len(timed) == 746 - len(NO_TIME)


def test_sample_events_are_well_formed(sample):
    actions = set(Action)
    for pos, e in sample.accepted.items():
        obj = sample.obj[pos]
        assert e.source_type == "cloudtrail"
        assert e.source.startswith("aws:"), pos
        assert e.action in actions, pos
        assert e.vendor_action == (obj.get("eventName") or obj.get("eventname")), pos
        assert e.time is None or (e.time.tzinfo is not None and e.time.utcoffset().total_seconds() == 0)
        assert e.raw_id is None
        assert e.outcome in set(Outcome)
        if obj.get("errorCode"):
            assert e.outcome == Outcome.FAILURE, pos
        if e.action == Action.OTHER and e.class_uid == 0:
            assert e.activity_id == 0


def test_unmapped_events_are_kept_as_other(sample):
    e = sample.by_id("450230d4-b39e-4a18-a6a0-d07a6e2105cb")  # ec2:GetPasswordData, denied
    assert (e.action, e.vendor_action) == (Action.OTHER, "GetPasswordData")
    assert e.outcome == Outcome.FAILURE
    assert (e.class_uid, e.activity_id) == (0, 0)
    assert e.attributes["error_code"] == "Client.UnauthorizedOperation"
    assert e.attributes["event_source"] == "ec2.amazonaws.com"
    assert e.attributes["read_only"] is True
    # an SDK-named role session is automation
    assert e.actor.type == "service"
    assert e.actor.name.startswith("aws-go-sdk-")
    others = {e.vendor_action for e in sample.accepted.values() if e.action == Action.OTHER}
    assert {"DescribeInstances", "GetSecretValue", "RunInstances", "StopLogging"} <= others


# ------------------------------------------------------------------ specific real events (Stratus)

def test_create_user(sample):
    e = sample.by_id("3346344c-5a3e-429e-8405-420f98f75d6e")
    assert (e.action, e.vendor_action) == (Action.ACCOUNT_CREATE, "CreateUser")
    assert e.time == datetime(2024, 8, 1, 13, 33, 28, tzinfo=UTC)
    assert e.source == "aws:229654561268"
    assert (e.actor.id, e.actor.name, e.actor.type) == (
        "arn:aws:iam::229654561268:user/christophe", "christophe", "human")
    assert (e.target.system, e.target.id, e.target.name) == (
        "aws:229654561268", "malicious-iam-user", "malicious-iam-user")
    assert e.outcome == Outcome.SUCCESS
    assert (e.class_uid, e.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 1)
    assert e.attributes["tags"] == {"StratusRedTeam": "true"}
    assert e.attributes["target_type"] == "user"
    assert e.attributes["request_parameters"]["userName"] == "malicious-iam-user"
    assert e.approval_ref is None and e.environment is None


def test_attach_user_policy(sample):
    e = sample.by_id("083dc4ad-e264-46bc-a407-d0dd31b58bdc")
    assert (e.action, e.vendor_action) == (Action.ENTITLEMENT_GRANT, "AttachUserPolicy")
    assert (e.entitlement.type, e.entitlement.id, e.entitlement.name) == (
        "policy", "arn:aws:iam::aws:policy/AdministratorAccess", "AdministratorAccess")
    assert (e.target.system, e.target.id) == ("aws:229654561268", "malicious-iam-user")
    assert e.actor.name == "christophe"
    assert (e.class_uid, e.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 7)  # Attach Policy
    assert e.time == datetime(2024, 8, 1, 13, 33, 28, tzinfo=UTC)


def test_create_access_key(sample):
    e = sample.by_id("94faedcc-0fa4-46e6-9322-022e8e934f04")
    assert (e.action, e.vendor_action) == (Action.CREDENTIAL_CREATE, "CreateAccessKey")
    assert (e.entitlement.type, e.entitlement.id) == ("credential", "AKIAXAFZN8JEPF6L682H")
    assert e.target.id == "malicious-iam-user"
    assert e.outcome == Outcome.SUCCESS


def test_console_login_without_mfa(sample):
    e = sample.by_id("865d9377-9c6b-4fd7-8aad-725e95f6a140")
    assert (e.action, e.vendor_action) == (Action.AUTH_SUCCESS, "ConsoleLogin")
    assert e.outcome == Outcome.SUCCESS
    assert (e.class_uid, e.activity_id) == (OCSFClass.AUTHENTICATION, 1)
    assert e.attributes["mfa_used"] == "No"
    assert e.actor.type == "human"
    assert e.actor.name == e.target.name == "stratus-red-team-nmfalu-jfzdtsvchl"
    assert e.target.system == "aws:562283505220"
    assert e.time == datetime(2024, 8, 2, 8, 53, 24, tzinfo=UTC)
    assert e.src_ip == "225.01.00.16"  # scrambled by Stratus, kept as written


def test_login_profile_events(sample):
    create = sample.by_id("d3906a7d-604b-407f-acb6-fc425742821e")
    assert (create.action, create.vendor_action) == (Action.CREDENTIAL_CREATE, "CreateLoginProfile")
    assert create.target.id == "stratus-red-team-login-profile-user"
    assert create.entitlement.type == "credential"
    delete = sample.by_id("64fb98c9-cb40-4f9a-b800-6c15e82e9be6")
    assert (delete.action, delete.outcome) == (Action.CREDENTIAL_REVOKE, Outcome.FAILURE)
    assert delete.attributes["error_code"] == "EntityTemporarilyUnmodifiableException"
    update = sample.by_id("a46a1a42-9ef1-48d4-9c61-507eb6d4019f")
    assert (update.action, update.vendor_action) == (Action.CREDENTIAL_ROTATE, "UpdateLoginProfile")
    assert update.target.id == "stratus-red-team-update-login-profile-user"
    assert (update.class_uid, update.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 4)  # Password Reset


def test_role_creation_and_policy(sample):
    role = sample.by_id("d2905ac3-9898-433f-b10d-9302abe4e208")
    assert (role.action, role.vendor_action) == (Action.ACCOUNT_CREATE, "CreateRole")
    assert (role.target.id, role.attributes["target_type"]) == ("stratus-red-team-malicious-iam-role", "role")
    attach = sample.by_id("39480357-0a1d-4531-a3f2-71be4c041c25")
    assert (attach.action, attach.vendor_action) == (Action.ENTITLEMENT_GRANT, "AttachRolePolicy")
    assert attach.target.id == "stratus-red-team-malicious-iam-role"
    assert attach.entitlement.id == "arn:aws:iam::aws:policy/AdministratorAccess"


def test_assume_role(sample):
    ok = sample.by_id("eebae605-3664-4560-a248-17d33f9ef6ef")
    assert (ok.action, ok.outcome) == (Action.AUTH_SUCCESS, Outcome.SUCCESS)
    assert (ok.class_uid, ok.activity_id) == (OCSFClass.AUTHENTICATION, 1)
    assert (ok.target.system, ok.target.id) == ("aws:321848314756", "stratus-red-team-get-usr-data-role")
    assert ok.attributes["target_type"] == "role"
    assert ok.actor.name == "christophe"
    assert ok.approval_ref is None  # the SDK's session name carries no decision id
    denied = sample.by_id("4cf5dad6-648f-48eb-85a7-6181c5d79424")
    assert (denied.action, denied.outcome) == (Action.AUTH_FAILURE, Outcome.FAILURE)
    assert denied.attributes["error_code"] == "AccessDenied"


def test_federation_token(sample):
    e = sample.by_id("6e882b9d-2af8-4c67-b91f-aeac6a0e5e70")
    assert (e.action, e.vendor_action) == (Action.CREDENTIAL_CREATE, "GetFederationToken")
    assert (e.target.id, e.attributes["target_type"]) == ("stratus_red_team", "federated_user")
    assert (e.entitlement.type, e.entitlement.id) == ("credential", "ASIASTJKC5GCM7ZE6LUP")
    used = sample.by_id("91529247-c4c4-4793-afc8-d70bbcfe9d19")  # the federated user's next call
    assert (used.actor.name, used.actor.type) == ("stratus_red_team", "human")


def test_scrambled_ips_and_regions_are_accepted(sample):
    stratus = {p: e for p, e in sample.accepted.items() if not p.startswith(PANTHER.name)}
    assert len(stratus) == 310
    e = sample.by_id("3346344c-5a3e-429e-8405-420f98f75d6e")
    assert e.src_ip == "075.050.255.67"
    assert e.attributes["aws_region"] == "ap-isob-central-3r"
    assert sum(1 for e in stratus.values() if e.src_ip and any(
        len(o) > 1 and o.startswith("0") for o in e.src_ip.split("."))) >= 10


# ------------------------------------------------------------------ specific real events (Panther)

def test_console_login_failure(sample):
    e = sample.line(53)
    assert (e.action, e.outcome) == (Action.AUTH_FAILURE, Outcome.FAILURE)
    assert e.attributes["error_message"] == "Failed authentication"
    assert (e.target.id, e.actor.name) == ("anaya", "anaya")


def test_console_login_without_verdict_is_not_counted(sample):
    e = sample.line(67)  # no responseElements: neither success nor failure
    assert (e.action, e.outcome) == (Action.OTHER, Outcome.UNKNOWN)
    assert (e.class_uid, e.activity_id) == (OCSFClass.AUTHENTICATION, 1)
    assert e.event_id == hashlib.sha256(sample.raw[f"{PANTHER.name}:67"]).hexdigest()  # no eventID


def test_identity_center_console_session_is_human(sample):
    e = sample.line(56)
    assert e.action == Action.AUTH_SUCCESS
    assert (e.actor.name, e.actor.type) == ("nicholas.hakmiller", "human")
    assert e.target.id == "AWSReservedSSO_DevAdmin_635426549a280cc6"
    assert e.attributes["target_type"] == "role"
    # "2024-06-02 19:41:40.000000000": the pipeline's zone-less form of CloudTrail's UTC time
    assert e.time == datetime(2024, 6, 2, 19, 41, 40, tzinfo=UTC)


def test_actor_rules(sample):
    assert (sample.line(75).actor.name, sample.line(75).actor.type) == ("foo@bar.com", "human")  # email
    svc = sample.line(435)  # a Lambda function assuming its role
    assert (svc.actor.id, svc.actor.type) == ("lambda.amazonaws.com", "service")
    assert svc.action == Action.AUTH_SUCCESS
    root = sample.line(70)
    assert (root.actor.name, root.actor.type, root.target.id) == ("root", "human", "root")


def test_group_policy_and_mfa(sample):
    e = sample.line(171)
    assert (e.action, e.vendor_action) == (Action.ENTITLEMENT_REVOKE, "DeleteGroupPolicy")
    assert (e.resource, e.entitlement.type, e.entitlement.name) == ("group/group", "policy", "policy")
    assert e.target.id is None  # a group's policy: every member loses it, no single account
    assert (e.class_uid, e.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 2)
    mfa = sample.line(416)
    assert (mfa.action, mfa.vendor_action) == (Action.MFA_ENROLL, "CreateVirtualMFADevice")
    assert (mfa.class_uid, mfa.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 10)


def test_access_key_without_user_name_is_the_callers(sample):
    root = sample.line(307)
    assert (root.action, root.target.id, root.attributes["target_type"]) == (
        Action.CREDENTIAL_CREATE, "root", "root")
    own = sample.line(178)
    assert (own.target.id, own.outcome) == ("some_iam_user", Outcome.FAILURE)


def test_lower_cased_keys_and_string_read_only(sample):
    raw = sample.obj[f"{PANTHER.name}:31"]
    assert "eventname" in raw and "eventName" not in raw  # the pipeline quirk is really there
    e = sample.line(31)
    assert (e.event_id, e.vendor_action) == ("5d4b45ed-a15c-41b6-80e9-031729fa060d", "GetRecords")
    assert e.time == datetime(2023, 1, 10, 21, 4, 2, tzinfo=UTC)
    assert e.attributes["event_source"] == "dynamodb.amazonaws.com"
    assert e.actor.id == "arn:aws:test_arn"
    assume = sample.line(102)
    assert assume.attributes["read_only"] is True  # written as the string "True"
    assert assume.attributes["request_parameters"]["roleSessionName"] == "SampleSession"
    assert assume.time == datetime(2024, 12, 12, 16, 4, 32, tzinfo=UTC)


def test_naive_event_time_is_utc(sample):
    e = sample.line(29)  # "2022-09-15 13:45:24"
    assert e.time == datetime(2022, 9, 15, 13, 45, 24, tzinfo=UTC)
    assert (e.action, e.target.id) == (Action.CREDENTIAL_ROTATE, "alice")


# ------------------------------------------------------------------ record-level verdicts

def _base() -> dict[str, Any]:
    """A real record (Stratus CreateUser) to vary."""
    data = (STRATUS / "aws.persistence.iam-create-admin-user.json").read_bytes()
    return next(o for o in orjson.loads(data) if o["eventName"] == "CreateUser")


@pytest.mark.parametrize(("change", "reason"), [
    ({"eventTime": 1722519208}, "eventTime has the wrong type (int)"),
    ({"eventTime": ["2024-08-01T13:33:28Z"]}, "eventTime has the wrong type (list)"),
    ({"eventTime": "yesterday"}, "eventTime 'yesterday' is not ISO 8601"),
    ({"eventName": None}, "missing eventName"),
    ({"eventName": "  "}, "missing eventName"),
    ({"eventName": 42}, "eventName has the wrong type (int)"),
])
def test_bad_records_are_rejected_with_a_reason(change, reason):
    obj = {**_base(), **change}
    with pytest.raises(Reject) as r:
        SOURCE.normalize(obj, _ctx(orjson.dumps(obj)))
    assert str(r.value).startswith(reason)


def test_non_object_is_rejected():
    for obj in ([], "x", 3, None):
        with pytest.raises(Reject, match="not a JSON object"):
            SOURCE.normalize(obj, _ctx())


def test_missing_and_zone_less_event_time():
    obj = _base()
    del obj["eventTime"]
    assert _norm(obj).time is None  # no timestamp at all: kept, time unknown
    naive = {**_base(), "eventTime": "2024-08-01T13:33:28"}
    assert _norm(naive).time == datetime(2024, 8, 1, 13, 33, 28, tzinfo=UTC)  # documented UTC
    with pytest.raises(Reject, match="has no timezone offset"):
        _norm(naive, strict_time=True)  # the option refuses to assume it
    offset = {**_base(), "eventTime": "2024-08-01T15:33:28+02:00"}
    assert _norm(offset).time == datetime(2024, 8, 1, 13, 33, 28, tzinfo=UTC)


def test_source_name_and_event_id_fallback():
    obj = _base()
    assert _norm(obj).source == "aws:229654561268"
    data = orjson.dumps(obj)
    assert SOURCE.normalize(obj, _ctx(data, source_name="aws:prod"))[0].source == "aws:prod"
    del obj["eventID"], obj["recipientAccountId"]
    e = SOURCE.normalize(obj, _ctx(orjson.dumps(obj)))[0]
    assert e.event_id == hashlib.sha256(orjson.dumps(obj)).hexdigest()
    assert e.source == "aws:229654561268"  # from userIdentity.accountId
    assert get_source("cloudtrail") is SOURCE


def test_tags_give_environment_business_unit_and_approval():
    obj = _base()
    obj["requestParameters"]["tags"] = [
        {"key": "StratusRedTeam", "value": "true"}, {"key": "Environment", "value": "prod"},
        {"key": "business_unit", "value": "payments"}, {"key": "Ticket", "value": "RITM0012345"}]
    e = _norm(obj)
    assert (e.environment, e.business_unit, e.approval_ref) == ("prod", "payments", "RITM0012345")
    obj["requestParameters"]["tags"] = [{"Key": "env", "Value": "staging"}, {"Key": "BU", "Value": "retail"},
                                        {"Key": "Ticket", "Value": "TKT-77"}]
    e = _norm(obj, approval_patterns=[r"\bTKT-\d+\b"])
    assert (e.environment, e.business_unit, e.approval_ref) == ("staging", "retail", "TKT-77")


# ------------------------------------------------------------------ documentation-derived records
# The samples have no DeleteUser, RemoveUserFromGroup, DeleteAccessKey, UpdateAccessKey, Identity Center
# assignment or identity-store events, and no AssumeRole with a source identity or session tags. These
# records follow CloudTrail's documented record contents (eventVersion, userIdentity, eventTime,
# eventSource, eventName, awsRegion, sourceIPAddress, userAgent, requestParameters, responseElements,
# requestID, eventID, readOnly, eventType, managementEvent, recipientAccountId, eventCategory) with the
# request parameters named as in the IAM, STS, IAM Identity Center and Identity Store API references;
# the caller is the real Stratus IAM user.

def _documented(event_name: str, request: dict | None, response: dict | None = None, *,
                source: str = "iam.amazonaws.com", read_only: bool = False) -> dict[str, Any]:
    base = _base()
    return {
        "eventVersion": "1.09",
        "userIdentity": base["userIdentity"],
        "eventTime": "2024-08-02T09:00:00Z",
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": "5f8e7c1a-0000-4000-8000-000000000001",
        "eventID": f"doc-{event_name}",
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "229654561268",
        "eventCategory": "Management",
    }


def test_delete_user():
    e = _norm(_documented("DeleteUser", {"userName": "malicious-iam-user"}))
    assert (e.action, e.vendor_action) == (Action.ACCOUNT_DELETE, "DeleteUser")
    assert (e.target.system, e.target.id) == ("aws:229654561268", "malicious-iam-user")
    assert (e.class_uid, e.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 6)
    assert e.time == datetime(2024, 8, 2, 9, 0, tzinfo=UTC)


def test_group_membership():
    add = _norm(_documented("AddUserToGroup", {"groupName": "admins", "userName": "alice"}))
    assert (add.action, add.target.id, add.entitlement.type, add.entitlement.id) == (
        Action.ENTITLEMENT_GRANT, "alice", "group", "admins")
    assert (add.class_uid, add.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 3)
    rm = _norm(_documented("RemoveUserFromGroup", {"groupName": "admins", "userName": "alice"}))
    assert (rm.action, rm.target.id, rm.entitlement.id) == (Action.ENTITLEMENT_REVOKE, "alice", "admins")
    assert (rm.class_uid, rm.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 4)


def test_access_key_lifecycle():
    key = "AKIAXAFZN8JEPF6L682H"
    gone = _norm(_documented("DeleteAccessKey", {"userName": "malicious-iam-user", "accessKeyId": key}))
    assert (gone.action, gone.entitlement.type, gone.entitlement.id, gone.target.id) == (
        Action.CREDENTIAL_REVOKE, "credential", key, "malicious-iam-user")
    off = _norm(_documented("UpdateAccessKey", {"userName": "malicious-iam-user", "accessKeyId": key,
                                                 "status": "Inactive"}))
    assert (off.action, off.attributes["key_status"]) == (Action.CREDENTIAL_REVOKE, "Inactive")
    # back to Active: the key opens access again, so it needs an approval like a new key
    on = _norm(_documented("UpdateAccessKey", {"accessKeyId": key, "status": "Active"}))
    assert on.action == Action.CREDENTIAL_CREATE
    assert on.target.id == "christophe"  # no userName: IAM acts on the caller


def test_identity_center_assignment():
    req = {"instanceArn": "arn:aws:sso:::instance/ssoins-1234567890abcdef",
           "targetId": "111122223333", "targetType": "AWS_ACCOUNT",
           "permissionSetArn": "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef",
           "principalType": "USER", "principalId": "94d00cd8-e9e6-4810-b177-b08e84775435"}
    resp = {"accountAssignmentCreationStatus": {"status": "IN_PROGRESS", "requestId": "abc"}}
    e = _norm(_documented("CreateAccountAssignment", req, resp, source="sso.amazonaws.com"))
    assert e.action == Action.ENTITLEMENT_GRANT
    assert (e.target.system, e.target.id) == ("aws-sso:229654561268", req["principalId"])
    assert (e.entitlement.type, e.entitlement.id) == ("role", req["permissionSetArn"])
    assert e.resource == "aws:111122223333"
    assert e.attributes["target_type"] == "user"
    gone = _norm(_documented("DeleteAccountAssignment", req, source="sso.amazonaws.com"))
    assert gone.action == Action.ENTITLEMENT_REVOKE


def test_identity_store_user_creation():
    req = {"identityStoreId": "d-1234567890", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
           "displayName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    resp = {"identityStoreId": "d-1234567890", "userId": "94d00cd8-e9e6-4810-b177-b08e84775435"}
    e = _norm(_documented("CreateUser", req, resp, source="identitystore.amazonaws.com"))
    assert e.action == Action.ACCOUNT_CREATE
    assert (e.target.system, e.target.id, e.target.name) == (
        "aws-sso:229654561268", "94d00cd8-e9e6-4810-b177-b08e84775435", None)  # the name is redacted
    assert e.attributes["identity_store_id"] == "d-1234567890"


def test_assume_role_with_source_identity_and_session_tags():
    req = {"roleArn": "arn:aws:iam::111122223333:role/BreakGlass", "roleSessionName": "alice",
           "sourceIdentity": "alice@example.com", "durationSeconds": 900,
           "tags": [{"key": "Ticket", "value": "CHG0031337"}, {"key": "Environment", "value": "prod"}],
           "transitiveTagKeys": ["Ticket"]}
    resp = {"assumedRoleUser": {"arn": "arn:aws:sts::111122223333:assumed-role/BreakGlass/alice",
                                "assumedRoleId": "AROAEXAMPLE:alice"},
            "sourceIdentity": "alice@example.com"}
    e = _norm(_documented("AssumeRole", req, resp, source="sts.amazonaws.com", read_only=True))
    assert (e.action, e.outcome) == (Action.AUTH_SUCCESS, Outcome.SUCCESS)
    assert (e.target.system, e.target.id) == ("aws:111122223333", "BreakGlass")  # the role's own account
    assert e.approval_ref == "CHG0031337"
    assert e.environment == "prod"
    assert e.attributes["session_tags"] == {"Ticket": "CHG0031337", "Environment": "prod"}
    assert e.attributes["transitive_tag_keys"] == ["Ticket"]
    assert e.attributes["source_identity"] == "alice@example.com"
    # the approval may also be the source identity itself
    req2 = {**req, "sourceIdentity": "RITM0099887", "tags": []}
    assert _norm(_documented("AssumeRole", req2, source="sts.amazonaws.com")).approval_ref == "RITM0099887"


def test_assume_role_with_saml_principal_tags():
    req = {"roleArn": "arn:aws:iam::229654561268:role/OktaAdmins",
           "principalArn": "arn:aws:iam::229654561268:saml-provider/Okta", "durationSeconds": 3600,
           "principalTags": {"BusinessUnit": "payments", "Ticket": "ACCESS-42"}}
    obj = _documented("AssumeRoleWithSAML", req, source="sts.amazonaws.com", read_only=True)
    obj["userIdentity"] = {"type": "SAMLUser", "principalId": "Okta:alice@example.com",
                           "userName": "alice@example.com", "identityProvider": "Okta"}
    e = _norm(obj)
    assert (e.action, e.target.id) == (Action.AUTH_SUCCESS, "OktaAdmins")
    assert (e.actor.name, e.actor.type) == ("alice@example.com", "human")
    assert (e.business_unit, e.approval_ref) == ("payments", "ACCESS-42")


def test_identity_store_group_membership():
    req = {"identityStoreId": "d-1234567890", "groupId": "a1b2c3d4-0000-4000-8000-000000000001",
           "memberId": {"userId": "94d00cd8-e9e6-4810-b177-b08e84775435"}}
    resp = {"membershipId": "m-0001", "identityStoreId": "d-1234567890"}
    e = _norm(_documented("CreateGroupMembership", req, resp, source="identitystore.amazonaws.com"))
    assert e.action == Action.ENTITLEMENT_GRANT
    assert (e.target.system, e.target.id) == ("aws-sso:229654561268", "94d00cd8-e9e6-4810-b177-b08e84775435")
    assert (e.entitlement.type, e.entitlement.id) == ("group", req["groupId"])
    assert (e.class_uid, e.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 3)
    assert e.attributes["membership_id"] == "m-0001"


def test_role_session_with_source_identity_is_human():
    obj = _documented("DescribeInstances", {"maxResults": 5}, source="ec2.amazonaws.com", read_only=True)
    obj["userIdentity"] = {
        "type": "AssumedRole", "principalId": "AROAEXAMPLE:deploy-42",
        "arn": "arn:aws:sts::229654561268:assumed-role/Deployer/deploy-42", "accountId": "229654561268",
        "sessionContext": {"sourceIdentity": "REQ0012345",
                           "sessionIssuer": {"type": "Role", "userName": "Deployer",
                                             "arn": "arn:aws:iam::229654561268:role/Deployer"},
                           "attributes": {"mfaAuthenticated": "false", "creationDate": "2024-08-02T08:59:00Z"}}}
    e = _norm(obj)
    assert (e.actor.name, e.actor.type) == ("deploy-42", "human")
    assert e.approval_ref == "REQ0012345"
    assert SOURCE.normalize_bytes(orjson.dumps(obj), _ctx()) is None  # carries a reference: full path
    del obj["userIdentity"]["sessionContext"]["sourceIdentity"]
    assert _norm(obj).actor.type == "service"  # a named automation session


# ------------------------------------------------------------------ input shapes

def test_records_wrapper_and_gzip(tmp_path, sample):
    """CloudTrail's S3 delivery ({"Records": [...]}, gzip) and gzip JSON Lines, from the real records."""
    objs = [o for p, o in sample.obj.items() if not p.startswith(PANTHER.name)]
    expected = [(e.event_id, e.action, e.time) for p, e in sample.accepted.items()
                if not p.startswith(PANTHER.name)]
    doc = orjson.dumps({"Records": objs})
    (tmp_path / "trail.json").write_bytes(doc)
    (tmp_path / "trail.json.gz").write_bytes(gzip.compress(doc))
    lines = b"\n".join(sample.raw[p] for p in sample.raw if p.startswith(PANTHER.name))
    (tmp_path / "panther.jsonl.gz").write_bytes(gzip.compress(lines))
    for name in ("trail.json", "trail.json.gz"):
        got = []
        for chunk in iter_json_records(tmp_path / name):
            assert chunk.error is None
            obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
            e = SOURCE.normalize(obj, _ctx(chunk.data, chunk.position))[0]
            got.append((e.event_id, e.action, e.time))
        assert got == expected, name
    accepted = rejected = 0
    for chunk in iter_json_records(tmp_path / "panther.jsonl.gz"):
        try:
            SOURCE.normalize(orjson.loads(chunk.data), _ctx(chunk.data, chunk.position))
            accepted += 1
        except Reject:
            rejected += 1
    assert (accepted, rejected) == (436, 2)


# ------------------------------------------------------------------ fast path

def test_fast_path_equals_full_path_on_every_sample_record(sample):
    answered = 0
    for pos, data in sample.raw.items():
        ctx = _ctx(data, pos)
        fast = SOURCE.normalize_bytes(data, ctx)
        if fast is None:
            continue
        answered += 1
        assert pos in sample.accepted, pos  # never answers for a record the full path rejects
        assert fast == [SOURCE.normalize(orjson.loads(data), ctx)[0]], pos
        assert fast[0].action == Action.OTHER and fast[0].vendor_action not in MAPPED_NAMES
    # the read-only noise of the samples: Describe*/Get*/List* and data events
    assert answered >= 250


def test_fast_path_equals_full_path_on_compact_records(sample):
    """The same records re-serialised as CloudTrail writes them ("readOnly":true, no spaces)."""
    answered = 0
    for pos, obj in sample.obj.items():
        data = orjson.dumps(obj)
        ctx = _ctx(data, pos)
        fast = SOURCE.normalize_bytes(data, ctx)
        if fast is not None:
            answered += 1
            assert fast == SOURCE.normalize(obj, ctx), pos
    assert answered >= 250


def _read_only() -> dict[str, Any]:
    return _documented("DescribeInstances", {"maxResults": 5}, source="ec2.amazonaws.com", read_only=True)


def test_fast_path_declines_what_it_does_not_handle():
    ctx = _ctx()
    assert SOURCE.normalize_bytes(orjson.dumps(_read_only()), ctx) is not None
    variants = {
        "not read-only": {**_read_only(), "readOnly": False},
        "mapped name": {**_read_only(), "eventName": "AssumeRole", "eventSource": "sts.amazonaws.com"},
        "tags": {**_read_only(), "requestParameters": {"tags": [{"key": "Ticket", "value": "CHG0012345"}]}},
        "description": {**_read_only(), "requestParameters": {"description": "per RITM0012345"}},
        "session name": {**_read_only(), "requestParameters": {"roleSessionName": "x"}},
        "number id": {**_read_only(), "eventID": 12345},
        "lower-cased key": {**_read_only(), "awsregion": "eu-west-1"},
        "bad time": {**_read_only(), "eventTime": "redacted"},
        "no name": {k: v for k, v in _read_only().items() if k != "eventName"},
    }
    for why, obj in variants.items():
        assert SOURCE.normalize_bytes(orjson.dumps(obj), ctx) is None, why
    good = orjson.dumps(_read_only())
    assert SOURCE.normalize_bytes(good[:-1], ctx) is None  # malformed JSON
    assert SOURCE.normalize_bytes(good.replace(b"aws-cli", b"aws-\xff-cli"), ctx) is None  # bad UTF-8
    assert SOURCE.normalize_bytes(orjson.dumps([_read_only()]), ctx) is None  # not an object
    # a zone-less time under strict_time: the full path gives the reason
    naive = orjson.dumps({**_read_only(), "eventTime": "2024-08-02 09:00:00"})
    assert SOURCE.normalize_bytes(naive, _ctx(strict_time=True)) is None


def test_fast_path_reads_escapes_and_spacing_like_the_full_path():
    obj = {**_read_only(), "userAgent": 'console "quoted" \u00e9 \\ agent', "errorCode": "AccessDenied",
           "errorMessage": "User: x is not authorized {\"a\": [1]}"}
    for data in (orjson.dumps(obj), orjson.dumps(obj, option=orjson.OPT_INDENT_2)):
        ctx = _ctx(data)
        fast = SOURCE.normalize_bytes(data, ctx)
        assert fast is not None
        assert fast == SOURCE.normalize(obj, ctx)
        assert fast[0].outcome == Outcome.FAILURE
        assert fast[0].user_agent == 'console "quoted" \u00e9 \\ agent'
