"""Okta System Log (``LogEvent`` as ``/api/v1/logs`` returns it: a JSON array, or JSON Lines).

Okta events do not name the org they come from, so the source is ``ctx.source_name`` or plain ``okta``;
a host in ``debugData`` (``origin``, ``redirectUri``) is not trusted to name it.

Some pipelines lower-case the top-level keys (``eventtype``, ``debugcontext``…) and write ``published``
without a zone (``2020-11-25 21:27:03.496000000``): both spellings are accepted, and a zone-less
``published`` is read as UTC because Okta documents ``published`` as UTC.
"""

from __future__ import annotations

from typing import Any

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
from accessproof.sources.base import Context, Reject, parse_time
from accessproof.sources.refs import find_approval_ref

#: eventType -> action, for types whose meaning does not depend on the outcome.
EVENT_ACTIONS: dict[str, str] = {
    "user.lifecycle.create": Action.ACCOUNT_CREATE,
    "user.lifecycle.activate": Action.ACCOUNT_ENABLE,
    "user.lifecycle.reactivate": Action.ACCOUNT_ENABLE,
    "user.lifecycle.unsuspend": Action.ACCOUNT_ENABLE,
    "user.lifecycle.deactivate": Action.ACCOUNT_DISABLE,
    "user.lifecycle.suspend": Action.ACCOUNT_SUSPEND,
    "user.lifecycle.delete": Action.ACCOUNT_DELETE,
    # Okta deletes asynchronously: ``delete.initiated`` then ``delete.completed``. Only the completion
    # removes the account; the initiation stays ``other`` so one deletion is not counted twice.
    "user.lifecycle.delete.completed": Action.ACCOUNT_DELETE,
    "group.user_membership.add": Action.ENTITLEMENT_GRANT,
    "group.user_membership.remove": Action.ENTITLEMENT_REVOKE,
    "application.user_membership.add": Action.ENTITLEMENT_GRANT,
    "application.user_membership.remove": Action.ENTITLEMENT_REVOKE,
    "user.mfa.factor.activate": Action.MFA_ENROLL,
    "user.mfa.factor.deactivate": Action.MFA_RESET,
    "user.mfa.factor.reset_all": Action.MFA_RESET,
    "user.account.lock": Action.ACCOUNT_SUSPEND,
    "user.account.unlock": Action.ACCOUNT_ENABLE,
    "user.account.unlock_by_admin": Action.ACCOUNT_ENABLE,
    "user.account.update_password": Action.CREDENTIAL_ROTATE,
    "user.account.reset_password": Action.CREDENTIAL_ROTATE,
    "user.account.privilege.grant": Action.PRIVILEGE_ELEVATE,
    "user.account.privilege.revoke": Action.ENTITLEMENT_REVOKE,
    "group.privilege.grant": Action.PRIVILEGE_ELEVATE,
    "group.privilege.revoke": Action.ENTITLEMENT_REVOKE,
    # Custom admin roles: a binding ties a role + resource set to users or groups (the assignment);
    # permissions.add widens a role for everyone holding it. Creating, renaming or deleting a role
    # definition changes nobody's access by itself and stays ``other``.
    "iam.resourceset.bindings.add": Action.PRIVILEGE_ELEVATE,
    "iam.resourceset.bindings.delete": Action.ENTITLEMENT_REVOKE,
    "iam.role.permissions.add": Action.PRIVILEGE_ELEVATE,
    "iam.role.permissions.delete": Action.ENTITLEMENT_REVOKE,
    # Impersonation grant: Okta Support may act as an admin of the org until it is revoked.
    "user.session.impersonation.grant": Action.PRIVILEGE_ELEVATE,
    "user.session.impersonation.revoke": Action.ENTITLEMENT_REVOKE,
    "system.api_token.create": Action.CREDENTIAL_CREATE,
    "system.api_token.revoke": Action.CREDENTIAL_REVOKE,
}

#: OCSF overrides where Okta says more than the action's default.
OCSF_OVERRIDES: dict[str, tuple[int, int]] = {
    "group.user_membership.add": (OCSFClass.GROUP_MANAGEMENT, 3),  # Add User
    "group.user_membership.remove": (OCSFClass.GROUP_MANAGEMENT, 4),  # Remove User
    "group.privilege.grant": (OCSFClass.GROUP_MANAGEMENT, 1),  # Assign Privileges
    "group.privilege.revoke": (OCSFClass.GROUP_MANAGEMENT, 2),  # Revoke Privileges
    "user.account.update_password": (OCSFClass.ACCOUNT_CHANGE, 3),  # Password Change
    "user.account.reset_password": (OCSFClass.ACCOUNT_CHANGE, 4),  # Password Reset
    "user.account.unlock": (OCSFClass.ACCOUNT_CHANGE, 12),  # Unlock
    "user.account.unlock_by_admin": (OCSFClass.ACCOUNT_CHANGE, 12),
}

#: Actor types that are not a person (apps, Okta itself, tokens).
SERVICE_ACTOR_TYPES = frozenset(
    {"PublicClientApp", "SystemPrincipal", "AppInstance", "Client", "OAuth2Client", "Token", "ApiToken",
     "Application", "Workflow", "WorkflowsApp"}
)

_SUCCESS = frozenset({"SUCCESS", "ALLOW"})
_FAILURE = frozenset({"FAILURE", "DENY"})

#: debugData keys that hold opaque hashes / request ids: never searched for decision ids.
_OPAQUE_DEBUG_KEYS = frozenset({"requestId", "dtHash", "authnRequestId", "deviceFingerprint", "requestUri",
                                "url", "rateLimitBucketUuid"})
#: Largest debugData kept whole in ``attributes`` (bytes of JSON); bigger ones keep short values only.
_DEBUG_KEEP_BYTES = 2048


_LOWER: dict[str, str] = {}


def _get(d: Any, key: str) -> Any:
    """``d[key]`` under its camelCase or lower-cased spelling (pipelines lower-case keys); empty is None.

    Called ~30 times per event, so the camelCase hit is the short path.
    """
    if not isinstance(d, dict):
        return None
    v = d.get(key)
    if v is not None and v != "":
        return v
    lower = _LOWER.get(key)
    if lower is None:
        lower = _LOWER[key] = key.lower()
    v = d.get(lower)
    return None if v == "" else v


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s or None


def _targets(obj: dict) -> list[dict]:
    t = _get(obj, "target")
    if isinstance(t, dict):
        return [t]
    return [x for x in t if isinstance(x, dict)] if isinstance(t, list) else []


def _target_of(targets: list[dict], *types: str) -> dict | None:
    for t in targets:
        if _get(t, "type") in types:
            return t
    return None


def _outcome(result: Any) -> str:
    r = str(result).upper() if result is not None else ""
    if r in _SUCCESS:
        return Outcome.SUCCESS
    if r in _FAILURE:
        return Outcome.FAILURE
    return Outcome.UNKNOWN


def _small_debug(debug: dict) -> dict:
    """debugData as kept in attributes: whole when small, else its short scalar values only."""
    if len(orjson.dumps(debug, default=str)) <= _DEBUG_KEEP_BYTES:
        return debug
    return {k: v for k, v in debug.items() if isinstance(v, str | int | float | bool) and len(str(v)) <= 200}


class OktaSource:
    """Normalises one Okta ``LogEvent`` into one ``IdentityEvent``."""

    source_type = "okta"

    def normalize(self, obj: Any, ctx: Context) -> list[IdentityEvent]:
        if not isinstance(obj, dict):
            raise Reject(f"Okta event is not a JSON object (got {type(obj).__name__})")
        event_type = _get(obj, "eventType")
        if event_type is None:
            raise Reject("missing eventType")
        if not isinstance(event_type, str):
            raise Reject(f"eventType has the wrong type ({type(event_type).__name__})")
        # Okta documents ``published`` as UTC (ISO 8601 with ``Z``); the zone-less form is a pipeline
        # re-formatting of that same UTC value, so it is read as UTC rather than rejected.
        # An event with no ``published`` at all (a partial export) is kept with its time unknown.
        time = parse_time(_get(obj, "published"), naive_is_utc=True, what="published", required=False)

        source = ctx.source_name or "okta"
        outcome_obj = _get(obj, "outcome")
        outcome_obj = outcome_obj if isinstance(outcome_obj, dict) else {}
        outcome = _outcome(_get(outcome_obj, "result"))

        # --- action
        action = EVENT_ACTIONS.get(event_type)
        ocsf = OCSF_OVERRIDES.get(event_type)
        is_auth = event_type == "user.session.start" or event_type.startswith("user.authentication.")
        if is_auth:
            # An authentication with no SUCCESS/FAILURE verdict (CHALLENGE, no outcome at all) is not
            # counted either way: kept as ``other``, still classed as an OCSF Logon.
            action = {Outcome.SUCCESS: Action.AUTH_SUCCESS, Outcome.FAILURE: Action.AUTH_FAILURE}.get(
                outcome, Action.OTHER)
            ocsf = (OCSFClass.AUTHENTICATION, 1)
        if action is None:
            action = Action.OTHER
        class_uid, activity_id = ocsf or OCSF_FOR_ACTION[action]

        # --- actor
        actor_obj = _get(obj, "actor")
        actor_obj = actor_obj if isinstance(actor_obj, dict) else {}
        actor_type = _text(_get(actor_obj, "type"))
        actor_id = _text(_get(actor_obj, "id"))
        actor_login = _text(_get(actor_obj, "alternateId"))
        actor = Actor(
            id=actor_id,
            name=_text(_get(actor_obj, "displayName")) or actor_login,
            type="service" if actor_type in SERVICE_ACTOR_TYPES else "human",
        )

        # --- target account and entitlement
        targets = _targets(obj)
        user = _target_of(targets, "User")
        target = TargetAccount()
        if user is not None:
            target = TargetAccount(system=source, id=_text(_get(user, "id")),
                                   name=_text(_get(user, "alternateId")) or _text(_get(user, "displayName")))
        elif is_auth and actor_type == "User":
            # A sign-in names the signing-in user as the actor and usually no User target.
            target = TargetAccount(system=source, id=actor_id, name=actor_login)

        debug_ctx = _get(obj, "debugContext")
        debug = _get(debug_ctx, "debugData") if isinstance(debug_ctx, dict) else None
        debug = debug if isinstance(debug, dict) else {}

        entitlement = Entitlement()
        resource = None
        if event_type.startswith("group.user_membership."):
            entitlement = self._entitlement(_target_of(targets, "UserGroup"), "group")
        elif event_type.startswith("application.user_membership."):
            entitlement = self._entitlement(_target_of(targets, "AppInstance"), "app")
        elif event_type.startswith("system.api_token."):
            entitlement = self._entitlement(_target_of(targets, "Token"), "credential")
        elif action == Action.MFA_ENROLL or action == Action.MFA_RESET:
            factor = _target_of(targets, "AuthenticatorEnrollment", "Factor")
            if factor is not None:
                entitlement = self._entitlement(factor, "credential")
            elif _text(debug.get("factor")):
                entitlement = Entitlement(type="credential", name=_text(debug.get("factor")))
        elif action in (Action.PRIVILEGE_ELEVATE, Action.ENTITLEMENT_REVOKE):
            if event_type.startswith("user.session.impersonation."):
                entitlement = Entitlement(type="role", name="okta support impersonation")
            else:
                role = _target_of(targets, "ROLE", "Role", "CUSTOM_ROLE")
                granted = _text(debug.get("privilegeGranted")) or _text(debug.get("privilegeRevoked"))
                entitlement = Entitlement(
                    type="role",
                    id=_text(_get(role, "id")) if role else None,
                    name=granted or (_text(_get(role, "displayName")) if role else None),
                )
            if event_type.startswith("group.privilege."):
                grp = _target_of(targets, "UserGroup")
                resource = _text(_get(grp, "id")) if grp else None
        if resource is None:
            app = _target_of(targets, "AppInstance")
            resource = (_text(_get(app, "displayName")) or _text(_get(app, "alternateId"))) if app else None

        # --- client
        client = _get(obj, "client")
        client = client if isinstance(client, dict) else {}
        ua = _get(client, "userAgent")
        user_agent = _text(_get(ua, "rawUserAgent")) if isinstance(ua, dict) else None

        # --- approval ref: Okta Workflows and admin tooling put ticket numbers in debugData / messages
        searchable = [v for k, v in debug.items() if k not in _OPAQUE_DEBUG_KEYS]
        approval_ref = find_approval_ref(*searchable, _get(obj, "displayMessage"))

        attributes: dict[str, Any] = {}
        legacy = _text(_get(obj, "legacyEventType"))
        if legacy:
            attributes["legacy_event_type"] = legacy
        txn = _get(obj, "transaction")
        if isinstance(txn, dict) and _text(_get(txn, "id")):
            attributes["transaction_id"] = _text(_get(txn, "id"))
        reason = _text(_get(outcome_obj, "reason"))
        if reason:
            attributes["outcome_reason"] = reason
        result = _text(_get(outcome_obj, "result"))
        if result and outcome == Outcome.UNKNOWN:
            attributes["outcome_result"] = result
        if debug:
            attributes["debug_data"] = _small_debug(debug)
        if actor_type and actor_type != "User":
            attributes["actor_type"] = actor_type
        if actor_login and actor.name != actor_login:
            attributes["actor_login"] = actor_login
        message = _text(_get(obj, "displayMessage"))
        if message:
            attributes["display_message"] = message

        uuid = _text(_get(obj, "uuid"))
        return [IdentityEvent(
            event_id=uuid or ctx.sha256,
            source=source,
            source_type=self.source_type,
            time=time,
            action=action,
            vendor_action=event_type,
            actor=actor,
            target=target,
            entitlement=entitlement,
            resource=resource,
            approval_ref=approval_ref,
            outcome=outcome,
            class_uid=class_uid,
            activity_id=activity_id,
            src_ip=_text(_get(client, "ipAddress")),
            user_agent=user_agent,
            attributes=attributes or None,
        )]

    @staticmethod
    def _entitlement(t: dict | None, kind: str) -> Entitlement:
        if t is None:
            return Entitlement(type=kind)
        return Entitlement(type=kind, id=_text(_get(t, "id")),
                           name=_text(_get(t, "displayName")) or _text(_get(t, "alternateId")))


SOURCE = OktaSource()
