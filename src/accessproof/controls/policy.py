"""Access policy as code: who may approve which access, under which conditions, for how long.

A policy file (YAML, validated with Pydantic) names entitlements — one by one or by class — and for each:

* ``approvers`` — the roles whose approval the access needs, all of them; ``a|b`` means either. Roles:
  ``manager`` (anyone in the subject's management chain in HR, ``persons.manager_id`` followed upwards; for
  supplier staff also the supplier register owner), ``system_owner`` and ``business_owner`` (the person the
  entry names; when that person is the subject or the requester, someone above them in HR), and
  ``supplier_owner`` (the supplier register owner of a supplier's staff; nothing for employees);
* ``conditions`` — training courses the holder must have current, a current supplier qualification for
  supplier staff, the environments the access may be requested for;
* ``max_duration_days``, ``privileged``, ``retention`` (evidence retention class);
* ``conflicts`` — segregation-of-duties pairs that must never be held at the same time.

Owners are a person handle (email, employee id, username) or ``title:<HR job title>`` (the one person who
holds it), so the same policy fits any HR export. ``load_policy_tables`` puts the policy into the store as
``policy_*`` tables so control SQL can join it; ``check_policy`` names what the policy refers to that the
store has never seen (entitlements, roles, owners, courses). The policy's ``digest`` ties results to it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accessproof.linking import sql as S
from accessproof.store.base import Store

ROLES = frozenset({"manager", "system_owner", "business_owner", "supplier_owner"})


class PolicyError(ValueError):
    """A policy file that cannot be read or is wrong; the message is one line."""


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    training: list[str] | None = None
    supplier_qualified: bool | None = None
    environments: list[str] | None = None

    @field_validator("training", "environments", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Attributes(BaseModel):
    """What an entitlement class or entry says; unset attributes fall back to the class, then ``defaults``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: str | None = None
    privileged: bool | None = None
    approvers: list[str] | None = None
    system_owner: str | None = None
    business_owner: str | None = None
    conditions: Conditions | None = None
    max_duration_days: float | None = Field(default=None, gt=0)
    retention: str | None = None

    @field_validator("approvers")
    @classmethod
    def _roles(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for req in v:
            for role in str(req).split("|"):
                if role.strip() not in ROLES:
                    raise ValueError(f"unknown approver role {role.strip()!r}; known: {', '.join(sorted(ROLES))}")
        return [str(r).replace(" ", "") for r in v]


class EntitlementPolicy(Attributes):
    """One entitlement (or a pattern of them): ``system`` is the prefix of the enforcing system's name
    (``okta`` matches ``okta:acme``), ``name`` its name or id (``*`` wildcards), ``type`` its kind."""

    id: str | None = None
    system: str
    name: str
    type: str | None = None
    scope: str | None = None
    class_: str | None = Field(default=None, alias="class")

    @model_validator(mode="after")
    def _id(self) -> EntitlementPolicy:
        if not self.id:
            self.id = f"{self.system}:{self.name}"
        return self


class Conflict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    description: str | None = None
    entitlements: list[str] = Field(min_length=2, max_length=2)


class ServiceOwner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str
    account: str
    owner: str
    description: str | None = None


class Emergency(BaseModel):
    """The emergency (break-glass) access procedure: which governance records declare it, and how long
    emergency access may stay."""

    model_config = ConfigDict(extra="forbid")

    markers: list[str] = Field(default_factory=lambda: ["emergency", "break-glass", "break glass"])
    max_hours: float = Field(default=24, gt=0)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: int = 1
    organisation: str | None = None
    approver_training: list[str] = Field(default_factory=list)
    defaults: Attributes = Field(default_factory=Attributes)
    classes: dict[str, Attributes] = Field(default_factory=dict)
    entitlements: list[EntitlementPolicy] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    service_accounts: list[ServiceOwner] = Field(default_factory=list)
    emergency: Emergency = Field(default_factory=Emergency)
    qualified_supplier_statuses: list[str] = Field(default_factory=lambda: ["qualified", "approved"])

    @field_validator("approver_training", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _refs(self) -> Policy:
        ids = [e.id for e in self.entitlements]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"entitlement id(s) used twice: {', '.join(dup)}")
        for e in self.entitlements:
            if e.class_ and e.class_ not in self.classes:
                raise ValueError(f"entitlement {e.id}: unknown class {e.class_!r}")
        known = set(ids)
        for c in self.conflicts:
            bad = [x for x in c.entitlements if x not in known]
            if bad:
                raise ValueError(f"conflict {c.id}: unknown entitlement id(s) {', '.join(bad)}")
        return self

    # ------------------------------------------------------------ resolution

    def resolved(self, entry: EntitlementPolicy) -> dict[str, Any]:
        """The entry's attributes with class and defaults filled in."""
        layers = [self.defaults.model_dump(exclude_none=True)]
        if entry.class_:
            layers.append(self.classes[entry.class_].model_dump(exclude_none=True))
        layers.append(entry.model_dump(exclude_none=True, by_alias=False))
        out: dict[str, Any] = {}
        for layer in layers:
            for k, v in layer.items():
                if k == "conditions" and isinstance(v, dict):
                    out["conditions"] = {**out.get("conditions", {}), **v}
                else:
                    out[k] = v
        out["class"] = entry.class_
        return out

    @property
    def digest(self) -> str:
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_policy_path() -> Path:
    return Path(str(resources.files("accessproof.controls").joinpath("policy.yaml")))


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at ``path`` (default: the demo organisation's ``policy.yaml`` shipped with the package)."""
    p = Path(path) if path is not None else default_policy_path()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise PolicyError(f"{p}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise PolicyError(f"{p}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{p}: expected a mapping at the top level")
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise PolicyError(f"{p}: {where}: {first['msg']}") from None


def as_policy(policy: Policy | str | Path | None) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy)


def _like(pattern: str) -> str:
    return pattern.strip().lower().replace("%", r"\%").replace("_", r"\_").replace("*", "%")


# ---------------------------------------------------------------- into the store

ENT_COLUMNS = (("entry_id", "VARCHAR"), ("system_prefix", "VARCHAR"), ("etype", "VARCHAR"),
               ("name_like", "VARCHAR"), ("specific", "INTEGER"), ("scope", "VARCHAR"), ("class", "VARCHAR"),
               ("privileged", "BOOLEAN"), ("system_owner", "VARCHAR"), ("business_owner", "VARCHAR"),
               ("training", "VARCHAR"), ("supplier_qualified", "BOOLEAN"), ("environments", "VARCHAR"),
               ("max_duration_days", "DOUBLE"), ("retention", "VARCHAR"), ("description", "VARCHAR"))


def load_policy_tables(store: Store, policy: Policy) -> None:
    """(Re)create the ``policy_*`` tables from ``policy``.

    * ``policy_entitlements`` — one row per entry, attributes resolved (``training`` and ``environments``
      as ``;``-joined text, ``name_like`` a SQL LIKE pattern, ``specific`` 1 without wildcards);
    * ``policy_approver_roles`` — (entry_id, requirement number, role): every requirement needs one of its roles;
    * ``policy_training`` — (entry_id, course) required of holders; ``policy_approver_training`` — courses
      required of approvers;
    * ``policy_conflicts`` — (conflict_id, entry_a, entry_b, description);
    * ``policy_service_owners`` — (system_prefix, account, owner);
    * ``policy_settings`` — (key, value) for the emergency procedure and supplier statuses.
    """
    ents, roles, training = [], [], []
    for e in policy.entitlements:
        r = policy.resolved(e)
        cond = r.get("conditions") or {}
        ents.append((e.id, e.system.strip().lower(), e.type, _like(e.name), 0 if "*" in e.name else 1,
                     e.scope.strip().lower() if e.scope else None, e.class_, bool(r.get("privileged")),
                     r.get("system_owner"), r.get("business_owner"), ";".join(cond.get("training") or []) or None,
                     bool(cond.get("supplier_qualified")), ";".join(cond.get("environments") or []) or None,
                     r.get("max_duration_days"), r.get("retention"), r.get("description")))
        for i, req in enumerate(r.get("approvers") or [], start=1):
            for role in req.split("|"):
                roles.append((e.id, i, role))
        for course in cond.get("training") or []:
            training.append((e.id, course))
    S.load_table(store, "policy_entitlements", ENT_COLUMNS, ents)
    S.load_table(store, "policy_approver_roles", (("entry_id", "VARCHAR"), ("requirement", "INTEGER"),
                                                  ("role", "VARCHAR")), roles)
    S.load_table(store, "policy_training", (("entry_id", "VARCHAR"), ("course", "VARCHAR")), training)
    S.load_table(store, "policy_approver_training", (("course", "VARCHAR"),),
                 [(c,) for c in policy.approver_training])
    S.load_table(store, "policy_conflicts", (("conflict_id", "VARCHAR"), ("entry_a", "VARCHAR"),
                                             ("entry_b", "VARCHAR"), ("description", "VARCHAR")),
                 [(c.id, c.entitlements[0], c.entitlements[1], c.description) for c in policy.conflicts])
    S.load_table(store, "policy_service_owners", (("system_prefix", "VARCHAR"), ("account", "VARCHAR"),
                                                  ("owner", "VARCHAR"), ("description", "VARCHAR")),
                 [(s.system.strip().lower(), s.account.strip().lower(), s.owner, s.description)
                  for s in policy.service_accounts])
    settings = [("emergency_max_hours", str(policy.emergency.max_hours)), ("policy_digest", policy.digest)]
    settings += [("emergency_marker", m.lower()) for m in policy.emergency.markers]
    settings += [("qualified_supplier_status", s.lower()) for s in policy.qualified_supplier_statuses]
    S.load_table(store, "policy_settings", (("key", "VARCHAR"), ("value", "VARCHAR")), settings)


# ---------------------------------------------------------------- check

def check_policy(store: Store, policy: Policy) -> list[dict[str, str]]:
    """Problems of ``policy`` against what the store has seen: one dict per problem (``level``, ``kind``,
    ``item``, ``message``). Errors: ``unknown-owner`` (an owner handle or title naming no single current
    person), ``unknown-course`` (a training course no attestation names), ``unknown-service-account``.
    Warnings: ``unknown-entitlement`` (an entry matching no entitlement in any event, interval or governance
    scope — a typo, or access that exists only from before the logs), ``uncovered-entitlement`` (an
    entitlement granted or held in the store that no entry covers; the defaults apply to it).
    Unknown roles, classes and conflict references are rejected when the file is loaded."""
    from accessproof.controls.prelude import build_prelude, ensure_linked

    ensure_linked(store)
    load_policy_tables(store, policy)
    build_prelude(store)
    problems: list[dict[str, str]] = []
    for r in store.query_dicts("""
        SELECT p.entry_id, p.system_prefix, p.name_like FROM policy_entitlements p
        WHERE NOT EXISTS (SELECT 1 FROM ctl_entitlement_policy c WHERE c.entry_id = p.entry_id)
          AND NOT EXISTS (SELECT 1 FROM ctl_request_policy c WHERE c.entry_id = p.entry_id)
        ORDER BY p.entry_id"""):
        problems.append({"level": "warning", "kind": "unknown-entitlement", "item": r["entry_id"],
                         "message": f"no entitlement in {r['system_prefix']}* named like "
                                    f"{r['name_like'].replace('%', '*')!r} was ever granted, held or requested"})
    for r in store.query_dicts("""
        SELECT o.handle, o.role, o.entry_id, o.people FROM ctl_policy_owners o WHERE o.person_id IS NULL
        ORDER BY o.entry_id, o.role"""):
        problems.append({"level": "error", "kind": "unknown-owner", "item": f"{r['entry_id']}:{r['role']}",
                         "message": f"{r['role']} {r['handle']!r} names "
                                    f"{'no person' if not r['people'] else str(r['people']) + ' people'} in HR"})
    courses = {c for e in policy.entitlements for c in (policy.resolved(e).get("conditions") or {}).get("training")
               or []} | set(policy.approver_training)
    seen = {r[0] for r in store.query(
        "SELECT DISTINCT lower(course) FROM wf_current WHERE kind = 'training_attestation' AND course IS NOT NULL")}
    for c in sorted(courses):
        if c.lower() not in seen:
            problems.append({"level": "error", "kind": "unknown-course", "item": c,
                             "message": f"no training attestation names the course {c!r}"})
    for r in store.query_dicts("""
        SELECT s.system_prefix, s.account FROM policy_service_owners s
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.system LIKE s.system_prefix || '%'
                          AND (lower(a.account_id) = s.account OR lower(a.name) = s.account))
        ORDER BY 1, 2"""):
        problems.append({"level": "error", "kind": "unknown-service-account", "item": f"{r['system_prefix']}:{r['account']}",
                         "message": "no account of that name was seen in the system"})
    for r in store.query_dicts("""
        SELECT DISTINCT i.system, i.entitlement_type, i.entitlement FROM ctl_entitlements i
        WHERE i.entitlement_type NOT IN ('account', 'credential')
          AND NOT EXISTS (SELECT 1 FROM ctl_entitlement_policy c WHERE c.system = i.system
                          AND c.entitlement_type = i.entitlement_type AND c.entitlement_key = i.entitlement_key)
        ORDER BY 1, 2, 3"""):
        problems.append({"level": "warning", "kind": "uncovered-entitlement", "item": f"{r['system']}:{r['entitlement']}",
                         "message": f"{r['entitlement_type']} {r['entitlement']!r} in {r['system']} "
                                    "has no policy entry (defaults apply)"})
    return problems
