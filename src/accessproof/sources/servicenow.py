"""ServiceNow Table API exports → ``WorkflowRecord``.

Three tables, recognised per record (or forced with the ``table`` option):

* ``sc_req_item`` (requested items, ``RITM…``) → ``access_request``;
* ``sysapproval_approver`` (one approver's decision on a task) → ``approval``, ``parent_id`` = the task;
* ``change_request`` (``CHG…``) → ``change_record``.

The Table API (``GET /api/now/table/<table>``, ``{"result": [...]}``) writes values three ways, and all three
are read:

* ``sysparm_display_value=false`` (the default): raw values — choice fields as codes (``state: "3"``),
  references as ``{"link": …, "value": <sys_id>}``, date-times in UTC;
* ``sysparm_display_value=true``: display strings — ``"Closed Complete"``, the referenced user's name,
  date-times in the exporting user's time zone and date format;
* ``sysparm_display_value=all``: each field ``{"display_value": …, "value": …}``.

Times: ServiceNow stores date-times in UTC and the Table API returns *values* in UTC (``yyyy-MM-dd
HH:mm:ss``, no zone); *display values* are in the exporting user's time zone. So a ``value`` is read as
UTC, and a display string as the ``timezone`` option (default ``UTC``: set it to the exporting user's zone,
e.g. ``Europe/Paris``). A display format other than ``yyyy-MM-dd HH:mm:ss`` is given with the
``datetime_format`` option (``strptime`` syntax); anything else unparseable is rejected, never guessed.

People: the dot-walked ``<field>.email`` (e.g. ``requested_for.email`` in ``sysparm_fields``) is preferred
to the display name, so that identity resolution gets an email; a raw export without it gives sys_ids.

Options: ``table``, ``timezone``, ``datetime_format``, ``scope_variable`` (catalogue variable naming the
access), ``start_variable`` / ``end_variable``, ``instance`` (system ``servicenow:<instance>``).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from accessproof.model import StatusChange, WorkflowKind, WorkflowRecord
from accessproof.sources.base import Context, Reject, parse_date_or_time

RITM, APPROVAL, CHANGE = "sc_req_item", "sysapproval_approver", "change_request"

#: table names and their labels (``sys_class_name`` display values) → table
TABLES: dict[str, str] = {
    "sc_req_item": RITM, "requested item": RITM, "ritm": RITM,
    "sysapproval_approver": APPROVAL, "approval": APPROVAL,
    "change_request": CHANGE, "change request": CHANGE, "change": CHANGE,
}

#: choice codes of ``state`` (raw values) → the out-of-box labels, lower case
RITM_STATES = {"-5": "pending", "1": "open", "2": "work in progress", "3": "closed complete",
               "4": "closed incomplete", "7": "closed skipped"}
CHANGE_STATES = {"-5": "new", "-4": "assess", "-3": "authorize", "-2": "scheduled", "-1": "implement",
                 "0": "review", "3": "closed", "4": "canceled"}
#: ``approval`` / ``sysapproval_approver.state`` values and labels → decision
APPROVAL_STATES = {
    "approved": "approved", "rejected": "rejected", "requested": "requested",
    "cancelled": "cancelled", "canceled": "cancelled",
    "not requested": "not_requested", "not yet requested": "not_requested",
    "not_required": "not_required", "no longer required": "not_required",
    "duplicate": "duplicate",
}
#: decisions after which an approval no longer changes (its ``sys_updated_on`` is the decision time)
FINAL_DECISIONS = frozenset({"approved", "rejected", "cancelled"})

DEFAULT_START_VARIABLES = ("u_start_date", "u_access_start", "start_date", "u_valid_from")
DEFAULT_END_VARIABLES = ("u_end_date", "u_access_end", "end_date", "u_valid_to", "u_expiry_date")
DEFAULT_SCOPE_VARIABLES = ("u_group", "u_role", "u_application", "u_access", "u_entitlement")

_TASK_NUMBER = re.compile(r"^[A-Z]{2,8}\d{5,}$")
#: a journal entry header as the Table API writes journal fields: ``2024-03-04 09:10:45 - Name (Field)``
_JOURNAL_HEAD = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) - (.+?) \(([^()]*)\)\s*$", re.M)
_APPROVED_BY = re.compile(r"\bapproved\s+by[:\s]+([^\n.;:,]+)", re.I)
_REJECTED_BY = re.compile(r"\brejected\s+by[:\s]+([^\n.;:,]+)", re.I)


@lru_cache(maxsize=32)
def _zone_known(tz: str) -> bool:
    if tz.upper() == "UTC":
        return True
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Fields:
    """One Table API record, whatever its ``sysparm_display_value`` mode."""

    def __init__(self, obj: dict, tz: str, fmt: str | None):
        self.obj = obj
        self.tz = tz
        self.fmt = fmt
        self.variables = obj.get("variables") if isinstance(obj.get("variables"), dict) else {}
        # display mode (every value a plain string): date-times are in the user's zone; otherwise UTC
        self.mode = "display"
        for k, v in obj.items():
            if isinstance(v, dict) and k != "variables":
                self.mode = "all" if "display_value" in v else "raw"
                break

    def _raw(self, name: str) -> Any:
        v = self.obj.get(name)
        if v is None and name.startswith("variables."):
            v = self.variables.get(name[len("variables."):])
        return v

    def display(self, name: str) -> str | None:
        """The display string (``None`` for a raw reference, which has only a sys_id)."""
        v = self._raw(name)
        if isinstance(v, dict):
            v = v.get("display_value")
        return _text(v)

    def value(self, name: str) -> str | None:
        """The stored value (a code, a sys_id); the display string when the export has nothing else."""
        v = self._raw(name)
        if isinstance(v, dict):
            v = v.get("value")
        return _text(v)

    def person(self, name: str) -> str | None:
        """A user field: dot-walked email or user name, else display name, else sys_id."""
        return self.display(f"{name}.email") or self.display(f"{name}.user_name") or self.display(name) \
            or self.value(name)

    def variable(self, *names: str) -> str | None:
        for n in names:
            v = self.display(f"variables.{n}") or self.display(n)
            if v:
                return v
        return None

    def time(self, name: str) -> datetime | None:
        """A date-time field: a ``value`` is UTC, a display string is in the ``timezone`` option."""
        v = self._raw(name)
        if isinstance(v, dict):
            value = _text(v.get("value"))
            if value:
                return self._parse(value, name, utc=True)
            return self._parse(_text(v.get("display_value")), name, utc=False)
        return self._parse(_text(v), name, utc=self.mode != "display")

    def variable_time(self, *names: str) -> datetime | None:
        for n in names:
            for key in (f"variables.{n}", n):
                if self.display(key) or self.value(key):
                    return self.time(key)
        return None

    def _parse(self, s: str | None, what: str, *, utc: bool) -> datetime | None:
        if s is None:
            return None
        # a date without a time (glide_date, catalogue date variables) has no zone in ServiceNow: it is a
        # calendar day of the organisation, read at midnight in the timezone option
        tz = "UTC" if utc and len(s) > 10 else self.tz
        if self.fmt:
            try:
                return parse_date_or_time(s, fmt=self.fmt, tz=tz, what=what)
            except Reject:
                pass
        try:
            return parse_date_or_time(s, tz=tz, what=what)
        except Reject:
            raise Reject(f"{what} {s[:40]!r} is not a ServiceNow date-time (yyyy-MM-dd HH:mm:ss); "
                         "set the datetime_format option if the export uses another format") from None


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s or None


def _names(v: Any) -> tuple[str, ...]:
    """An option naming one variable or a list of them."""
    if isinstance(v, str) and v.strip():
        return (v.strip(),)
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v if str(x).strip())
    return ()


def _lower(v: str | None) -> str | None:
    return v.lower() if v else None


def _decision(f: _Fields, name: str) -> str | None:
    """``approval`` / ``state`` of approvals, as one of ``APPROVAL_STATES`` whatever the mode."""
    for v in (f.value(name), f.display(name)):
        if v and v.lower() in APPROVAL_STATES:
            return APPROVAL_STATES[v.lower()]
    v = f.display(name) or f.value(name)
    return v.lower().replace(" ", "_") if v else None


def _state(f: _Fields, codes: dict[str, str]) -> str | None:
    """``state`` as its label, lower case: the code's out-of-box label, else the display string."""
    v = f.value("state")
    if v in codes:
        return codes[v]
    return _lower(f.display("state") or v)


def _journal_decisions(text: str | None) -> tuple[list[str], list[str]]:
    """Approvers and rejecters named in an ``approval_history`` journal, oldest entry first.

    The journal lists its newest entry first, each under ``<date time> - <author> (Approval history)``;
    an entry saying "approved" counts its "approved by <name>" (else its author) as an approver.
    """
    if not text:
        return [], []
    heads = list(_JOURNAL_HEAD.finditer(text))
    entries: list[tuple[str, str, str]] = []
    for i, m in enumerate(heads):
        body = text[m.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        entries.append((m.group(1), m.group(2).strip(), body))
    if not heads:
        entries.append(("", "", text))
    approved: list[str] = []
    rejected: list[str] = []
    for _, author, body in sorted(entries, key=lambda e: e[0]):
        for rx, out, word in ((_APPROVED_BY, approved, "approved"), (_REJECTED_BY, rejected, "rejected")):
            named = [n.strip() for n in rx.findall(body)]
            if not named and author and re.search(rf"\b{word}\b", body, re.I):
                named = [author]
            for n in named:
                if n and n not in out:
                    out.append(n)
    return approved, rejected


def _history(*steps: tuple[datetime | None, str | None, str | None]) -> list[StatusChange]:
    """Status changes with a time and a status, oldest first (stable for equal times)."""
    out = [StatusChange(time=t, status=s, by=b) for t, s, b in steps if t is not None and s]
    return sorted(out, key=lambda c: c.time)


class ServiceNowSource:
    """Normalises one ServiceNow Table API record (RITM, approval or change) into a ``WorkflowRecord``."""

    source_type = "servicenow"

    def normalize(self, obj: Any, ctx: Context) -> list[WorkflowRecord]:
        if not isinstance(obj, dict):
            raise Reject(f"ServiceNow record is not a JSON object (got {type(obj).__name__})")
        tz = str(ctx.options.get("timezone") or "UTC")
        if not _zone_known(tz):
            raise Reject(f"unknown time zone {tz!r} in the timezone option")
        f = _Fields(obj, tz, ctx.options.get("datetime_format"))
        table = self._table(f, ctx)
        instance = _text(ctx.options.get("instance"))
        system = ctx.source_name or (f"servicenow:{instance}" if instance else "servicenow")
        if table == APPROVAL:
            rec = self._approval(f, system)
        elif table == CHANGE:
            rec = self._change(f, system)
        else:
            rec = self._request_item(f, ctx, system)
        return [rec]

    @staticmethod
    def _table(f: _Fields, ctx: Context) -> str:
        forced = _text(ctx.options.get("table"))
        if forced:
            if forced.lower() not in TABLES:
                raise Reject(f"table option {forced!r} is not one of sc_req_item, sysapproval_approver, "
                             "change_request")
            return TABLES[forced.lower()]
        for v in (f.value("sys_class_name"), f.display("sys_class_name")):
            if v and v.lower() in TABLES:
                return TABLES[v.lower()]
        if "sysapproval" in f.obj or "approver" in f.obj:
            return APPROVAL
        number = (f.display("number") or "").upper()
        if number.startswith("RITM"):
            return RITM
        if number.startswith("CHG"):
            return CHANGE
        raise Reject("cannot tell the ServiceNow table (no sys_class_name, RITM/CHG number or approver "
                     "field); set the table option")

    # ------------------------------------------------------------ sc_req_item

    def _request_item(self, f: _Fields, ctx: Context, system: str) -> WorkflowRecord:
        number = f.display("number") or f.value("number")
        if not number:
            raise Reject("sc_req_item record has no number")
        opened = f.time("opened_at") or f.time("sys_created_on")
        decided = f.time("approval_set")
        updated = f.time("sys_updated_on")
        starts = _names(ctx.options.get("start_variable")) or DEFAULT_START_VARIABLES
        ends = _names(ctx.options.get("end_variable")) or DEFAULT_END_VARIABLES
        effective = f.variable_time(*starts)
        expires = f.variable_time(*ends)

        scope_var = _text(ctx.options.get("scope_variable"))
        scope = (f.variable(scope_var) if scope_var else None) or f.display("cat_item") \
            or f.variable(*DEFAULT_SCOPE_VARIABLES) or f.display("short_description") or f.value("cat_item")

        approval = _decision(f, "approval")
        state = _state(f, RITM_STATES)
        status = approval if approval in ("approved", "rejected", "requested") else state
        approvers, rejecters = _journal_decisions(f.display("approval_history"))
        attributes = self._attributes(f, state=state, approval=approval, table=RITM,
                                      request=f.display("request") or f.value("request"),
                                      stage=_lower(f.display("stage") or f.value("stage")),
                                      short_description=f.display("short_description"),
                                      rejected_by=rejecters or None)
        return WorkflowRecord(
            record_id=number,
            system=system,
            kind=WorkflowKind.ACCESS_REQUEST,
            subject=f.person("requested_for"),
            scope=scope,
            requester=f.person("opened_by"),
            approvers=approvers,
            opened=opened,
            decided=decided,
            effective=effective,
            expires=expires,
            status=status,
            history=_history((opened, "opened", f.person("opened_by")),
                             (decided, approval if approval in FINAL_DECISIONS else None, None),
                             (updated, state, f.display("sys_updated_by") or f.value("sys_updated_by"))),
            environment=f.display("u_environment") or f.variable("u_environment"),
            business_unit=f.display("u_business_unit") or f.variable("u_business_unit"),
            attributes=attributes,
        )

    # ------------------------------------------------------------ sysapproval_approver

    def _approval(self, f: _Fields, system: str) -> WorkflowRecord:
        sys_id = f.value("sys_id")
        if not sys_id:
            raise Reject("sysapproval_approver record has no sys_id")
        parent = None
        for name in ("sysapproval", "document_id"):
            d = f.display(name)
            if d and _TASK_NUMBER.match(d):
                parent = d
                break
        parent = parent or f.value("sysapproval") or f.value("document_id")
        decision = _decision(f, "state")
        opened = f.time("sys_created_on")
        decided = f.time("sys_updated_on") if decision in FINAL_DECISIONS else None
        approver = f.person("approver")
        attributes = self._attributes(f, table=APPROVAL, comments=f.display("comments"),
                                      source_table=f.value("source_table") or f.display("source_table"),
                                      group=f.display("group"), due_date=f.display("due_date"))
        return WorkflowRecord(
            record_id=sys_id,
            system=system,
            kind=WorkflowKind.APPROVAL,
            approvers=[approver] if approver else [],
            opened=opened,
            decided=decided,
            status=decision,
            decision=decision,
            parent_id=parent,
            history=_history((opened, "requested", None), (decided, decision, approver)),
            attributes=attributes,
        )

    # ------------------------------------------------------------ change_request

    def _change(self, f: _Fields, system: str) -> WorkflowRecord:
        number = f.display("number") or f.value("number")
        if not number:
            raise Reject("change_request record has no number")
        opened = f.time("opened_at") or f.time("sys_created_on")
        decided = f.time("approval_set")
        updated = f.time("sys_updated_on")
        approval = _decision(f, "approval")
        state = _state(f, CHANGE_STATES)
        approvers, rejecters = _journal_decisions(f.display("approval_history"))
        attributes = self._attributes(f, table=CHANGE, approval=approval,
                                      short_description=f.display("short_description"),
                                      type=_lower(f.value("type") or f.display("type")),
                                      risk=_lower(f.display("risk") or f.value("risk")),
                                      assignment_group=f.display("assignment_group"),
                                      rejected_by=rejecters or None)
        return WorkflowRecord(
            record_id=number,
            system=system,
            kind=WorkflowKind.CHANGE_RECORD,
            scope=f.display("cmdb_ci") or f.display("short_description") or f.value("cmdb_ci"),
            requester=f.person("requested_by"),
            approvers=approvers,
            opened=opened,
            decided=decided,
            effective=f.time("start_date"),
            expires=f.time("end_date"),
            status=state,
            history=_history((opened, "opened", f.person("opened_by")),
                             (decided, approval if approval in FINAL_DECISIONS else None, None),
                             (updated, state, f.display("sys_updated_by") or f.value("sys_updated_by"))),
            environment=f.display("u_environment"),
            business_unit=f.display("u_business_unit"),
            attributes=attributes,
        )

    @staticmethod
    def _attributes(f: _Fields, **kw: Any) -> dict[str, Any] | None:
        out = {k: v for k, v in kw.items() if v not in (None, "", [])}
        sys_id = f.value("sys_id")
        if sys_id:
            out.setdefault("sys_id", sys_id)
        out["display_value"] = {"display": "true", "all": "all", "raw": "false"}[f.mode]
        return out or None


SOURCE = ServiceNowSource()
