"""Entra ID parser on the real samples (Azure Monitor and Log Analytics shapes) and on a Graph fixture.

The Graph ``directoryAudits`` fixture is documentation-derived (see its ``_comment``): no public Graph
export exists in the dev set, so it follows Microsoft's documented response example and activity names.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from accessproof.model import OCSF_FOR_ACTION, Action, IdentityEvent, OCSFClass, Outcome
from accessproof.sources.base import Context, Reject, iter_json_records
from accessproof.sources.entra import SOURCE

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def entra(samples: Path) -> Path:
    """The real Entra samples (``samples`` comes from tests/conftest.py)."""
    return samples / "entra"


def _run(path: Path, **options) -> tuple[list[tuple[str, IdentityEvent]], list[tuple[str, str]]]:
    """Read a file as the ingest engine does: (position, event) accepted, (position, reason) rejected."""
    accepted, rejected = [], []
    source_name = options.pop("source_name", None)
    for chunk in iter_json_records(path):
        assert chunk.error is None, chunk.error
        obj = chunk.obj if chunk.obj is not None else orjson.loads(chunk.data)
        ctx = Context("entra", str(path), chunk.position, "", hashlib.sha256(chunk.data).hexdigest(),
                      source_name, options)
        try:
            records = SOURCE.normalize(obj, ctx)
        except Reject as r:
            rejected.append((chunk.position, str(r)))
            continue
        assert len(records) == 1
        accepted.append((chunk.position, records[0]))
    return accepted, rejected


def _by_line(path: Path) -> dict[int, IdentityEvent]:
    accepted, _ = _run(path)
    return {int(pos.rsplit(":", 1)[1]): ev for pos, ev in accepted}


def test_real_samples_are_accepted(entra):
    total, rejected = 0, []
    for name, expected in (("panther-azure-monitor.jsonl", 46), ("otrf-log-analytics.json", 4)):
        acc, rej = _run(entra / name)
        assert len(acc) + len(rej) == expected, name
        total += expected
        rejected += rej
    # ≥ 99 % accepted; anything rejected is reported with its reason
    assert (total - len(rejected)) / total >= 0.99, rejected
    assert rejected == []


def test_every_event_is_well_formed(entra):
    for name in ("panther-azure-monitor.jsonl", "otrf-log-analytics.json"):
        for _, ev in _run(entra / name)[0]:
            assert ev.time is not None  # every real sample carries its time
            assert ev.time.tzinfo is not None and ev.time.utcoffset().total_seconds() == 0
            assert ev.source.startswith("entra")
            assert ev.vendor_action
            assert ev.action in set(Action)
            assert ev.outcome in set(Outcome)
            if ev.action in (Action.AUTH_SUCCESS, Action.AUTH_FAILURE):
                assert (ev.class_uid, ev.activity_id) == (OCSFClass.AUTHENTICATION, 1)
            assert ev.raw_id is None


def test_azure_monitor_pim_role_assignment(entra):
    ev = _by_line(entra / "panther-azure-monitor.jsonl")[38]
    assert ev.vendor_action == "Add member to role in PIM completed (permanent)"
    assert ev.action == Action.ENTITLEMENT_GRANT
    assert ev.entitlement.type == "role" and ev.entitlement.name == "Application Administrator"
    assert ev.target.name == "Malenia" and ev.target.system == "entra:12345"
    assert ev.actor.name == "Radahn@Starscourge.onmicrosoft.com" and ev.actor.type == "human"
    assert ev.event_id == "PIM_123415"
    # ``2024-12-16 16:32:16.087554000``: 9-digit fraction, no zone — Graph documents UTC
    assert ev.time == datetime(2024, 12, 16, 16, 32, 16, 87554, tzinfo=UTC)
    assert ev.approval_ref is None  # justification "test assign" carries no ticket number
    # the request that precedes it changes nothing yet
    assert _by_line(entra / "panther-azure-monitor.jsonl")[39].action == Action.OTHER


def test_azure_monitor_rbac_revoke_and_elevation(entra):
    lines = _by_line(entra / "panther-azure-monitor.jsonl")
    revoke = lines[8]
    assert revoke.action == Action.ENTITLEMENT_REVOKE
    assert revoke.vendor_action == "Remove role assignment"
    assert revoke.target.name == "former@company.com" and revoke.target.id == "user-former-888"
    assert revoke.entitlement.name == "Reader"
    assert revoke.attributes["scope"] == "/subscriptions/sub-def"
    elevate = lines[7]
    assert elevate.action == Action.PRIVILEGE_ELEVATE
    assert elevate.entitlement.name == "User Access Administrator"
    assert elevate.target.name == "denethor@lotr.com"  # the user elevates themselves
    assert elevate.outcome == Outcome.SUCCESS  # top-level ``result: SUCCESS``
    # Azure Monitor ``time`` had no zone; properties.activityDateTime (7 digits, Z) is preferred
    assert elevate.time == datetime(2025, 1, 15, 8, 45, 30, 123456, tzinfo=UTC)


def test_azure_monitor_sign_ins(entra):
    lines = _by_line(entra / "panther-azure-monitor.jsonl")
    locked = lines[9]
    assert locked.action == Action.AUTH_FAILURE and locked.outcome == Outcome.FAILURE
    assert locked.attributes["error_code"] == "50053"
    assert locked.target.name == "boromir@lotr.com" and locked.src_ip == "4.4.4.4"
    ok = lines[3]
    assert ok.action == Action.AUTH_SUCCESS  # resultType "0", no status block
    # a record with lower-cased keys (operationname, tenantid, resulttype): service principal sign-in
    sp = lines[12]
    assert sp.action == Action.AUTH_FAILURE and sp.attributes["error_code"] == "7000215"
    assert sp.actor.type == "service" and sp.actor.name == "some-service-principal"
    assert sp.source == "entra:a2aa49aa-2c0c-49d2-af87-f402c421df0b"
    assert sp.event_id == "36658c78-02d9-4d8f-84ee-5ca4a3fdefef"
    # the Azure Monitor ``time`` without zone, read as UTC, when nothing better is there
    noid = lines[2]
    assert noid.event_id == hashlib.sha256(
        (entra / "panther-azure-monitor.jsonl").read_bytes().splitlines()[1]).hexdigest()
    assert noid.time == datetime(2025, 1, 15, 15, 30, 40, 789012, tzinfo=UTC)


def test_azure_monitor_credentials_and_unmapped(entra):
    lines = _by_line(entra / "panther-azure-monitor.jsonl")
    cred = lines[43]
    assert cred.action == Action.CREDENTIAL_CREATE
    assert cred.target.name == "Production API Service"
    assert cred.entitlement.type == "credential"
    assert cred.after["KeyType"] == "Password"
    unmapped = lines[25]  # conditional access policy update: kept, not dropped
    assert unmapped.action == Action.OTHER and unmapped.vendor_action == "Update conditional access policy"
    assert (unmapped.class_uid, unmapped.activity_id) == OCSF_FOR_ACTION[Action.OTHER]
    assert unmapped.resource == "MFA"
    assert isinstance(unmapped.before["ConditionalAccessPolicy"], dict)  # JSON value decoded


def test_log_analytics_shape(entra):
    lines = _by_line(entra / "otrf-log-analytics.json")
    cred = lines[1]
    assert cred.action == Action.CREDENTIAL_CREATE
    assert cred.vendor_action == "Update application – Certificates and secrets management"
    assert cred.entitlement.id == "59eaeebc-8a6b-44a6-9f24-7d55e64420c9"
    assert cred.entitlement.name == "SimuLandCreds"
    assert cred.target.name == "SimuLandApp"
    assert cred.actor.name == "pgustavo@simulandlabs.com"
    assert cred.event_id == "Directory_10065ffb-8199-48bc-8ff5-912cb5b8295a_AUMVX_13992832"
    assert cred.time == datetime(2021, 8, 2, 13, 29, 25, 983000, tzinfo=UTC)
    assert cred.attributes["shape"] == "log_analytics"
    consent = lines[4]
    assert consent.action == Action.ENTITLEMENT_GRANT and consent.entitlement.type == "permission"
    assert consent.entitlement.name == "User.Read Mail.ReadWrite"
    assert consent.target.id == "0d2f5969-011b-460d-ac74-3291d227d49f"
    assert lines[3].action == Action.OTHER  # "Update application" (API permissions requested)


def test_log_analytics_tenant_is_aad_tenant_not_workspace(entra):
    row = orjson.loads((entra / "otrf-log-analytics.json").read_bytes().splitlines()[0])
    row["TenantId"] = "workspace-1111"
    row["AADTenantId"] = "tenant-2222"
    ctx = Context("entra", "x", "x:1", "", "0" * 64)
    assert SOURCE.normalize(row, ctx)[0].source == "entra:tenant-2222"


def test_graph_fixture_through_the_reader():
    accepted, rejected = _run(FIXTURES / "entra_graph_directoryaudits.json")
    assert rejected == [] and len(accepted) == 8
    evs = {ev.vendor_action: ev for _, ev in accepted}

    add = evs["Add member to group"]
    assert add.action == Action.ENTITLEMENT_GRANT
    assert (add.class_uid, add.activity_id) == (OCSFClass.GROUP_MANAGEMENT, 3)
    assert add.entitlement.type == "group" and add.entitlement.name == "Finance-Payments-Approvers"
    assert add.entitlement.id == "ef7e527d-6c92-4234-8c6d-cf6fdfb57f95"
    assert add.target.name == "bob.kelly@contoso.example"  # target ``Type`` capitalised as Microsoft shows
    assert add.approval_ref == "RITM0010231"
    assert add.source == "entra" and add.outcome == Outcome.SUCCESS
    assert add.time == datetime(2024, 3, 4, 9, 15, 2, 721537, tzinfo=UTC)

    remove = evs["Remove member from group"]
    assert remove.action == Action.ENTITLEMENT_REVOKE
    assert remove.entitlement.name == "Finance-Payments-Approvers"  # from Group.DisplayName oldValue
    assert remove.actor.type == "service" and remove.actor.name == "Lifecycle Workflows"
    assert remove.target.name == "bob.kelly@contoso.example"  # target typed by ``@odata.type``

    disable = evs["Update user"]
    assert disable.action == Action.ACCOUNT_DISABLE
    assert disable.before == {"AccountEnabled": [True]} and disable.after == {"AccountEnabled": [False]}

    app = evs["Add app role assignment grant to user"]
    assert app.action == Action.ENTITLEMENT_GRANT and app.entitlement.type == "app"
    assert app.entitlement.name == "Payments Portal" and app.attributes["app_role"] == "Payments.Approver"
    assert app.target.name == "bob.kelly@contoso.example"

    pim = evs["Add member to role completed (PIM activation)"]
    assert pim.action == Action.PRIVILEGE_ELEVATE
    assert pim.entitlement.name == "Global Administrator"
    assert pim.approval_ref == "CHG0030117"
    assert pim.target.name == "carol.danvers@contoso.example"

    reset = evs["Reset password (by admin)"]
    assert reset.action == Action.CREDENTIAL_ROTATE and (reset.class_uid, reset.activity_id) == (3001, 4)
    assert evs["User registered security info"].action == Action.MFA_ENROLL
    assert evs["GroupLifecyclePolicies_Get"].action == Action.OTHER


def test_source_name_and_tenant_option():
    path = FIXTURES / "entra_graph_directoryaudits.json"
    accepted, _ = _run(path, source_name="entra:contoso")
    assert {ev.source for _, ev in accepted} == {"entra:contoso"}
    assert accepted[0][1].target.system == "entra:contoso"
    accepted, _ = _run(path, tenant="tenant-42")
    assert {ev.source for _, ev in accepted} == {"entra:tenant-42"}


@pytest.mark.parametrize(("activity", "props", "expected"), [
    ("Add user", [], Action.ACCOUNT_CREATE),
    ("Hard delete user", [], Action.ACCOUNT_DELETE),
    ("Disable account", [], Action.ACCOUNT_DISABLE),
    ("Update user", [{"displayName": "AccountEnabled", "oldValue": "[false]", "newValue": "[true]"}],
     Action.ACCOUNT_ENABLE),
    ("Update user", [{"displayName": "DisplayName", "oldValue": "[\"a\"]", "newValue": "[\"b\"]"}], Action.OTHER),
    ("Remove app role assignment from user", [], Action.ENTITLEMENT_REVOKE),
    ("Remove service principal credentials", [], Action.CREDENTIAL_REVOKE),
    ("Admin deleted security info", [], Action.MFA_RESET),
    ("Update application – Certificates and secrets management ",
     [{"displayName": "KeyDescription",
       "oldValue": "[\"[KeyIdentifier=11111111-2222-3333-4444-555555555555,KeyType=Password,KeyUsage=Verify,"
                   "DisplayName=old]\"]",
       "newValue": "[]"}],
     Action.CREDENTIAL_REVOKE),
])
def test_activity_mapping(activity, props, expected):
    rec = {"id": "x", "activityDateTime": "2024-01-01T00:00:00Z", "activityDisplayName": activity,
           "result": "success", "initiatedBy": {"user": {"id": "u", "userPrincipalName": "a@b.c"}},
           "targetResources": [{"id": "t", "type": "User", "userPrincipalName": "t@b.c",
                                "modifiedProperties": props}]}
    ev = SOURCE.normalize(rec, Context("entra", "x", "x:1", "", "0" * 64))[0]
    assert ev.action == expected


def test_rejects_with_reasons():
    ctx = Context("entra", "x", "x:1", "", "0" * 64)
    with pytest.raises(Reject, match="not a JSON object"):
        SOURCE.normalize(["a"], ctx)
    # no time at all (a partial export): kept, time unknown
    assert SOURCE.normalize({"activityDisplayName": "Add user"}, ctx)[0].time is None
    with pytest.raises(Reject, match="not ISO 8601"):
        SOURCE.normalize({"activityDisplayName": "Add user", "activityDateTime": "yesterday"}, ctx)
    with pytest.raises(Reject, match="not an Entra ID"):
        SOURCE.normalize({"time": "2024-01-01T00:00:00Z", "foo": 1}, ctx)
    with pytest.raises(Reject, match="not an Entra ID"):
        SOURCE.normalize({"foo": 1}, ctx)
