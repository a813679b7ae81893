"""GitHub organization (and enterprise) audit log, as the REST API, the UI export and audit log
streaming write it: one flat object per event, ``action`` naming it (``org.add_member``).

The time is ``@timestamp`` (epoch milliseconds). ``created_at`` is the fallback: epoch ms from GitHub,
sometimes a zone-less string after a pipeline. Some pipelines rename ``@timestamp`` to
``at_sign_timestamp`` and write it as a zone-less string; it is still ``@timestamp`` and takes its
precedence over ``created_at`` (the two can differ: for an alert dismissal ``created_at`` may carry the
alert's own creation time).

GitHub writes an audit entry for an action that took place; it has no outcome field, so every event is
``success``.
"""

from __future__ import annotations

from typing import Any

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

#: action -> canonical action. Anything not listed is ``other`` with ``vendor_action`` set.
#: ``org.invite_member`` / ``org.invite_user`` stay ``other``: an invitation gives no access until it is
#: accepted, which GitHub logs as ``org.add_member``. Token *requests* stay ``other`` for the same reason.
#: ``org.disable_two_factor_requirement`` is an org policy change, not an MFA change of an account.
ACTIONS: dict[str, str] = {
    "org.add_member": Action.ENTITLEMENT_GRANT,
    "org.remove_member": Action.ENTITLEMENT_REVOKE,
    "org.remove_outside_collaborator": Action.ENTITLEMENT_REVOKE,
    "org.update_member": Action.ROLE_CHANGE,
    "team.add_member": Action.ENTITLEMENT_GRANT,
    "team.remove_member": Action.ENTITLEMENT_REVOKE,
    "repo.add_member": Action.ENTITLEMENT_GRANT,
    "repo.remove_member": Action.ENTITLEMENT_REVOKE,
    # Fine-grained PAT access to the org (granted on approval, or directly when no approval is needed)
    "personal_access_token.access_granted": Action.CREDENTIAL_CREATE,
    "personal_access_token.access_revoked": Action.CREDENTIAL_REVOKE,
    # OAuth app authorisations and OAuth access tokens (classic PATs are OAuth access tokens)
    "oauth_authorization.create": Action.CREDENTIAL_CREATE,
    "oauth_authorization.destroy": Action.CREDENTIAL_REVOKE,
    "oauth_access.create": Action.CREDENTIAL_CREATE,
    "oauth_access.destroy": Action.CREDENTIAL_REVOKE,
    # An SSH key on an account, or a deploy key on a repository: a credential that opens repositories
    "public_key.create": Action.CREDENTIAL_CREATE,
    "public_key.delete": Action.CREDENTIAL_REVOKE,
    "two_factor_authentication.enabled": Action.MFA_ENROLL,
    "two_factor_authentication.disabled": Action.MFA_RESET,
}

#: OCSF overrides: a team is a group (group_management Add User / Remove User).
OCSF_OVERRIDES: dict[str, tuple[int, int]] = {
    "team.add_member": (OCSFClass.GROUP_MANAGEMENT, 3),
    "team.remove_member": (OCSFClass.GROUP_MANAGEMENT, 4),
}

#: Fields where a person writes free text (bypass reasons, comments) or a tool leaves a ticket id.
_REF_FIELDS = ("comment", "reason", "justification", "message", "explanation", "data")
#: Fields kept in ``attributes`` when present.
_KEEP = ("operation_type", "programmatic_access_type", "permission", "old_permission", "team", "repo",
         "business", "org", "user_id", "token_id", "hashed_token", "external_identity_nameid",
         "external_identity_username", "repository_public", "visibility")


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s or None


def _data(obj: dict) -> dict:
    d = obj.get("data")
    return d if isinstance(d, dict) else {}


def _field(obj: dict, key: str) -> str | None:
    """A top-level field, or the same key under ``data`` (older exports nest event details there)."""
    return _text(obj.get(key)) or _text(_data(obj).get(key))


def _time(obj: dict):
    for key in ("@timestamp", "at_sign_timestamp", "created_at"):
        value = obj.get(key)
        if value not in (None, ""):
            # GitHub documents these times as UTC (epoch ms). A zone-less string is a pipeline's
            # rendering of that same UTC instant, so it is read as UTC rather than rejected.
            return parse_time(value, naive_is_utc=True, what=key)
    # No timestamp at all: a partial export. Kept with its time unknown (never invented); the
    # sources view counts such events and time-based controls skip them.
    return None


class GitHubSource:
    """Normalises one GitHub audit log entry into one ``IdentityEvent``."""

    source_type = "github"

    def normalize(self, obj: Any, ctx: Context) -> list[IdentityEvent]:
        if not isinstance(obj, dict):
            raise Reject(f"GitHub audit entry is not a JSON object (got {type(obj).__name__})")
        vendor_action = obj.get("action")
        if vendor_action in (None, ""):
            raise Reject("missing action")
        if not isinstance(vendor_action, str):
            raise Reject(f"action has the wrong type ({type(vendor_action).__name__})")
        time = _time(obj)

        org = _text(obj.get("org"))
        business = _text(obj.get("business"))
        source = ctx.source_name or f"github:{org or business or 'unknown'}"

        action = ACTIONS.get(vendor_action, Action.OTHER)
        class_uid, activity_id = OCSF_OVERRIDES.get(vendor_action) or OCSF_FOR_ACTION[action]

        actor_name = _text(obj.get("actor"))
        bot = obj.get("actor_is_bot") is True or (actor_name or "").endswith("[bot]")
        # A GitHub App acting as itself (server-to-server token) is a service whatever its name.
        if "server-to-server" in (_text(obj.get("programmatic_access_type")) or ""):
            bot = True
        actor = Actor(id=_text(obj.get("actor_id")) or actor_name, name=actor_name,
                      type="service" if bot else "human")

        user = _field(obj, "user")
        target = TargetAccount(system=source, id=user, name=user) if user else TargetAccount()

        repo = _text(obj.get("repo")) or _text(obj.get("repository"))
        team = _field(obj, "team")
        permission = _field(obj, "permission")
        entitlement = Entitlement()
        before = after = None
        if vendor_action in ("org.add_member", "org.remove_member", "org.remove_outside_collaborator"):
            entitlement = Entitlement(type="org", id=org, name=org)
        elif vendor_action == "org.update_member":
            # The role (member / admin) in the org; old and new where the entry carries them.
            entitlement = Entitlement(type="role", id=org, name=permission)
            old = _field(obj, "old_permission")
            before = {"permission": old} if old else None
            after = {"permission": permission} if permission else None
        elif vendor_action in ("team.add_member", "team.remove_member"):
            entitlement = Entitlement(type="team", id=team, name=team)
        elif vendor_action in ("repo.add_member", "repo.remove_member"):
            entitlement = Entitlement(type="repo", id=repo, name=repo)
        elif action in (Action.CREDENTIAL_CREATE, Action.CREDENTIAL_REVOKE):
            token = (_text(obj.get("token_id")) or _field(obj, "fingerprint")
                     or _field(obj, "oauth_application_id"))
            entitlement = Entitlement(type="credential", id=token,
                                      name=_field(obj, "title") or _field(obj, "oauth_application_name"))

        approval_ref = find_approval_ref(*(obj.get(k) for k in _REF_FIELDS))

        attributes: dict[str, Any] = {}
        for key in _KEEP:
            value = obj.get(key)
            if value is None or value == "":
                value = _data(obj).get(key)
            if value not in (None, ""):
                attributes[key] = value
        if "actor_location" in obj and isinstance(obj["actor_location"], dict):
            cc = _text(obj["actor_location"].get("country_code"))
            if cc:
                attributes["actor_country"] = cc

        return [IdentityEvent(
            event_id=_text(obj.get("_document_id")) or ctx.sha256,
            source=source,
            source_type=self.source_type,
            time=time,
            action=action,
            vendor_action=vendor_action,
            actor=actor,
            target=target,
            entitlement=entitlement,
            resource=repo,
            approval_ref=approval_ref,
            outcome=Outcome.SUCCESS,
            before=before,
            after=after,
            class_uid=class_uid,
            activity_id=activity_id,
            src_ip=_text(obj.get("actor_ip")),
            user_agent=_text(obj.get("user_agent")),
            attributes=attributes or None,
        )]


SOURCE = GitHubSource()
