"""The canonical evidence model: the one shape every source is normalised into.

Three layers, never confused:

* **policy** — what must happen (``WorkflowRecord`` of kind ``policy_requirement``, access policy files);
* **workflow** — what the governance layer decided (``WorkflowRecord``: requests, approvals, exceptions…);
* **enforcement** — what the identity systems did (``IdentityEvent``).

``Person`` is the authoritative HR identity and ``Account`` an identity inside one system.

The records are ``msgspec.Struct`` so that normalising a million events stays cheap (ingest is a hot path);
field names follow OCSF 1.8.0 where OCSF has a name for the thing (``time``, ``actor``, ``class_uid``,
``activity_id``, ``outcome``…). Every record points back at the raw input it came from (``raw_id``): the raw
bytes are kept and sealed as they arrived, so a better parser can always re-normalise without loss.

This module depends on nothing else of accessproof's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class Action(StrEnum):
    """Closed vocabulary of what an enforcement system did. Unmapped vendor events are ``other``."""

    ACCOUNT_CREATE = "account.create"
    ACCOUNT_ENABLE = "account.enable"
    ACCOUNT_DISABLE = "account.disable"
    ACCOUNT_SUSPEND = "account.suspend"
    ACCOUNT_DELETE = "account.delete"
    ENTITLEMENT_GRANT = "entitlement.grant"
    ENTITLEMENT_REVOKE = "entitlement.revoke"
    CREDENTIAL_CREATE = "credential.create"
    CREDENTIAL_ROTATE = "credential.rotate"
    CREDENTIAL_REVOKE = "credential.revoke"
    MFA_ENROLL = "mfa.enroll"
    MFA_RESET = "mfa.reset"
    AUTH_SUCCESS = "auth.success"
    AUTH_FAILURE = "auth.failure"
    ROLE_CHANGE = "role.change"
    PRIVILEGE_ELEVATE = "privilege.elevate"
    OTHER = "other"


#: Actions that give access (linking looks for an approval behind each).
GRANTING_ACTIONS = frozenset(
    {Action.ACCOUNT_CREATE, Action.ACCOUNT_ENABLE, Action.ENTITLEMENT_GRANT, Action.CREDENTIAL_CREATE,
     Action.ROLE_CHANGE, Action.PRIVILEGE_ELEVATE}
)
#: Actions that take access away (linking ties them to terminations, end dates, revoke decisions).
REMOVING_ACTIONS = frozenset(
    {Action.ACCOUNT_DISABLE, Action.ACCOUNT_SUSPEND, Action.ACCOUNT_DELETE, Action.ENTITLEMENT_REVOKE,
     Action.CREDENTIAL_REVOKE}
)


class OCSFClass:
    """OCSF 1.8.0 Identity & Access Management class uids (category 3)."""

    ACCOUNT_CHANGE = 3001
    AUTHENTICATION = 3002
    ENTITY_MANAGEMENT = 3004
    USER_ACCESS = 3005
    GROUP_MANAGEMENT = 3006


#: Default OCSF (class_uid, activity_id) per action; a source may override per event.
#: Activity ids come from the class definitions in OCSF 1.8.0 (e.g. account_change 1=Create, 5=Disable).
OCSF_FOR_ACTION: dict[str, tuple[int, int]] = {
    Action.ACCOUNT_CREATE: (OCSFClass.ACCOUNT_CHANGE, 1),
    Action.ACCOUNT_ENABLE: (OCSFClass.ACCOUNT_CHANGE, 2),
    Action.ACCOUNT_DISABLE: (OCSFClass.ACCOUNT_CHANGE, 5),
    Action.ACCOUNT_SUSPEND: (OCSFClass.ACCOUNT_CHANGE, 9),  # Lock
    Action.ACCOUNT_DELETE: (OCSFClass.ACCOUNT_CHANGE, 6),
    Action.ENTITLEMENT_GRANT: (OCSFClass.USER_ACCESS, 1),  # Assign Privileges
    Action.ENTITLEMENT_REVOKE: (OCSFClass.USER_ACCESS, 2),  # Revoke Privileges
    Action.CREDENTIAL_CREATE: (OCSFClass.ACCOUNT_CHANGE, 99),
    Action.CREDENTIAL_ROTATE: (OCSFClass.ACCOUNT_CHANGE, 99),
    Action.CREDENTIAL_REVOKE: (OCSFClass.ACCOUNT_CHANGE, 99),
    Action.MFA_ENROLL: (OCSFClass.ACCOUNT_CHANGE, 10),
    Action.MFA_RESET: (OCSFClass.ACCOUNT_CHANGE, 11),
    Action.AUTH_SUCCESS: (OCSFClass.AUTHENTICATION, 1),
    Action.AUTH_FAILURE: (OCSFClass.AUTHENTICATION, 1),
    Action.ROLE_CHANGE: (OCSFClass.USER_ACCESS, 1),
    Action.PRIVILEGE_ELEVATE: (OCSFClass.USER_ACCESS, 1),
    Action.OTHER: (0, 0),  # OCSF "Base Event": known to the source, not an IAM change we model
}


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class Actor(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who did it. ``type`` is ``human`` or ``service`` (a role session, token, automation)."""

    id: str | None = None
    name: str | None = None
    type: str = "human"


class TargetAccount(msgspec.Struct, frozen=True, omit_defaults=True):
    """The account acted upon, as the enforcing system names it (``system`` is e.g. ``aws:123456789012``)."""

    system: str | None = None
    id: str | None = None
    name: str | None = None


class Entitlement(msgspec.Struct, frozen=True, omit_defaults=True):
    """What access was granted or removed: ``type`` is group | role | policy | app | permission | credential."""

    type: str | None = None
    id: str | None = None
    name: str | None = None


class IdentityEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One thing an enforcement system did (the *enforcement* layer).

    Fields:
      event_id: the source's own event id (CloudTrail ``eventID``, Okta ``uuid``…) or a content hash.
      source: a named instance of a system, e.g. ``okta:acme`` or ``aws:123456789012``.
      source_type: the parser that read it (``cloudtrail``, ``okta``, ``entra``, ``github``…).
      time: when it happened, UTC, timezone-aware; ``None`` only when the record carries no timestamp at
        all (a partial export): such events are kept and counted as time-unknown by ``accessproof
        sources``, and time-based controls skip them with that reason. A timestamp that is present
        but unparseable or without an offset is quarantined instead.
      action: closed vocabulary (``Action``); ``other`` for events the source knows but we do not model.
      vendor_action: the source's own name for the event (``CreateUser``, ``group.user_membership.add``).
      actor: who did it.
      target: the account acted upon.
      entitlement: group / role / policy / app granted or removed, if any.
      resource: the object the event touched when it is not an account (a repo, a bucket, an app).
      approval_ref: a governance decision id the event carries itself (``RITM0012345``, ``CHG…``), if any.
      environment: prod / staging / dev… where the source says so.
      business_unit: where the source says so.
      outcome: success | failure | unknown.
      before, after: state before and after the change, where the source gives them.
      class_uid, activity_id: the OCSF 1.8.0 class and activity.
      src_ip, user_agent: where it came from.
      raw_id: the raw record it was read from (see ``RawRecord``).
      attributes: source fields worth keeping that have no canonical home (e.g. session tags).
    """

    event_id: str
    source: str
    source_type: str
    time: datetime | None
    action: str
    vendor_action: str | None = None
    actor: Actor = Actor()
    target: TargetAccount = TargetAccount()
    entitlement: Entitlement = Entitlement()
    resource: str | None = None
    approval_ref: str | None = None
    environment: str | None = None
    business_unit: str | None = None
    outcome: str = Outcome.UNKNOWN
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    class_uid: int = 0
    activity_id: int = 0
    src_ip: str | None = None
    user_agent: str | None = None
    raw_id: str | None = None
    attributes: dict[str, Any] | None = None


class WorkflowKind(StrEnum):
    """Kinds of governance record (the *workflow* and *policy* layers)."""

    ACCESS_REQUEST = "access_request"
    APPROVAL = "approval"
    CHANGE_RECORD = "change_record"
    RECERTIFICATION_DECISION = "recertification_decision"
    EXCEPTION = "exception"
    TRAINING_ATTESTATION = "training_attestation"
    SUPPLIER = "supplier"
    HR_EVENT = "hr_event"
    POLICY_REQUIREMENT = "policy_requirement"


class StatusChange(msgspec.Struct, frozen=True, omit_defaults=True):
    """One step in a record's history: at ``time`` its status became ``status`` (set by ``by``)."""

    time: datetime
    status: str
    by: str | None = None


class WorkflowRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the governance layer decided or recorded.

    Fields common to every kind:
      record_id: the governance system's id (``RITM0012345``, ``EXC-0042``); approvals carry the id of
        the record they approve in ``parent_id``.
      system: a named instance, e.g. ``servicenow:acme``, ``qms:cq``, ``hr:workday``.
      kind: ``WorkflowKind``.
      subject: the person (or account) the record is about — an email, employee id or username.
      scope: the entitlement or access the record covers (catalogue item, group, role, policy).
      requester, approvers: who asked and who decided (approvers in decision order).
      opened, decided, effective, expires: the record's times (UTC): when raised, when decided, when it
        takes effect (start of access, termination date), and when it ends (end of access, exception expiry).
      status: the record's current state as the system words it (``approved``, ``rejected``, ``closed``…).
      history: status changes with times, oldest first.
      raw_id: the raw record it was read from.

    Fields used by some kinds (``None`` elsewhere):
      parent_id: approvals — the request or change they decide.
      decision: approvals / recertification — ``approved`` | ``rejected`` | ``revoke`` | ``keep``.
      environment, business_unit: where the governance record says so.
      owner: exceptions, suppliers — the accountable person.
      compensating_control: exceptions.
      course, completed, valid_until: training attestations.
      qualification_status, contract_start, contract_end, next_review: suppliers.
      event_type: hr events — ``hire`` | ``termination`` | ``transfer`` | ``leave`` | ``return``.
      attributes: anything else worth keeping.
    """

    record_id: str
    system: str
    kind: str
    subject: str | None = None
    scope: str | None = None
    requester: str | None = None
    approvers: list[str] = msgspec.field(default_factory=list)
    opened: datetime | None = None
    decided: datetime | None = None
    effective: datetime | None = None
    expires: datetime | None = None
    status: str | None = None
    history: list[StatusChange] = msgspec.field(default_factory=list)
    parent_id: str | None = None
    decision: str | None = None
    environment: str | None = None
    business_unit: str | None = None
    owner: str | None = None
    compensating_control: str | None = None
    course: str | None = None
    completed: datetime | None = None
    valid_until: datetime | None = None
    qualification_status: str | None = None
    contract_start: datetime | None = None
    contract_end: datetime | None = None
    next_review: datetime | None = None
    event_type: str | None = None
    raw_id: str | None = None
    attributes: dict[str, Any] | None = None


class Person(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An authoritative identity from HR (employee, contractor) or the supplier register (supplier staff).

    ``person_id`` is HR's worker id; ``emails`` and ``usernames`` feed identity resolution.
    """

    person_id: str
    display_name: str | None = None
    email: str | None = None
    emails: list[str] = msgspec.field(default_factory=list)
    usernames: list[str] = msgspec.field(default_factory=list)
    worker_type: str = "employee"  # employee | contractor | supplier
    supplier_id: str | None = None
    manager_id: str | None = None
    business_unit: str | None = None
    title: str | None = None
    hired: datetime | None = None
    terminated: datetime | None = None
    system: str | None = None
    raw_id: str | None = None


class Account(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An identity inside one system: ``system`` + ``account_id``.

    ``kind`` is ``human`` or ``service``; service accounts must have an accountable ``owner``.
    ``person_id`` is set by identity resolution, with the ``basis`` of the match.
    """

    system: str
    account_id: str
    name: str | None = None
    kind: str = "human"
    owner: str | None = None
    person_id: str | None = None
    basis: str | None = None


class RawRecord(msgspec.Struct, kw_only=True):
    """A record exactly as it arrived, and where: ``position`` is ``file:line`` or ``file@byte``."""

    raw_id: str
    source_type: str
    file: str
    position: str
    sha256: str
    data: bytes


class Quarantined(msgspec.Struct, kw_only=True):
    """A record set aside: its raw bytes, its position and the reason, one line a person can act on."""

    quarantine_id: str
    source_type: str
    file: str
    position: str
    reason: str
    data: bytes
