"""AWS CloudTrail (management and data events, as delivered to S3 ``{"Records": [...]}``, exported as JSON
Lines, or as one JSON array), normalised into ``IdentityEvent``.

What is mapped (keyed on ``eventSource`` + ``eventName``; anything else is kept as ``other`` with
``vendor_action`` = ``eventName``):

* IAM users: ``CreateUser``/``DeleteUser`` (account), ``Create/Update/DeleteLoginProfile`` and
  ``ChangePassword`` (the console password: a credential), ``Attach/Put/Detach/DeleteUserPolicy`` and
  ``AddUserToGroup``/``RemoveUserFromGroup`` (entitlements), ``Create/Update/DeleteAccessKey``, MFA devices.
  ``UpdateAccessKey`` to ``Inactive`` revokes the key; back to ``Active`` gives access again with the same
  key, so it is counted as ``credential.create`` (a granting action that needs an approval), not a rotation.
* IAM groups: ``Attach/Put/Detach/DeleteGroupPolicy`` change the access of every member: entitlement
  grant/revoke with the group in ``resource`` and no single target account.
* IAM roles: ``CreateRole``/``DeleteRole`` (a role is a non-human account), ``Attach/Put/Detach/
  DeleteRolePolicy`` (entitlements on the role). ``CreateServiceLinkedRole`` stays ``other``: AWS owns
  those roles and their policies.
* STS: ``AssumeRole``, ``AssumeRoleWithSAML``, ``AssumeRoleWithWebIdentity`` are authentications
  (``auth.success``/``auth.failure``, OCSF 3002) onto the role, which is the target; ``sourceIdentity``
  and session tags are kept and searched for an approval reference. ``GetFederationToken`` issues a
  credential to a named federated user (``credential.create``).
* Sign-in: ``ConsoleLogin`` and ``ExternalIdPDirectoryLogin`` by their ``responseElements`` verdict; one
  with no verdict is ``other`` (still OCSF Logon), like Okta's. ``PasswordUpdated`` is a password change.
* IAM Identity Center: ``CreateAccountAssignment``/``DeleteAccountAssignment`` (permission set on an
  account for a user or group), and the identity store's ``CreateUser``/``DeleteUser``/``EnableUser``/
  ``DisableUser`` and group memberships (``identitystore`` and the older ``sso-directory`` event source).
  Identity Center principals live in the organisation's identity store, not in IAM, so their system is
  ``aws-sso:<account>`` rather than ``aws:<account>``.

Time: CloudTrail documents ``eventTime`` as UTC ("The date and time the request was completed, in
coordinated universal time (UTC)", CloudTrail record contents). Pipelines that re-format it drop the
``Z`` (``2022-09-15 13:45:24``), so a zone-less value is read as UTC; ``options["strict_time"]`` rejects
it instead. A non-string or non-ISO ``eventTime`` is rejected; a record with no ``eventTime`` at all (a
trimmed export) is kept with its time unknown, as the model allows.

Actor type: ``IAMUser``, ``Root``, federated, SAML/web-identity and Identity Center users are human;
``AWSService`` is a service. A role session (``AssumedRole``, and the ``AWSAccount`` cross-account form) is
human only when it shows a person: a ``sourceIdentity``, a session name that is an email address, or an
Identity Center permission-set role (``AWSReservedSSO_*``, only ever assumed by Identity Center users);
otherwise it is a service (automation sessions are named by SDKs, Lambda, EC2…).

Fast path: most CloudTrail volume is read-only noise (Describe*/List*/Get*, data events). ``normalize_bytes``
answers for a read-only record of an unmapped event without building the record: two byte tests (read-only,
event name not mapped), then a schema-directed msgspec decode of only the fields an ``other`` event uses
(the rest of the record is syntax-checked and skipped), with each caller's ``userIdentity`` read once and
cached. It gives exactly the event ``normalize`` gives (both end in ``_other_event``) and returns ``None``
(full parse) for anything it does not handle: mapped names, tags, source identities, descriptions, session
names, lower-cased keys, non-string scalars, bad UTF-8 or JSON. Extracting the fields with bytes regexes
instead was measured slower than ``orjson.loads`` of the whole record, and it cannot tell a top-level
``errorCode`` from one nested in ``responseElements``.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from accessproof.model import (
    OCSF_FOR_ACTION,
    Action,
    Actor,
    Entitlement,
    IdentityEvent,
    OCSFClass,
    Outcome,
    TargetAccount,
)
from accessproof.sources.base import Context, Reject, first, parse_time
from accessproof.sources.cloudtrail_bulk import BULK_SQL, make_bulk_accepts
from accessproof.sources.refs import compile_patterns, find_approval_ref

IAM = "iam.amazonaws.com"
STS = "sts.amazonaws.com"
SIGNIN = "signin.amazonaws.com"
SSO = "sso.amazonaws.com"
SSO_DIRECTORY = "sso-directory.amazonaws.com"
IDENTITY_STORE = "identitystore.amazonaws.com"

#: How a mapped event is read. ``None`` as the action: the handler decides from the record.
_MAP_IAM: dict[str, tuple[str | None, str]] = {
    "CreateUser": (Action.ACCOUNT_CREATE, "user"),
    "DeleteUser": (Action.ACCOUNT_DELETE, "user"),
    "CreateLoginProfile": (Action.CREDENTIAL_CREATE, "password"),
    "UpdateLoginProfile": (Action.CREDENTIAL_ROTATE, "password"),
    "DeleteLoginProfile": (Action.CREDENTIAL_REVOKE, "password"),
    "ChangePassword": (Action.CREDENTIAL_ROTATE, "password"),
    "AttachUserPolicy": (Action.ENTITLEMENT_GRANT, "user_policy"),
    "PutUserPolicy": (Action.ENTITLEMENT_GRANT, "user_policy"),
    "DetachUserPolicy": (Action.ENTITLEMENT_REVOKE, "user_policy"),
    "DeleteUserPolicy": (Action.ENTITLEMENT_REVOKE, "user_policy"),
    "AddUserToGroup": (Action.ENTITLEMENT_GRANT, "user_group"),
    "RemoveUserFromGroup": (Action.ENTITLEMENT_REVOKE, "user_group"),
    "AttachGroupPolicy": (Action.ENTITLEMENT_GRANT, "group_policy"),
    "PutGroupPolicy": (Action.ENTITLEMENT_GRANT, "group_policy"),
    "DetachGroupPolicy": (Action.ENTITLEMENT_REVOKE, "group_policy"),
    "DeleteGroupPolicy": (Action.ENTITLEMENT_REVOKE, "group_policy"),
    "CreateAccessKey": (Action.CREDENTIAL_CREATE, "access_key"),
    "UpdateAccessKey": (None, "access_key"),
    "DeleteAccessKey": (Action.CREDENTIAL_REVOKE, "access_key"),
    "CreateRole": (Action.ACCOUNT_CREATE, "role"),
    "DeleteRole": (Action.ACCOUNT_DELETE, "role"),
    "AttachRolePolicy": (Action.ENTITLEMENT_GRANT, "role_policy"),
    "PutRolePolicy": (Action.ENTITLEMENT_GRANT, "role_policy"),
    "DetachRolePolicy": (Action.ENTITLEMENT_REVOKE, "role_policy"),
    "DeleteRolePolicy": (Action.ENTITLEMENT_REVOKE, "role_policy"),
    "CreateVirtualMFADevice": (Action.MFA_ENROLL, "mfa"),
    "EnableMFADevice": (Action.MFA_ENROLL, "mfa"),
    "DeactivateMFADevice": (Action.MFA_RESET, "mfa"),
    "DeleteVirtualMFADevice": (Action.MFA_RESET, "mfa"),
}
_MAP_STS: dict[str, tuple[str | None, str]] = {
    "AssumeRole": (None, "assume"),
    "AssumeRoleWithSAML": (None, "assume"),
    "AssumeRoleWithWebIdentity": (None, "assume"),
    "GetFederationToken": (Action.CREDENTIAL_CREATE, "federation"),
}
_MAP_SIGNIN: dict[str, tuple[str | None, str]] = {
    "ConsoleLogin": (None, "sign_in"),
    "ExternalIdPDirectoryLogin": (None, "sign_in"),
    "PasswordUpdated": (Action.CREDENTIAL_ROTATE, "password"),
}
_MAP_SSO: dict[str, tuple[str | None, str]] = {
    "CreateAccountAssignment": (Action.ENTITLEMENT_GRANT, "assignment"),
    "DeleteAccountAssignment": (Action.ENTITLEMENT_REVOKE, "assignment"),
}
_MAP_DIRECTORY: dict[str, tuple[str | None, str]] = {
    "CreateUser": (Action.ACCOUNT_CREATE, "sso_user"),
    "DeleteUser": (Action.ACCOUNT_DELETE, "sso_user"),
    "EnableUser": (Action.ACCOUNT_ENABLE, "sso_user"),
    "DisableUser": (Action.ACCOUNT_DISABLE, "sso_user"),
    "CreateGroupMembership": (Action.ENTITLEMENT_GRANT, "sso_membership"),
    "DeleteGroupMembership": (Action.ENTITLEMENT_REVOKE, "sso_membership"),
    "AddMemberToGroup": (Action.ENTITLEMENT_GRANT, "sso_membership"),
    "RemoveMemberFromGroup": (Action.ENTITLEMENT_REVOKE, "sso_membership"),
}
#: eventSource -> eventName -> (action, handler)
EVENTS: dict[str, dict[str, tuple[str | None, str]]] = {
    IAM: _MAP_IAM,
    STS: _MAP_STS,
    SIGNIN: _MAP_SIGNIN,
    SSO: _MAP_SSO,
    IDENTITY_STORE: _MAP_DIRECTORY,
    SSO_DIRECTORY: _MAP_DIRECTORY,
}
#: A record without ``eventSource`` (a trimmed test event) is read by its name among IAM, STS and sign-in.
_BY_NAME: dict[str, tuple[str | None, str]] = {**_MAP_SIGNIN, **_MAP_STS, **_MAP_IAM}
#: Every mapped name, whatever the event source: the fast path never answers for these.
MAPPED_NAMES = frozenset(name for table in EVENTS.values() for name in table)

#: OCSF overrides where CloudTrail says more than the action's default (OCSF 1.8.0 activity ids).
OCSF_OVERRIDES: dict[str, tuple[int, int]] = {
    "AttachUserPolicy": (OCSFClass.ACCOUNT_CHANGE, 7),  # Attach Policy
    "PutUserPolicy": (OCSFClass.ACCOUNT_CHANGE, 7),
    "DetachUserPolicy": (OCSFClass.ACCOUNT_CHANGE, 8),  # Detach Policy
    "DeleteUserPolicy": (OCSFClass.ACCOUNT_CHANGE, 8),
    "AttachRolePolicy": (OCSFClass.ACCOUNT_CHANGE, 7),
    "PutRolePolicy": (OCSFClass.ACCOUNT_CHANGE, 7),
    "DetachRolePolicy": (OCSFClass.ACCOUNT_CHANGE, 8),
    "DeleteRolePolicy": (OCSFClass.ACCOUNT_CHANGE, 8),
    "AddUserToGroup": (OCSFClass.GROUP_MANAGEMENT, 3),  # Add User
    "RemoveUserFromGroup": (OCSFClass.GROUP_MANAGEMENT, 4),  # Remove User
    "CreateGroupMembership": (OCSFClass.GROUP_MANAGEMENT, 3),
    "DeleteGroupMembership": (OCSFClass.GROUP_MANAGEMENT, 4),
    "AddMemberToGroup": (OCSFClass.GROUP_MANAGEMENT, 3),
    "RemoveMemberFromGroup": (OCSFClass.GROUP_MANAGEMENT, 4),
    "AttachGroupPolicy": (OCSFClass.GROUP_MANAGEMENT, 1),  # Assign Privileges
    "PutGroupPolicy": (OCSFClass.GROUP_MANAGEMENT, 1),
    "DetachGroupPolicy": (OCSFClass.GROUP_MANAGEMENT, 2),  # Revoke Privileges
    "DeleteGroupPolicy": (OCSFClass.GROUP_MANAGEMENT, 2),
    "ChangePassword": (OCSFClass.ACCOUNT_CHANGE, 3),  # Password Change
    "PasswordUpdated": (OCSFClass.ACCOUNT_CHANGE, 3),
    "UpdateLoginProfile": (OCSFClass.ACCOUNT_CHANGE, 4),  # Password Reset (an admin sets it)
}
_AUTH_OCSF = (OCSFClass.AUTHENTICATION, 1)  # Logon

#: Placeholder CloudTrail writes instead of sensitive values (Identity Center names, passwords).
_HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
#: Largest requestParameters kept whole in ``attributes`` (bytes of JSON); bigger ones keep short values.
_PARAMS_KEEP_BYTES = 2048
_EMAIL_RE = re.compile(r"^[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+$")
_ENV_KEYS = frozenset({"environment", "env"})
_BU_KEYS = frozenset({"businessunit", "bu"})


# ---------------------------------------------------------------- small readers

def _text(v: Any) -> str | None:
    """A usable string, or None (containers, booleans, blanks and CloudTrail's redaction marker)."""
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s if s and s != _HIDDEN else None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _bool(v: Any) -> Any:
    """``readOnly`` as a boolean (some pipelines write ``"True"``); anything else is kept as it is."""
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return v


def _tail(arn: str | None, marker: str) -> str | None:
    """The name after ``marker`` in an ARN (``:user/path/alice`` -> ``alice``)."""
    if not arn or marker not in arn:
        return None
    return arn.rsplit("/", 1)[-1] or None


def _arn_account(arn: str | None) -> str | None:
    parts = arn.split(":", 5) if arn else []
    return (parts[4] or None) if len(parts) > 4 else None


@lru_cache(maxsize=4096)
def _parse_time(value: str, strict: bool) -> datetime:
    # CloudTrail documents eventTime as UTC: a zone-less value is a pipeline's re-formatting of it.
    return parse_time(value, naive_is_utc=not strict, what="eventTime")


def _event_time(value: Any, strict: bool) -> datetime | None:
    """``eventTime`` as an aware UTC datetime; None when the record has none at all (a partial export,
    kept with its time unknown); a present but unreadable or non-string value is rejected."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Reject(f"eventTime has the wrong type ({type(value).__name__}); CloudTrail writes an ISO 8601 "
                     "string")
    return _parse_time(value, strict)


@lru_cache(maxsize=16)
def _pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return compile_patterns(patterns)


# ---------------------------------------------------------------- identity

def _session_name(ui: dict) -> str | None:
    """The role session name: the last part of an ``assumed-role`` ARN, else after ``:`` in principalId."""
    arn = _text(ui.get("arn"))
    if arn and ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/", 1)
        if len(parts) == 2 and parts[1]:
            return parts[1]
    pid = _text(ui.get("principalId"))
    if pid and ":" in pid:
        return pid.split(":", 1)[1] or None
    return None


def _role_name(ui: dict) -> str | None:
    issuer = _dict(_dict(ui.get("sessionContext")).get("sessionIssuer"))
    name = _text(issuer.get("userName"))
    if name:
        return name
    arn = _text(ui.get("arn"))
    if arn and ":assumed-role/" in arn:
        return arn.split(":assumed-role/", 1)[1].split("/", 1)[0] or None
    return None


def _session_source_identity(ui: dict) -> str | None:
    return _text(_dict(ui.get("sessionContext")).get("sourceIdentity"))


def _actor(ui: dict | None, event_type: str | None, event_source: str | None) -> Actor:
    """Who made the request, from ``userIdentity`` (see the module docstring for the human/service rule)."""
    if ui is None:
        # AWS itself (scheduled or service-originated events) with no identity element.
        if event_type == "AwsServiceEvent" and event_source:
            return Actor(id=event_source, name=event_source, type="service")
        return Actor()
    kind = _text(ui.get("type"))
    arn = _text(ui.get("arn"))
    pid = _text(ui.get("principalId"))
    user = _text(ui.get("userName"))
    invoked = _text(ui.get("invokedBy"))
    if kind == "IAMUser":
        return Actor(id=arn or pid, name=user or _tail(arn, ":user/"), type="human")
    if kind == "Root":
        return Actor(id=arn or pid, name=user or "root", type="human")
    if kind == "AWSService":
        return Actor(id=invoked or pid, name=invoked, type="service")
    if kind in ("AssumedRole", "AWSAccount"):
        session = _session_name(ui)
        role = _role_name(ui)
        human = (_session_source_identity(ui) is not None or bool(session and _EMAIL_RE.match(session))
                 or bool(role and role.startswith("AWSReservedSSO_")))
        name = session or role or user or (_text(ui.get("accountId")) if kind == "AWSAccount" else None)
        return Actor(id=arn or pid, name=name, type="human" if human else "service")
    if kind == "FederatedUser":
        name = _tail(arn, ":federated-user/") or (pid.split(":", 1)[1] if pid and ":" in pid else None)
        return Actor(id=arn or pid, name=name, type="human")
    if kind in ("IdentityCenterUser", "Unknown"):
        behalf = _dict(ui.get("onBehalfOf"))
        return Actor(id=_text(behalf.get("userId")) or pid or arn, name=user, type="human")
    if kind in ("SAMLUser", "WebIdentityUser"):
        return Actor(id=pid or arn, name=user, type="human")
    if invoked and not (arn or pid or user):
        return Actor(id=invoked, name=invoked, type="service")
    return Actor(id=arn or pid, name=user)


def _caller_account(ui: dict | None, system: str) -> tuple[TargetAccount, str | None]:
    """The caller as the account acted upon: an IAM call without ``userName`` acts on the caller itself."""
    if ui is None:
        return TargetAccount(), None
    kind = _text(ui.get("type"))
    if kind == "IAMUser":
        name = _text(ui.get("userName")) or _tail(_text(ui.get("arn")), ":user/")
        return (TargetAccount(system=system, id=name, name=name), "user") if name else (TargetAccount(), None)
    if kind == "Root":
        return TargetAccount(system=system, id="root", name="root"), "root"
    return TargetAccount(), None


def _tags(rp: dict) -> dict[str, str]:
    """Request tags (``[{"key": k, "value": v}]`` or a mapping) and SAML/web-identity principal tags."""
    out: dict[str, str] = {}
    for field in ("tags", "principalTags"):
        tags = rp.get(field)
        if isinstance(tags, list):
            for t in tags:
                if isinstance(t, dict):
                    k = _text(first(t, "key", "Key"))
                    if k:
                        out[k] = "" if (v := _text(first(t, "value", "Value"))) is None else v
        elif isinstance(tags, dict):
            for k, v in tags.items():
                if isinstance(k, str) and k.strip():
                    out[k.strip()] = _text(v) or ""
    return out


def _tag_lookup(tags: dict[str, str], keys: frozenset[str]) -> str | None:
    for k, v in tags.items():
        if k.lower().replace("_", "").replace("-", "").replace(" ", "") in keys and v:
            return v
    return None


def _small_params(rp: dict) -> dict:
    """requestParameters as kept in attributes: whole when small, else only their short scalar values."""
    if len(orjson.dumps(rp, default=str)) <= _PARAMS_KEEP_BYTES:
        return rp
    return {k: v for k, v in rp.items() if isinstance(v, str | int | float | bool) and len(str(v)) <= 256}


def _policy(rp: dict) -> Entitlement:
    arn = _text(rp.get("policyArn"))
    if arn:
        return Entitlement(type="policy", id=arn, name=arn.rsplit("/", 1)[-1])
    name = _text(rp.get("policyName"))  # an inline policy: named only within its user, group or role
    return Entitlement(type="policy", id=name, name=name)


# ---------------------------------------------------------------- the source

#: Top-level fields read. Pipelines that lower-case keys write ``eventname``…: a record holding any such
#: spelling is read through a camelCase view (camelCase first, as ``base.first``).
_FIELDS = ("eventName", "eventTime", "eventID", "eventSource", "eventType", "awsRegion", "readOnly",
           "errorCode", "errorMessage", "recipientAccountId", "sourceIPAddress", "userAgent", "userIdentity",
           "requestParameters", "responseElements", "additionalEventData")
_LOWER_FIELDS = frozenset(k.lower() for k in _FIELDS)


def _view(obj: dict) -> dict:
    """The record as camelCase fields: itself, unless a pipeline lower-cased some of its keys."""
    if _LOWER_FIELDS.isdisjoint(obj):
        return obj
    return {k: first(obj, k, k.lower()) for k in _FIELDS}


def _identity(ui: dict | None, event_type: str | None, event_source: str | None
              ) -> tuple[Actor, str | None, str | None]:
    """The actor, ``userIdentity.accountId`` and ``userIdentity.type`` of a record."""
    if ui is None:
        return _actor(None, event_type, event_source), None, None
    return _actor(ui, event_type, event_source), _text(ui.get("accountId")), _text(ui.get("type"))


def _other_event(ctx: Context, name: str, time: datetime | None, event_id: Any, event_source: str | None,
                 region: Any, read_only: Any, error_code: str | None, error_message: str | None,
                 account_field: str | None, identity: tuple[Actor, str | None, str | None], src_ip: Any,
                 user_agent: Any) -> IdentityEvent:
    """An unmapped event with no tags, source identity or approval reference: the fast path's output,
    and the full path's for the same record (one function, so both give the same event)."""
    actor, ui_account, identity_type = identity
    account = account_field or ui_account
    return IdentityEvent(
        event_id=_text(event_id) or ctx.sha256,
        source=ctx.source_name or f"aws:{account or 'unknown'}",
        source_type=CloudTrailSource.source_type,
        time=time,
        action=Action.OTHER,
        vendor_action=name,
        actor=actor,
        outcome=Outcome.FAILURE if (error_code or error_message) else Outcome.SUCCESS,
        src_ip=_text(src_ip),
        user_agent=_text(user_agent),
        attributes=_base_attributes(event_source, region, read_only, error_code, error_message,
                                    account_field=account_field, identity_type=identity_type) or None,
    )


class CloudTrailSource:
    """Normalises one CloudTrail record into one ``IdentityEvent``."""

    source_type = "cloudtrail"

    def normalize(self, obj: Any, ctx: Context) -> list[IdentityEvent]:
        if not isinstance(obj, dict):
            raise Reject(f"CloudTrail record is not a JSON object (got {type(obj).__name__})")
        top = _view(obj)
        name = top.get("eventName")
        if name is None or name == "":
            raise Reject("missing eventName")
        if not isinstance(name, str):
            raise Reject(f"eventName has the wrong type ({type(name).__name__})")
        name = name.strip()
        if not name:
            raise Reject("missing eventName")
        time = _event_time(top.get("eventTime"), bool(ctx.options.get("strict_time")))

        ui = top.get("userIdentity")
        ui = ui if isinstance(ui, dict) else None
        account_field = _text(top.get("recipientAccountId"))
        event_source = _text(top.get("eventSource"))
        error_code = _text(top.get("errorCode"))
        error_message = _text(top.get("errorMessage"))
        rp = _dict(top.get("requestParameters"))
        resp = _dict(top.get("responseElements"))
        spec = EVENTS.get(event_source, {}).get(name) if event_source else _BY_NAME.get(name)

        tags = _tags(rp) if rp else {}
        source_identity = (_text(rp.get("sourceIdentity")) or _text(resp.get("sourceIdentity"))
                           or (_session_source_identity(ui) if ui else None))
        session_name = _text(rp.get("roleSessionName"))
        description = _text(rp.get("description"))
        transitive = rp.get("transitiveTagKeys")
        if spec is None and not (tags or source_identity or session_name or description or transitive):
            return [_other_event(ctx, name, time, top.get("eventID"), event_source, top.get("awsRegion"),
                                 top.get("readOnly"), error_code, error_message, account_field,
                                 _identity(ui, _text(top.get("eventType")), event_source),
                                 top.get("sourceIPAddress"), top.get("userAgent"))]

        account = account_field or (_text(ui.get("accountId")) if ui else None)
        source = ctx.source_name or f"aws:{account or 'unknown'}"
        system = f"aws:{account or 'unknown'}"
        sso_system = f"aws-sso:{account or 'unknown'}"
        action: str = Action.OTHER
        outcome = Outcome.FAILURE if (error_code or error_message) else Outcome.SUCCESS
        ocsf: tuple[int, int] | None = None
        target = TargetAccount()
        entitlement = Entitlement()
        resource: str | None = None
        extra: dict[str, Any] = {}
        kind: str | None = None

        if spec is not None:
            mapped, kind = spec
            action = mapped or Action.OTHER
            ocsf = OCSF_OVERRIDES.get(name)
            target_type: str | None = None
            if kind in ("user", "user_policy", "user_group", "password", "access_key", "mfa"):
                user = _text(rp.get("userName")) or _text(_dict(resp.get("user")).get("userName")) \
                    or _text(_dict(resp.get("accessKey")).get("userName"))
                if user:
                    target, target_type = TargetAccount(system=system, id=user, name=user), "user"
                elif kind in ("password", "access_key") or name == "EnableMFADevice":
                    # IAM acts on the caller when no user is named (own key, own password).
                    target, target_type = _caller_account(ui, system)
                if kind == "user_policy":
                    entitlement = _policy(rp)
                elif kind == "user_group":
                    group = _text(rp.get("groupName"))
                    entitlement = Entitlement(type="group", id=group, name=group)
                elif kind == "password":
                    entitlement = Entitlement(type="credential", name="console password")
                    if name == "PasswordUpdated":
                        verdict = _text(resp.get("PasswordUpdated"))
                        if verdict in ("Success", "Failure"):
                            outcome = Outcome.SUCCESS if verdict == "Success" else Outcome.FAILURE
                elif kind == "access_key":
                    key = _text(_dict(resp.get("accessKey")).get("accessKeyId")) or _text(rp.get("accessKeyId"))
                    entitlement = Entitlement(type="credential", id=key, name="access key")
                    if name == "UpdateAccessKey":
                        status = _text(rp.get("status"))
                        extra["key_status"] = status
                        action = {"Inactive": Action.CREDENTIAL_REVOKE,
                                  "Active": Action.CREDENTIAL_CREATE}.get(status or "", Action.OTHER)
                elif kind == "mfa":
                    serial = _text(rp.get("serialNumber")) \
                        or _text(_dict(resp.get("virtualMFADevice")).get("serialNumber"))
                    entitlement = Entitlement(type="credential", id=serial, name="mfa device")
            elif kind == "group_policy":
                group = _text(rp.get("groupName"))
                entitlement = _policy(rp)
                resource = f"group/{group}" if group else None
            elif kind in ("role", "role_policy"):
                role = _text(rp.get("roleName")) or _text(_dict(resp.get("role")).get("roleName"))
                if role:
                    target, target_type = TargetAccount(system=system, id=role, name=role), "role"
                if kind == "role_policy":
                    entitlement = _policy(rp)
            elif kind == "assume":
                role_arn = _text(rp.get("roleArn"))
                role = _tail(role_arn, ":role/")
                if role:
                    role_system = f"aws:{_arn_account(role_arn) or account or 'unknown'}"
                    target, target_type = TargetAccount(system=role_system, id=role, name=role), "role"
                action = Action.AUTH_FAILURE if outcome == Outcome.FAILURE else Action.AUTH_SUCCESS
                ocsf = _AUTH_OCSF
            elif kind == "sign_in":
                verdict = _text(resp.get(name))
                if verdict == "Success":
                    outcome, action = Outcome.SUCCESS, Action.AUTH_SUCCESS
                elif verdict == "Failure" or error_code or error_message:
                    outcome, action = Outcome.FAILURE, Action.AUTH_FAILURE
                else:  # no verdict: not counted either way, still an OCSF Logon
                    outcome, action = Outcome.UNKNOWN, Action.OTHER
                ocsf = _AUTH_OCSF
                target, target_type = _caller_account(ui, system)
                if target_type is None and ui is not None and _text(ui.get("type")) == "AssumedRole":
                    role = _role_name(ui)
                    if role:
                        target, target_type = TargetAccount(system=system, id=role, name=role), "role"
                extra["mfa_used"] = _text(_dict(top.get("additionalEventData")).get("MFAUsed"))
            elif kind == "federation":
                fed = _text(rp.get("name"))
                if fed:
                    target, target_type = TargetAccount(system=system, id=fed, name=fed), "federated_user"
                key = _text(_dict(resp.get("credentials")).get("accessKeyId"))
                entitlement = Entitlement(type="credential", id=key, name="federation token")
            elif kind == "assignment":
                principal = _text(rp.get("principalId"))
                if principal:
                    target = TargetAccount(system=sso_system, id=principal)
                    target_type = (_text(rp.get("principalType")) or "principal").lower()
                # A permission set is provisioned as an IAM role (AWSReservedSSO_<name>) in the account.
                entitlement = Entitlement(type="role", id=_text(rp.get("permissionSetArn")))
                aws_account = _text(rp.get("targetId"))
                resource = f"aws:{aws_account}" if aws_account else None
                extra["target_account_id"] = aws_account
                extra["instance_arn"] = _text(rp.get("instanceArn"))
            elif kind == "sso_user":
                user_obj = _dict(resp.get("user"))
                uid = _text(resp.get("userId")) or _text(user_obj.get("userId")) or _text(rp.get("userId"))
                uname = _text(rp.get("userName")) or _text(user_obj.get("userName"))
                if uid or uname:
                    target, target_type = TargetAccount(system=sso_system, id=uid or uname, name=uname), "user"
                extra["identity_store_id"] = _text(rp.get("identityStoreId"))
            elif kind == "sso_membership":
                member = rp.get("memberId") if isinstance(rp.get("memberId"), dict) else rp.get("member")
                member = _dict(member)
                uid = _text(member.get("userId")) or _text(member.get("memberId")) or _text(rp.get("memberId"))
                if uid:
                    target, target_type = TargetAccount(system=sso_system, id=uid), "user"
                entitlement = Entitlement(type="group", id=_text(rp.get("groupId")))
                extra["membership_id"] = _text(rp.get("membershipId")) or _text(resp.get("membershipId"))
                extra["identity_store_id"] = _text(rp.get("identityStoreId"))
            if target_type:
                extra["target_type"] = target_type
            if rp:
                extra["request_parameters"] = _small_params(rp)

        patterns = ctx.options.get("approval_patterns")
        approval_ref = find_approval_ref(
            *tags.values(), source_identity, session_name, description,
            pattern=_pattern(tuple(patterns)) if patterns else None)

        class_uid, activity_id = ocsf or OCSF_FOR_ACTION[action]
        attributes = _base_attributes(event_source, top.get("awsRegion"), top.get("readOnly"), error_code,
                                      error_message, account_field=account_field,
                                      identity_type=_text(ui.get("type")) if ui else None)
        if source_identity:
            attributes["source_identity"] = source_identity
        if tags:
            attributes["session_tags" if kind in ("assume", "federation") else "tags"] = tags
        if isinstance(transitive, list) and transitive:
            attributes["transitive_tag_keys"] = transitive
        if session_name and spec is None:
            attributes["role_session_name"] = session_name
        attributes.update((k, v) for k, v in extra.items() if v is not None)

        return [IdentityEvent(
            event_id=_text(top.get("eventID")) or ctx.sha256,
            source=source,
            source_type=self.source_type,
            time=time,
            action=action,
            vendor_action=name,
            actor=_actor(ui, _text(top.get("eventType")), event_source),
            target=target,
            entitlement=entitlement,
            resource=resource,
            approval_ref=approval_ref,
            environment=_tag_lookup(tags, _ENV_KEYS) if tags else None,
            business_unit=_tag_lookup(tags, _BU_KEYS) if tags else None,
            outcome=outcome,
            class_uid=class_uid,
            activity_id=activity_id,
            src_ip=_text(top.get("sourceIPAddress")),
            user_agent=_text(top.get("userAgent")),
            attributes=attributes or None,
        )]

    def normalize_bytes(self, data: bytes, ctx: Context) -> list[IdentityEvent] | None:
        """The same ``other`` event as ``normalize`` for read-only noise, without building the record;
        ``None`` (full parse) for anything else or whenever in doubt."""
        # 1. Cheap byte tests: read-only (CloudTrail writes "readOnly":true; pretty-printers add a space)
        #    and not an event we map. Everything else goes to the full path untouched.
        i = data.find(b'"readOnly":')
        if i < 0 or not data.startswith((b"true", b" true"), i + 11):
            return None
        m = _NAME_RE.search(data)
        if m is not None and m.group(1).strip() in _MAPPED_NAMES_BYTES:
            return None
        # 2. Only the fields an unmapped event uses are decoded (``_FastRecord``); the rest is skipped,
        #    not built. msgspec still checks the JSON syntax of the whole record and the types of the
        #    fields it reads: a field the fast path does not handle (tags, a source identity, lower-cased
        #    keys, a non-string scalar) fails validation and the record goes to the full path. UTF-8 is
        #    checked here because msgspec does not look inside the strings it skips.
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return None
        try:
            r = _FAST_DECODER.decode(data)
        except msgspec.DecodeError:
            return None
        name = r.eventName
        if r.readOnly is not True or name is None or not (name := name.strip()) or name in MAPPED_NAMES:
            return None
        event_source = _text(r.eventSource)
        # 3. The caller: read-only noise comes from a few principals, so their identity is read once.
        # the event type and source only matter when there is no userIdentity: keep them out of the
        # cache key otherwise, so that one principal is one cache entry whatever service it calls
        raw_ui = bytes(r.userIdentity)
        identity = (_fast_identity(raw_ui, None, None) if raw_ui
                    else _fast_identity(raw_ui, _text(r.eventType), event_source))
        if identity is None:
            return None
        try:
            time = _event_time(r.eventTime, bool(ctx.options.get("strict_time")))
        except Reject:
            return None  # the full path gives the reason
        return [_other_event(ctx, name, time, r.eventID, event_source, r.awsRegion, True, _text(r.errorCode),
                             _text(r.errorMessage), _text(r.recipientAccountId), identity, r.sourceIPAddress,
                             r.userAgent)]


def _base_attributes(event_source: str | None, region: Any, read_only: Any, error_code: str | None,
                     error_message: str | None, *, account_field: str | None,
                     identity_type: str | None) -> dict[str, Any]:
    """Fields every event keeps: the service, region, read-only flag, error, receiving account."""
    out: dict[str, Any] = {}
    if event_source:
        out["event_source"] = event_source
    if (region := _text(region)) is not None:
        out["aws_region"] = region
    if read_only is not None and read_only != "":
        out["read_only"] = _bool(read_only)
    if error_code:
        out["error_code"] = error_code
    if error_message:
        out["error_message"] = error_message
    if account_field:
        out["recipient_account_id"] = account_field
    if identity_type:
        out["identity_type"] = identity_type
    return out


# ---------------------------------------------------------------- fast path

_NAME_RE = re.compile(rb'"eventName"\s*:\s*"([^"\\]*)"')


class _FastParams(msgspec.Struct):
    """requestParameters fields that feed tags, environment or an approval reference: typed ``None``,
    so that a record carrying any of them fails validation and takes the full path."""

    tags: None = None
    principalTags: None = None  # CloudTrail's spelling
    sourceIdentity: None = None
    roleSessionName: None = None
    description: None = None
    transitiveTagKeys: None = None


class _FastResponse(msgspec.Struct):
    sourceIdentity: None = None


class _FastRecord(msgspec.Struct):
    """The top-level fields an unmapped event uses; every other field is skipped, not built.

    Scalars are typed ``str``: CloudTrail writes strings, and anything else takes the full path, which
    reads numbers exactly as orjson does.
    """

    eventName: str | None = None
    eventTime: str | None = None
    eventID: str | None = None
    eventSource: str | None = None
    eventType: str | None = None
    awsRegion: str | None = None
    readOnly: bool | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    recipientAccountId: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    userIdentity: msgspec.Raw = msgspec.Raw()  # its bytes, decoded by ``_fast_identity`` (cached)
    requestParameters: _FastParams | None = None
    responseElements: _FastResponse | None = None
    # lower-cased spellings (a pipeline quirk) are read by the full path only
    eventname: None = None
    eventtime: None = None
    eventid: None = None
    eventsource: None = None
    eventtype: None = None
    awsregion: None = None
    readonly: None = None
    errorcode: None = None
    errormessage: None = None
    recipientaccountid: None = None
    sourceipaddress: None = None
    useragent: None = None
    useridentity: None = None
    requestparameters: None = None
    responseelements: None = None
    additionaleventdata: None = None


assert {f.lower() for f in _FIELDS} <= set(_FastRecord.__struct_fields__), "a lower-cased field is not caught"
_FAST_DECODER = msgspec.json.Decoder(_FastRecord)


@lru_cache(maxsize=16384)
def _fast_identity(raw: bytes, event_type: str | None, event_source: str | None
                   ) -> tuple[Actor, str | None, str | None] | None:
    """``_identity`` of a raw ``userIdentity`` (b'' when absent); None when it carries a source identity
    (an approval reference the full path reads) or does not parse."""
    try:
        ui = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    ui = ui if isinstance(ui, dict) else None
    if ui is not None and _session_source_identity(ui) is not None:
        return None
    return _identity(ui, event_type, event_source)
_MAPPED_NAMES_BYTES = frozenset(n.encode() for n in MAPPED_NAMES)


SOURCE = CloudTrailSource()
# The bulk path: read-only noise recognised from its bytes and normalised in SQL by the store.
SOURCE.bulk_accepts = make_bulk_accepts(MAPPED_NAMES)  # type: ignore[attr-defined]
SOURCE.BULK_SQL = BULK_SQL  # type: ignore[attr-defined]
