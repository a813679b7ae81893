"""Okta System Log parser, on the real samples (``shared/data/dev/okta``) and on a few events built from
Okta's documented ``LogEvent`` shape where the samples are thin (user.lifecycle.*, memberships)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from accessproof.model import Action, IdentityEvent, OCSFClass, Outcome
from accessproof.sources.base import Context, Reject, iter_json_records
from accessproof.sources.okta import SOURCE

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dev"
if not DEV.exists():  # the same files, bundled with the repository
    DEV = Path(__file__).resolve().parents[2] / "data" / "samples"
SAMPLE = DEV / "okta" / "panther-tests.jsonl"

pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason=f"real samples not found at {SAMPLE}")

#: Sample lines quarantined, and why: a ``published`` that is present but not a timestamp.
EXPECTED_REJECTS = {
    36: "published 'redacted' is not ISO 8601",
    37: "published 'redacted' is not ISO 8601",
    38: "published 'redacted' is not ISO 8601",
}
#: Sample lines with no ``published`` at all (the rule tests did not need one): kept, time unknown.
NO_TIME = {43, 44, 46, 52}


def _ctx(data: bytes, position: str = "t:1", source_name: str | None = None) -> Context:
    return Context(source_type="okta", file="t", position=position, raw_id="r",
                   sha256=hashlib.sha256(data).hexdigest(), source_name=source_name)


def _run(path: Path) -> tuple[dict[str, IdentityEvent], dict[str, str]]:
    """Normalise every record of a file: accepted events and rejections, keyed by position."""
    accepted: dict[str, IdentityEvent] = {}
    rejected: dict[str, str] = {}
    for chunk in iter_json_records(path):
        assert chunk.error is None, chunk.error
        obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
        try:
            events = SOURCE.normalize(obj, _ctx(chunk.data, chunk.position))
        except Reject as e:
            rejected[chunk.position] = str(e)
            continue
        assert len(events) == 1
        accepted[chunk.position] = events[0]
    return accepted, rejected


@pytest.fixture(scope="module")
def sample() -> tuple[dict[int, IdentityEvent], dict[int, str]]:
    accepted, rejected = _run(SAMPLE)
    line = lambda pos: int(pos.rsplit(":", 1)[1])  # noqa: E731
    return {line(p): e for p, e in accepted.items()}, {line(p): r for p, r in rejected.items()}


def _line(n: int) -> dict[str, Any]:
    return orjson.loads(SAMPLE.read_bytes().splitlines()[n - 1])


def _get_published(obj: dict[str, Any]) -> Any:
    """``published`` (its spelling survives the pipelines' lower-casing), or None when absent or empty."""
    value = obj.get("published")
    return None if value in (None, "") else value


# ------------------------------------------------------------------ every record accounted for

def test_every_sample_record_is_accounted_for(sample):
    accepted, rejected = sample
    total = len(SAMPLE.read_bytes().splitlines())
    assert total == 53
    assert len(accepted) + len(rejected) == total
    assert rejected == EXPECTED_REJECTS
    assert len(accepted) == 50  # 94.3 %: the 3 others carry a present but unreadable time
    assert {n for n, e in accepted.items() if e.time is None} == NO_TIME


def test_sample_acceptance_rate(sample):
    """At least 92 % of the real sample is accepted: 50 of 53 lines (94.3 %)."""
    accepted, rejected = sample
    assert (len(accepted), len(rejected)) == (50, 3)
    assert len(accepted) / (len(accepted) + len(rejected)) >= 0.92


def test_records_without_published_are_kept_with_time_unknown(sample):
    accepted, _ = sample
    for n in NO_TIME:
        raw = _line(n)
        assert _get_published(raw) is None, n  # really no published under either spelling
        assert n in accepted, n
        assert accepted[n].time is None, n
        assert accepted[n].vendor_action == (raw.get("eventType") or raw.get("eventtype"))


def test_every_record_with_a_time_and_an_event_type_is_accepted(sample):
    """The ≥99 % rule, stated where it can hold: nothing that has a time and an action is quarantined."""
    accepted, _ = sample
    for n in range(1, 54):
        obj = _line(n)
        published = obj.get("published")
        if published and published != "redacted" and (obj.get("eventType") or obj.get("eventtype")):
            assert n in accepted, n


def test_sample_events_are_well_formed(sample):
    accepted, _ = sample
    for n, e in accepted.items():
        assert e.source == "okta"
        assert e.source_type == "okta"
        if _get_published(_line(n)) is None:
            assert e.time is None, n  # no time in the record: unknown, never invented
        else:
            assert e.time is not None, n
            assert e.time.tzinfo is not None and e.time.utcoffset().total_seconds() == 0
        assert e.vendor_action
        assert e.action in set(Action), n
        if e.action == Action.OTHER:
            assert e.vendor_action == (_line(n).get("eventType") or _line(n).get("eventtype"))
        assert e.raw_id is None


# ------------------------------------------------------------------ specific real events

def test_privilege_grant(sample):
    e = sample[0][4]
    assert e.event_id == "2a992f80-d1ad-4f62-900e-8c68bb72a21b"
    assert e.action == Action.PRIVILEGE_ELEVATE
    assert e.vendor_action == "user.account.privilege.grant"
    # "2020-11-25 21:27:03.496000000": the pipeline's zone-less form of Okta's UTC timestamp
    assert e.time == datetime(2020, 11, 25, 21, 27, 3, 496000, tzinfo=UTC)
    assert (e.actor.id, e.actor.name, e.actor.type) == ("00uu1uuuuIlllaaaa356", "Jack Naglieri", "human")
    assert (e.target.system, e.target.id, e.target.name) == ("okta", "00u6eup97mAJZWYmP357", "alice@acme.io")
    assert e.entitlement.type == "role"
    assert e.entitlement.name == "Organization administrator, Application administrator (all)"
    assert e.outcome == Outcome.SUCCESS
    assert e.src_ip == "136.24.229.58"
    assert e.user_agent.startswith("Mozilla/5.0 (Macintosh")
    assert e.attributes["legacy_event_type"] == "core.user.admin_privilege.granted"
    assert e.attributes["debug_data"]["privilegeGranted"].startswith("Organization administrator")
    assert e.approval_ref is None


def test_session_start_failure_with_lower_cased_keys(sample):
    raw = _line(6)
    assert "eventtype" in raw and "eventType" not in raw  # the pipeline quirk is really there
    e = sample[0][6]
    assert e.action == Action.AUTH_FAILURE
    assert e.outcome == Outcome.FAILURE
    assert e.vendor_action == "user.session.start"
    assert e.time == datetime(2022, 6, 22, 18, 18, 29, 15000, tzinfo=UTC)
    assert e.actor.name == "Homer Simpson" and e.actor.id == "00abc123"
    assert e.target.id == "0002222AAAA" and e.target.name == "peter.griffin@company.com"
    assert e.src_ip == "1.3.2.4"
    assert e.attributes["outcome_reason"] == "INVALID_CREDENTIALS"
    assert e.attributes["legacy_event_type"] == "core.user.factor.attempt_fail"
    assert e.attributes["transaction_id"] == "ABcDeFgG"
    assert (e.class_uid, e.activity_id) == (OCSFClass.AUTHENTICATION, 1)


def test_session_start_success_names_the_signing_in_user_and_not_the_org_host(sample):
    e = sample[0][20]
    assert e.event_id == "aac560bd-f125-11ee-9caa-cd5d09945def"
    assert e.action == Action.AUTH_SUCCESS
    assert e.time == datetime(2024, 4, 2, 19, 17, 37, 621000, tzinfo=UTC)
    # no User target on a sign-in: the account is the actor
    assert (e.target.id, e.target.name) == ("00ubewfku1EX0WCFk697", "casey.hill@hey.com")
    assert e.resource == "Okta Dashboard"
    # debugData.origin names https://trial-2340039.okta.com: not used to name the source
    assert e.source == "okta"
    e2 = sample[0][21]
    assert (e2.action, e2.outcome) == (Action.AUTH_FAILURE, Outcome.FAILURE)


def test_session_start_without_outcome_is_not_counted_as_success(sample):
    e = sample[0][2]
    assert e.action == Action.OTHER and e.outcome == Outcome.UNKNOWN
    assert e.vendor_action == "user.session.start"
    assert (e.class_uid, e.activity_id) == (OCSFClass.AUTHENTICATION, 1)


def test_impersonation_grant(sample):
    e = sample[0][1]
    assert e.action == Action.PRIVILEGE_ELEVATE
    assert e.vendor_action == "user.session.impersonation.grant"
    assert e.time == datetime(2022, 3, 22, 14, 21, 53, 225000, tzinfo=UTC)
    assert e.actor.name == "Homer Simpson"
    assert e.entitlement.type == "role"
    assert e.event_id == hashlib.sha256(SAMPLE.read_bytes().splitlines()[0]).hexdigest()  # no uuid


def test_mfa_events(sample):
    accepted = sample[0]
    assert accepted[51].action == Action.MFA_RESET  # user.mfa.factor.reset_all
    assert accepted[51].target.name == "peter.griffin@company.com"
    assert accepted[15].action == Action.AUTH_SUCCESS  # user.authentication.auth_via_mfa
    assert accepted[17].action == Action.AUTH_FAILURE
    assert accepted[50].action == Action.OTHER and accepted[50].vendor_action == "user.mfa.factor.suspend"
    # system.mfa.factor.deactivate turns a factor off for the org: a policy change, not an account's MFA
    assert accepted[3].action == Action.OTHER


def test_api_token_events(sample):
    create, revoke = sample[0][8], sample[0][9]
    assert create.action == Action.CREDENTIAL_CREATE and revoke.action == Action.CREDENTIAL_REVOKE
    assert (create.entitlement.type, create.entitlement.id, create.entitlement.name) == (
        "credential", "00Tpki36zlWjhjQ1u2p4", "test_key")
    assert create.actor.id == "00u3q14ei6KUOm4Xi2p4"


def test_lock_and_password_reset(sample):
    lock = sample[0][49]
    assert lock.action == Action.ACCOUNT_SUSPEND and lock.outcome == Outcome.FAILURE
    reset = sample[0][45]
    assert reset.action == Action.CREDENTIAL_ROTATE
    assert (reset.class_uid, reset.activity_id) == (OCSFClass.ACCOUNT_CHANGE, 4)
    assert reset.target.name == "homer@springfield.gov"


def test_service_actor_and_app_membership_event(sample):
    e = sample[0][10]
    assert e.actor.type == "service" and e.attributes["actor_type"] == "PublicClientApp"
    show = sample[0][31]
    assert show.action == Action.OTHER
    assert (show.entitlement.type, show.entitlement.id) == ("app", "16442ew83428795")
    assert show.target.id == "16325kd349753"  # the User target, not the AppUser


def test_failed_group_privilege_grant_keeps_its_outcome(sample):
    e = sample[0][14]
    assert e.action == Action.PRIVILEGE_ELEVATE and e.outcome == Outcome.FAILURE
    assert (e.class_uid, e.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 1)


def test_deny_is_failure(sample):
    assert sample[0][40].outcome == Outcome.FAILURE  # outcome.result DENY


# ------------------------------------------------------------------ JSON array (/api/v1/logs shape)

def test_json_array_of_real_records(tmp_path, sample):
    lines = SAMPLE.read_bytes().splitlines()
    path = tmp_path / "logs.json"
    path.write_bytes(b"[\n" + b",\n".join(lines) + b"\n]\n")
    accepted, rejected = _run(path)
    assert len(accepted) == 50 and len(rejected) == 3
    by_index = {int(p.split("#")[1].split("@")[0]): e for p, e in accepted.items()}
    # element i is sample line i + 1; the same bytes give the same event
    for i, e in by_index.items():
        assert e == sample[0][i + 1]


# ------------------------------------------------------------------ documentation-derived events
#
# The samples carry no user.lifecycle.* and no group/app membership changes. These events follow the
# LogEvent object documented for the System Log API (developer.okta.com, "System Log" reference: uuid,
# published as ISO 8601 UTC, eventType, actor, client, outcome, target[], transaction,
# debugContext.debugData, legacyEventType); they are documentation-derived, not captured.

ADMIN = {"id": "00u1admin", "type": "User", "alternateId": "admin@example.com", "displayName": "Ada Admin"}
ALICE = {"id": "00u1alice", "type": "User", "alternateId": "alice@example.com", "displayName": "Alice Ng"}
GROUP = {"id": "00g1finance", "type": "UserGroup", "alternateId": "unknown", "displayName": "Finance Approvers"}
APP = {"id": "0oa1salesforce", "type": "AppInstance", "alternateId": "Salesforce", "displayName": "Salesforce"}


def _doc_event(event_type: str, targets: list[dict], *, result: str = "SUCCESS", debug: dict | None = None,
               legacy: str | None = None) -> dict:
    return {
        "uuid": f"doc-{event_type}",
        "published": "2024-05-06T07:08:09.123Z",
        "eventType": event_type,
        "version": "0",
        "severity": "INFO",
        "legacyEventType": legacy,
        "displayMessage": event_type,
        "actor": ADMIN,
        "client": {"userAgent": {"rawUserAgent": "okta-sdk-java/8.2.0", "os": "Unknown", "browser": "UNKNOWN"},
                   "zone": "null", "device": "Unknown", "ipAddress": "203.0.113.7"},
        "outcome": {"result": result, "reason": None},
        "target": targets,
        "transaction": {"type": "WEB", "id": "Zm9vYmFy", "detail": {}},
        "debugContext": {"debugData": debug or {"requestId": "Zm9vYmFy", "requestUri": "/api/v1/users"}},
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": "unknown"},
        "securityContext": {},
    }


def _norm(obj: Any, source_name: str | None = None) -> IdentityEvent:
    (e,) = SOURCE.normalize(obj, _ctx(orjson.dumps(obj), source_name=source_name))
    return e


@pytest.mark.parametrize(("event_type", "action"), [
    ("user.lifecycle.create", Action.ACCOUNT_CREATE),
    ("user.lifecycle.activate", Action.ACCOUNT_ENABLE),
    ("user.lifecycle.reactivate", Action.ACCOUNT_ENABLE),
    ("user.lifecycle.unsuspend", Action.ACCOUNT_ENABLE),
    ("user.lifecycle.deactivate", Action.ACCOUNT_DISABLE),
    ("user.lifecycle.suspend", Action.ACCOUNT_SUSPEND),
    ("user.lifecycle.delete.completed", Action.ACCOUNT_DELETE),
    ("user.lifecycle.delete.initiated", Action.OTHER),
    ("user.mfa.factor.activate", Action.MFA_ENROLL),
    ("user.account.unlock", Action.ACCOUNT_ENABLE),
    ("user.account.update_password", Action.CREDENTIAL_ROTATE),
    ("iam.resourceset.bindings.add", Action.PRIVILEGE_ELEVATE),
    ("iam.role.create", Action.OTHER),
    ("application.user_membership.change_username", Action.OTHER),
])
def test_documented_lifecycle_mapping(event_type, action):
    e = _norm(_doc_event(event_type, [ALICE]))
    assert e.action == action
    assert e.vendor_action == event_type
    assert e.event_id == f"doc-{event_type}"
    assert e.time == datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert (e.target.system, e.target.id, e.target.name) == ("okta", "00u1alice", "alice@example.com")
    assert (e.actor.id, e.actor.name, e.actor.type) == ("00u1admin", "Ada Admin", "human")
    assert e.outcome == Outcome.SUCCESS
    assert e.src_ip == "203.0.113.7" and e.user_agent == "okta-sdk-java/8.2.0"


def test_documented_group_membership():
    add = _norm(_doc_event("group.user_membership.add", [ALICE, GROUP], legacy="core.user_group_member.user_add"))
    assert add.action == Action.ENTITLEMENT_GRANT
    assert (add.entitlement.type, add.entitlement.id, add.entitlement.name) == (
        "group", "00g1finance", "Finance Approvers")
    assert add.target.id == "00u1alice"
    assert (add.class_uid, add.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 3)
    rem = _norm(_doc_event("group.user_membership.remove", [ALICE, GROUP]))
    assert rem.action == Action.ENTITLEMENT_REVOKE and rem.entitlement.id == "00g1finance"
    assert (rem.class_uid, rem.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 4)


def test_documented_app_assignment():
    add = _norm(_doc_event("application.user_membership.add", [
        {"id": "0ua1appuser", "type": "AppUser", "alternateId": "alice@example.com", "displayName": "Alice Ng"},
        APP, ALICE]))
    assert add.action == Action.ENTITLEMENT_GRANT
    assert (add.entitlement.type, add.entitlement.id, add.entitlement.name) == ("app", "0oa1salesforce", "Salesforce")
    assert add.target.id == "00u1alice"
    rem = _norm(_doc_event("application.user_membership.remove", [APP, ALICE]))
    assert rem.action == Action.ENTITLEMENT_REVOKE and rem.entitlement.type == "app"


def test_approval_ref_from_debug_data_and_message():
    e = _norm(_doc_event("group.user_membership.add", [ALICE, GROUP],
                         debug={"requestId": "CHG1234567", "workflowExecution": "ticket RITM0012345"}))
    assert e.approval_ref == "RITM0012345"  # requestId is an opaque id, never read as a ticket
    obj = _doc_event("group.user_membership.add", [ALICE, GROUP])
    obj["displayMessage"] = "Add user to group membership (ACCESS-42)"
    assert _norm(obj).approval_ref == "ACCESS-42"


def test_source_name_wins_and_actor_falls_back_to_login():
    obj = _doc_event("user.lifecycle.create", [ALICE])
    obj["actor"] = {"id": "00u1svc", "type": "SystemPrincipal", "alternateId": "system@okta.com"}
    e = _norm(obj, source_name="okta:acme")
    assert e.source == "okta:acme" and e.target.system == "okta:acme"
    assert (e.actor.name, e.actor.type) == ("system@okta.com", "service")


def test_large_debug_data_is_trimmed():
    obj = _doc_event("user.lifecycle.create", [ALICE], debug={"big": "x" * 5000, "small": "ok"})
    assert _norm(obj).attributes["debug_data"] == {"small": "ok"}


# ------------------------------------------------------------------ rejects

@pytest.mark.parametrize(("obj", "reason"), [
    ([1, 2], "not a JSON object"),
    ("user.session.start", "not a JSON object"),
    ({"published": "2024-05-06T07:08:09Z"}, "missing eventType"),
    ({"eventType": 7, "published": "2024-05-06T07:08:09Z"}, "eventType has the wrong type"),
    ({"eventType": "user.session.start", "published": True}, "wrong type"),
    ({"eventType": "user.session.start", "published": {"t": 1}}, "wrong type"),
    ({"eventType": "user.session.start", "published": "yesterday"}, "not ISO 8601"),
])
def test_rejects(obj, reason):
    with pytest.raises(Reject, match=reason):
        SOURCE.normalize(obj, _ctx(b"x"))


@pytest.mark.parametrize("obj", [
    {"eventType": "user.session.start"},
    {"eventType": "user.session.start", "published": None},
    {"eventType": "user.session.start", "published": ""},
    {"eventtype": "user.session.start"},
])
def test_missing_published_is_accepted_with_time_unknown(obj):
    e = _norm(obj)
    assert e.time is None
    assert e.vendor_action == "user.session.start"
