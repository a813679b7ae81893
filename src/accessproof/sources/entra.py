"""Microsoft Entra ID audit and sign-in logs → ``IdentityEvent``.

Three shapes of the same records are recognised per record:

* **Graph** — ``directoryAudit`` / ``signIn`` objects as ``GET /auditLogs/directoryAudits`` (or
  ``/auditLogs/signIns``) returns them; the reader unwraps ``{"value": [...]}``.
* **Azure Monitor** — the diagnostic-settings export (Event Hub, storage account): ``time``,
  ``operationName``, ``category``, ``tenantId``, ``resultType`` and the Graph fields under ``properties``.
  Some pipelines lower-case the keys (``operationname``, ``tenantid``, ``resulttype``).
* **Log Analytics** — rows of the ``AuditLogs`` / ``SigninLogs`` tables: PascalCase columns
  (``TimeGenerated``, ``OperationName``, ``Result``…) with ``InitiatedBy``, ``TargetResources`` and
  ``AdditionalDetails`` serialised as JSON strings.

Every lookup is case-insensitive (Graph itself is not consistent: its documented example spells a target's
``Type`` with a capital). Audit activities are mapped by ``activityDisplayName``; sign-ins become
``auth.success`` / ``auth.failure`` from ``status.errorCode`` (or ``resultType``).
"""

from __future__ import annotations

import re
from functools import lru_cache
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
from accessproof.sources.refs import compile_patterns, find_approval_ref

#: Normalised activity name (lower case, single spaces, en dash → hyphen) → (action, entitlement type).
ACTIVITY_ACTIONS: dict[str, tuple[str, str | None]] = {
    "add user": (Action.ACCOUNT_CREATE, None),
    "delete user": (Action.ACCOUNT_DELETE, None),
    "hard delete user": (Action.ACCOUNT_DELETE, None),
    "disable account": (Action.ACCOUNT_DISABLE, None),
    "enable account": (Action.ACCOUNT_ENABLE, None),
    "add member to group": (Action.ENTITLEMENT_GRANT, "group"),
    "remove member from group": (Action.ENTITLEMENT_REVOKE, "group"),
    "add member to role": (Action.ENTITLEMENT_GRANT, "role"),
    "add eligible member to role": (Action.ENTITLEMENT_GRANT, "role"),
    "remove member from role": (Action.ENTITLEMENT_REVOKE, "role"),
    "remove eligible member from role": (Action.ENTITLEMENT_REVOKE, "role"),
    # PIM assignments: the *completed* events are the grant; the *requested* ones change nothing yet
    # and stay ``other``.
    "add member to role in pim completed (permanent)": (Action.ENTITLEMENT_GRANT, "role"),
    "add member to role in pim completed (timebound)": (Action.ENTITLEMENT_GRANT, "role"),
    "add eligible member to role in pim completed (permanent)": (Action.ENTITLEMENT_GRANT, "role"),
    "add eligible member to role in pim completed (timebound)": (Action.ENTITLEMENT_GRANT, "role"),
    "remove member from role in pim completed (permanent)": (Action.ENTITLEMENT_REVOKE, "role"),
    "remove member from role in pim completed (timebound)": (Action.ENTITLEMENT_REVOKE, "role"),
    "remove eligible member from role in pim completed (permanent)": (Action.ENTITLEMENT_REVOKE, "role"),
    "remove eligible member from role in pim completed (timebound)": (Action.ENTITLEMENT_REVOKE, "role"),
    "add member to role completed (pim activation)": (Action.PRIVILEGE_ELEVATE, "role"),
    "remove member from role (pim activation expired)": (Action.ENTITLEMENT_REVOKE, "role"),
    # Azure RBAC (logged by Microsoft.Authorization into the same stream).
    "user has elevated their access to user access administrator for their azure resources":
        (Action.PRIVILEGE_ELEVATE, "role"),
    "create role assignment": (Action.ENTITLEMENT_GRANT, "role"),
    "add role assignment": (Action.ENTITLEMENT_GRANT, "role"),
    "delete role assignment": (Action.ENTITLEMENT_REVOKE, "role"),
    "remove role assignment": (Action.ENTITLEMENT_REVOKE, "role"),
    "add app role assignment to user": (Action.ENTITLEMENT_GRANT, "app"),
    "add app role assignment grant to user": (Action.ENTITLEMENT_GRANT, "app"),
    "remove app role assignment from user": (Action.ENTITLEMENT_REVOKE, "app"),
    "add app role assignment to service principal": (Action.ENTITLEMENT_GRANT, "app"),
    "remove app role assignment from service principal": (Action.ENTITLEMENT_REVOKE, "app"),
    "add delegated permission grant": (Action.ENTITLEMENT_GRANT, "permission"),
    "remove delegated permission grant": (Action.ENTITLEMENT_REVOKE, "permission"),
    "reset password": (Action.CREDENTIAL_ROTATE, None),
    "reset user password": (Action.CREDENTIAL_ROTATE, None),
    "reset password (by admin)": (Action.CREDENTIAL_ROTATE, None),
    "reset password (self-service)": (Action.CREDENTIAL_ROTATE, None),
    "change user password": (Action.CREDENTIAL_ROTATE, None),
    "change password (self-service)": (Action.CREDENTIAL_ROTATE, None),
    "update application - certificates and secrets management": (Action.CREDENTIAL_CREATE, "credential"),
    "add service principal credentials": (Action.CREDENTIAL_CREATE, "credential"),
    "remove service principal credentials": (Action.CREDENTIAL_REVOKE, "credential"),
    "user registered security info": (Action.MFA_ENROLL, None),
    "user deleted security info": (Action.MFA_RESET, None),
    "admin deleted security info": (Action.MFA_RESET, None),
}

#: OCSF overrides where the activity says more than the action's default.
OCSF_OVERRIDES: dict[str, tuple[int, int]] = {
    "add member to group": (OCSFClass.GROUP_MANAGEMENT, 3),  # Add User
    "remove member from group": (OCSFClass.GROUP_MANAGEMENT, 4),  # Remove User
    "reset password": (OCSFClass.ACCOUNT_CHANGE, 4),  # Password Reset
    "reset user password": (OCSFClass.ACCOUNT_CHANGE, 4),
    "reset password (by admin)": (OCSFClass.ACCOUNT_CHANGE, 4),
    "reset password (self-service)": (OCSFClass.ACCOUNT_CHANGE, 4),
    "change user password": (OCSFClass.ACCOUNT_CHANGE, 3),  # Password Change
    "change password (self-service)": (OCSFClass.ACCOUNT_CHANGE, 3),
}

#: Sign-in log categories (Azure Monitor ``category``, Log Analytics ``Type``), lower case.
SIGNIN_CATEGORIES = frozenset({
    "signinlogs", "noninteractiveusersigninlogs", "serviceprincipalsigninlogs", "managedidentitysigninlogs",
    "aadnoninteractiveusersigninlogs", "aadserviceprincipalsigninlogs", "aadmanagedidentitysigninlogs",
})
_SERVICE_SIGNIN = frozenset({"serviceprincipalsigninlogs", "managedidentitysigninlogs",
                             "aadserviceprincipalsigninlogs", "aadmanagedidentitysigninlogs"})

_SUCCESS = frozenset({"success", "succeeded", "0"})
_FAILURE = frozenset({"failure", "failed", "fail", "timeout"})
#: modifiedProperties that only list which properties changed.
_META_PROPERTIES = frozenset({"included updated properties", "action client name"})
_KEY_ID_RE = re.compile(r"KeyIdentifier=([0-9A-Fa-f-]{8,})")
_KEY_NAME_RE = re.compile(r"DisplayName=([^,\]]+)")


def _low(d: Any) -> dict:
    """``d`` with lower-cased keys, JSON-string values of Log Analytics decoded first."""
    d = _json(d)
    return {str(k).lower(): v for k, v in d.items()} if isinstance(d, dict) else {}


def _json(v: Any) -> Any:
    """Decode a JSON-encoded string (Log Analytics columns, modifiedProperties values); else ``v``."""
    if isinstance(v, str):
        s = v.strip()
        if s[:1] in ("{", "[", '"') or s in ("true", "false", "null") or _is_number(s):
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                return v
    return v


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s or None


def _norm(name: str) -> str:
    return " ".join(name.replace("\u2013", "-").replace("\u2014", "-").lower().split())


def _list(v: Any) -> list[dict]:
    v = _json(v)
    if isinstance(v, dict):
        v = [v]
    return [_low(x) for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _type_of(t: dict) -> str:
    """A target's type: ``type`` or the ``@odata.type`` suffix (``#microsoft.graph.targetResourceUser``)."""
    ty = _text(t.get("type"))
    if ty:
        return ty.lower()
    odata = _text(t.get("@odata.type")) or ""
    return odata.rsplit(".", 1)[-1].lower().removeprefix("targetresource")


def _find(targets: list[dict], *types: str) -> dict | None:
    for t in targets:
        if _type_of(t) in types:
            return t
    return None


def _modified(targets: list[dict]) -> dict[str, tuple[Any, Any]]:
    """``modifiedProperties`` of every target: display name → (old, new), values JSON-decoded."""
    out: dict[str, tuple[Any, Any]] = {}
    for t in targets:
        for p in _list(t.get("modifiedproperties")):
            name = _text(p.get("displayname"))
            if name and name not in out:
                out[name] = (_json(p.get("oldvalue")), _json(p.get("newvalue")))
    return out


def _prop(mod: dict[str, tuple[Any, Any]], *names: str) -> str | None:
    """The new (else old) value of the first named modified property, as text."""
    lowered = {k.lower(): v for k, v in mod.items()}
    for n in names:
        pair = lowered.get(n.lower())
        if pair is None:
            continue
        for v in (pair[1], pair[0]):
            while isinstance(v, list) and len(v) == 1:
                v = v[0]
            t = _text(v)
            if t:
                return t
    return None


def _bool_of(v: Any) -> bool | None:
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return None


def _details(v: Any) -> dict[str, Any]:
    """``additionalDetails`` ([{key, value}]) as a dict."""
    out: dict[str, Any] = {}
    for kv in _list(v):
        k = _text(kv.get("key"))
        if k and k not in out:
            out[k] = kv.get("value")
    return out


def _outcome(*values: Any) -> str:
    for v in values:
        if v is None or isinstance(v, dict | list | bool):
            continue
        s = str(v).strip().lower()
        if not s or s == "none":
            continue
        if s in _SUCCESS:
            return Outcome.SUCCESS
        if s in _FAILURE:
            return Outcome.FAILURE
        if s.lstrip("-").isdigit():  # sign-in resultType: an AADSTS error code
            return Outcome.FAILURE
    return Outcome.UNKNOWN


@lru_cache(maxsize=16)
def _pattern(patterns: tuple[str, ...] | None) -> re.Pattern[str]:
    return compile_patterns(patterns)


def _keys(v: Any) -> dict[str, str | None]:
    """Credential key ids (→ display name) in a ``KeyDescription`` value (one ``[KeyIdentifier=…]`` each)."""
    if isinstance(v, list):
        parts = [str(x) for x in v]
    elif isinstance(v, str):
        parts = re.findall(r"\[KeyIdentifier=[^\]]*\]", v) or [v]
    else:
        parts = []
    out: dict[str, str | None] = {}
    for part in parts:
        m = _KEY_ID_RE.search(part)
        if m:
            n = _KEY_NAME_RE.search(part)
            out[m.group(1)] = n.group(1).strip() if n else None
    return out


class EntraSource:
    """Normalises one Entra ID audit or sign-in record (Graph, Azure Monitor or Log Analytics)."""

    source_type = "entra"

    def normalize(self, obj: Any, ctx: Context) -> list[IdentityEvent]:
        if not isinstance(obj, dict):
            raise Reject(f"Entra record is not a JSON object (got {type(obj).__name__})")
        top = _low(obj)
        props = _low(top.get("properties"))
        if props:
            shape = "azure_monitor"
        else:
            shape = "log_analytics" if "timegenerated" in top else "graph"
            props = top

        def get(name: str) -> Any:
            v = props.get(name)
            return top.get(name) if v in (None, "") else v

        category = _text(top.get("category")) or _text(props.get("category")) or ""
        table = (_text(top.get("type")) or "").lower()
        op_name = _text(props.get("activitydisplayname")) or _text(props.get("operationname")) \
            or _text(top.get("operationname"))
        is_signin = (
            category.lower() in SIGNIN_CATEGORIES or table in SIGNIN_CATEGORIES
            or (op_name or "").lower() == "sign-in activity"
            or (op_name is None and "createddatetime" in props and "status" in props)
        )

        if shape == "log_analytics":
            tenant = _text(top.get("aadtenantid")) or _text(top.get("tenantid"))  # TenantId = workspace
        else:
            tenant = _text(top.get("tenantid")) or _text(props.get("tenantid")) or _text(props.get("aadtenantid"))
        tenant = tenant or _text(ctx.options.get("tenant"))
        source = ctx.source_name or (f"entra:{tenant}" if tenant else "entra")

        if not is_signin and not op_name:
            raise Reject("no activityDisplayName or operationName: not an Entra ID audit or sign-in record")

        # Graph documents activityDateTime / createdDateTime as always UTC, and Azure Monitor documents
        # ``time`` as UTC: a zone-less value there (``2025-01-15 14:20:35.456``) is a pipeline
        # re-formatting of a UTC value, so it is read as UTC. A present but bad value is rejected; a
        # record with no time at all (a partial export) is kept with its time unknown.
        time = None
        for name in ("activitydatetime", "createddatetime", "time", "timegenerated"):
            raw_time = get(name)
            if raw_time not in (None, ""):
                time = parse_time(raw_time, naive_is_utc=True, what=name)
                break

        if is_signin:
            return [self._signin(top, props, get, ctx, source, time, shape, category or table, op_name)]
        return [self._audit(top, props, get, ctx, source, time, shape, op_name)]

    # ------------------------------------------------------------ audit

    def _audit(self, top: dict, props: dict, get, ctx: Context, source: str, time, shape: str,
               op_name: str) -> IdentityEvent:
        key = _norm(op_name)
        action, ent_type = ACTIVITY_ACTIONS.get(key, (Action.OTHER, None))
        targets = _list(get("targetresources"))
        mod = _modified(targets)
        details = _details(get("additionaldetails"))

        if key == "update user":
            # A disable/enable done as a property update: modifiedProperties AccountEnabled [true]→[false].
            enabled = next((v for k, v in mod.items() if k.replace(" ", "").lower() == "accountenabled"), None)
            if enabled is not None:
                new, old = _bool_of(enabled[1]), _bool_of(enabled[0])
                if new is False:
                    action = Action.ACCOUNT_DISABLE
                elif new is True and old is not True:
                    action = Action.ACCOUNT_ENABLE

        credential = None
        if ent_type == "credential":
            action, credential = self._credential(action, mod)

        # --- actor
        initiated = _low(get("initiatedby"))
        user = _low(initiated.get("user"))
        app = _low(initiated.get("app"))
        if any(_text(user.get(k)) for k in ("id", "userprincipalname", "displayname")):
            actor = Actor(id=_text(user.get("id")),
                          name=_text(user.get("userprincipalname")) or _text(user.get("displayname")))
        elif app:
            actor = Actor(id=_text(app.get("serviceprincipalid")) or _text(app.get("appid")),
                          name=_text(app.get("displayname")) or _text(app.get("serviceprincipalname")),
                          type="service")
        else:
            actor = Actor()

        # --- target account
        target = TargetAccount()
        account = _find(targets, "user")
        if account is not None:
            target = TargetAccount(system=source, id=_text(account.get("id")),
                                   name=_text(account.get("userprincipalname")) or _text(account.get("displayname")))
        elif _prop(mod, "User.UPN", "User.ObjectID"):
            target = TargetAccount(system=source, id=_prop(mod, "User.ObjectID"), name=_prop(mod, "User.UPN"))
        elif ent_type == "permission":
            # consent: the client service principal (ServicePrincipal.ObjectID) receives the grant
            client_id = _prop(mod, "ServicePrincipal.ObjectID")
            client = next((t for t in targets if client_id and _text(t.get("id")) == client_id), None)
            if client_id:
                target = TargetAccount(system=source, id=client_id,
                                       name=(_text(client.get("displayname")) if client else None)
                                       or _prop(mod, "ServicePrincipal.DisplayName"))
        elif ent_type == "credential":
            # an application's own keys: the application / service principal is the account
            sp = _find(targets, "serviceprincipal", "application")
            if sp is not None:
                target = TargetAccount(system=source, id=_text(sp.get("id")), name=_text(sp.get("displayname")))
        if action == Action.PRIVILEGE_ELEVATE and account is None and key.startswith("user has elevated"):
            target = TargetAccount(system=source, id=actor.id, name=actor.name)  # elevates themselves

        # --- entitlement
        entitlement = Entitlement()
        attributes: dict[str, Any] = {}
        if ent_type == "group":
            g = _find(targets, "group")
            entitlement = Entitlement(
                type="group",
                id=(_text(g.get("id")) if g else None) or _prop(mod, "Group.ObjectID"),
                name=(_text(g.get("displayname")) if g else None) or _prop(mod, "Group.DisplayName"),
            )
        elif ent_type == "role":
            r = _find(targets, "role")
            name = (_text(r.get("displayname")) if r else None) or _prop(mod, "Role.DisplayName") \
                or _text(details.get("RoleName")) or _text(details.get("RoleDefinitionName"))
            if name is None and key.startswith("user has elevated"):
                name = "User Access Administrator"
            entitlement = Entitlement(
                type="role",
                id=(_text(r.get("id")) if r else None) or _prop(mod, "Role.ObjectID", "Role.TemplateId")
                or _text(details.get("RoleDefinitionId")),
                name=name,
            )
            scope = _text(details.get("Scope"))
            if scope:
                attributes["scope"] = scope
        elif ent_type == "app":
            sp = _find(targets, "serviceprincipal", "application")
            entitlement = Entitlement(
                type="app",
                id=(_text(sp.get("id")) if sp else None) or _prop(mod, "ServicePrincipal.ObjectID"),
                name=(_text(sp.get("displayname")) if sp else None)
                or _prop(mod, "ServicePrincipal.DisplayName", "AppRole.DisplayName"),
            )
            app_role = _prop(mod, "AppRole.Value", "AppRole.DisplayName", "AppRole.Id")
            if app_role:
                attributes["app_role"] = app_role
        elif ent_type == "permission":
            # the resource API whose permissions are granted (the target that is not the client)
            res = next((t for t in targets if _type_of(t) == "serviceprincipal" and _text(t.get("id")) != target.id),
                       None)
            entitlement = Entitlement(
                type="permission",
                id=_text(res.get("id")) if res else None,
                name=_prop(mod, "DelegatedPermissionGrant.Scope") or (_text(res.get("displayname")) if res else None),
            )
            if res is not None and _text(res.get("displayname")):
                attributes["permission_resource"] = _text(res.get("displayname"))
        elif ent_type == "credential":
            entitlement = credential or Entitlement(type="credential")

        # --- the object touched when it is not an account
        resource = None
        if account is None:
            for t in targets:
                if _type_of(t) not in ("user", "request", "other", "directory") \
                        and not (target.id and _text(t.get("id")) == target.id):
                    resource = _text(t.get("displayname")) or _text(t.get("id"))
                    if resource:
                        break
        if resource is None and key.startswith("user has elevated"):
            resource = _text(details.get("Scope"))

        # --- before / after
        before = {k: v[0] for k, v in mod.items() if k.lower() not in _META_PROPERTIES}
        after = {k: v[1] for k, v in mod.items() if k.lower() not in _META_PROPERTIES}

        # --- decision id: PIM carries the justification and ticket number in additionalDetails
        pattern = _pattern(tuple(ctx.options["approval_patterns"])) if ctx.options.get("approval_patterns") \
            else None
        ticket_fields = [v[1] or v[0] for k, v in mod.items()
                         if "justification" in k.lower() or "ticket" in k.lower()]
        approval_ref = find_approval_ref(
            *(v for v in details.values() if isinstance(v, str)), get("resultreason"), *ticket_fields,
            _text(get("justification")), _text(get("ticketnumber")), pattern=pattern)

        src_ip = _text(user.get("ipaddress")) or _text(get("ipaddress")) or _text(top.get("calleripaddress")) \
            or _text(details.get("ipaddr"))
        user_agent = _text(get("useragent")) or _text(details.get("User-Agent"))

        for name, value in (("category", _text(props.get("category")) or _text(top.get("category"))),
                            ("logged_by_service", _text(get("loggedbyservice"))),
                            ("operation_type", _text(get("operationtype")) or _text(get("aadoperationtype"))),
                            ("correlation_id", _text(get("correlationid"))),
                            ("result_reason", _text(get("resultreason")))):
            if value:
                attributes[name] = value
        if details:
            attributes["additional_details"] = {k: v for k, v in details.items() if isinstance(v, str | int | float)}
        if shape != "graph":
            attributes["shape"] = shape

        outcome = _outcome(get("result"), top.get("result"), top.get("resulttype"), top.get("resultsignature"))
        class_uid, activity_id = OCSF_OVERRIDES.get(key) or OCSF_FOR_ACTION[action]
        return IdentityEvent(
            event_id=_text(props.get("id")) or _text(top.get("id")) or ctx.sha256,
            source=source,
            source_type=self.source_type,
            time=time,
            action=action,
            vendor_action=op_name,
            actor=actor,
            target=target,
            entitlement=entitlement,
            resource=resource,
            approval_ref=approval_ref,
            outcome=outcome,
            before=before or None,
            after=after or None,
            class_uid=class_uid,
            activity_id=activity_id,
            src_ip=src_ip,
            user_agent=user_agent,
            attributes=attributes or None,
        )

    @staticmethod
    def _credential(action: str, mod: dict[str, tuple[Any, Any]]) -> tuple[str, Entitlement | None]:
        """Which key was added or removed; an application update that only removes keys is a revoke."""
        desc = next((v for k, v in mod.items() if k.lower() == "keydescription"), None)
        if desc is None:
            name = _prop(mod, "KeyDescription", "KeyDisplayName")
            return action, (Entitlement(type="credential", name=name) if name else None)
        old, new = _keys(desc[0]), _keys(desc[1])
        added = [k for k in new if k not in old]
        removed = [k for k in old if k not in new]
        if added:
            return Action.CREDENTIAL_CREATE if action != Action.CREDENTIAL_REVOKE else action, \
                Entitlement(type="credential", id=added[0], name=new[added[0]])
        if removed:
            return Action.CREDENTIAL_REVOKE, Entitlement(type="credential", id=removed[0], name=old[removed[0]])
        name = _prop(mod, "KeyDescription")
        return action, Entitlement(type="credential", name=name)

    # ------------------------------------------------------------ sign-in

    def _signin(self, top: dict, props: dict, get, ctx: Context, source: str, time, shape: str,
                category: str, op_name: str | None) -> IdentityEvent:
        status = _low(get("status"))
        code = status.get("errorcode")
        if code not in (None, ""):
            outcome = Outcome.SUCCESS if str(code).strip() == "0" else Outcome.FAILURE
        else:
            outcome = _outcome(top.get("resulttype"), props.get("resulttype"), get("result"),
                               top.get("resultsignature"))
        action = {Outcome.SUCCESS: Action.AUTH_SUCCESS, Outcome.FAILURE: Action.AUTH_FAILURE}.get(
            outcome, Action.OTHER)

        service = category.lower() in _SERVICE_SIGNIN
        if service or (not _text(get("userid")) and _text(get("serviceprincipalid"))):
            who = Actor(id=_text(get("serviceprincipalid")) or _text(get("appid")),
                        name=_text(get("serviceprincipalname")) or _text(get("appdisplayname")), type="service")
        else:
            who = Actor(id=_text(get("userid")),
                        name=_text(get("userprincipalname")) or _text(get("userdisplayname")))
        target = TargetAccount(system=source, id=who.id, name=who.name) if (who.id or who.name) \
            else TargetAccount()

        attributes: dict[str, Any] = {}
        for name, value in (("category", category or None),
                            ("app", _text(get("appdisplayname"))),
                            ("app_id", _text(get("appid"))),
                            ("error_code", _text(code) if code not in (None, "") else None),
                            ("failure_reason", _text(status.get("failurereason"))),
                            ("authentication_protocol", _text(get("authenticationprotocol"))),
                            ("authentication_requirement", _text(get("authenticationrequirement"))),
                            ("conditional_access_status", _text(get("conditionalaccessstatus"))),
                            ("client_app_used", _text(get("clientappused"))),
                            ("risk_state", _text(get("riskstate"))),
                            ("risk_level_during_sign_in", _text(get("risklevelduringsignin"))),
                            ("correlation_id", _text(get("correlationid")))):
            if value:
                attributes[name] = value
        interactive = get("isinteractive")
        if isinstance(interactive, bool):
            attributes["is_interactive"] = interactive
        if shape != "graph":
            attributes["shape"] = shape

        return IdentityEvent(
            event_id=_text(props.get("id")) or (_text(top.get("id")) if shape != "azure_monitor" else None)
            or ctx.sha256,
            source=source,
            source_type=self.source_type,
            time=time,
            action=action,
            vendor_action=op_name or "Sign-in activity",
            actor=who,
            target=target,
            resource=_text(get("resourcedisplayname")) or _text(get("appdisplayname")),
            outcome=outcome,
            class_uid=OCSFClass.AUTHENTICATION,
            activity_id=1,  # Logon
            src_ip=_text(get("ipaddress")) or _text(top.get("calleripaddress")),
            user_agent=_text(get("useragent")),
            attributes=attributes or None,
        )


SOURCE = EntraSource()
