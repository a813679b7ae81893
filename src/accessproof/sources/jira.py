"""Jira issues → ``WorkflowRecord``.

Reads issues as the REST API returns them: ``GET /rest/api/2|3/issue/{key}?expand=changelog`` (one issue)
and ``/search`` (``{"issues": [...]}``, unwrapped by the reader). Times such as
``2024-03-01T10:22:13.000+0000`` carry their offset (written without a colon) and are converted to UTC.

* ``record_id`` = issue key; ``kind`` from the issue type (Access Request → ``access_request``, Change… →
  ``change_record``, else the ``kind`` option, default ``access_request``);
* ``requester`` = reporter; ``subject`` / ``scope`` / extra approvers from custom fields named by the
  ``subject_field`` / ``scope_field`` / ``approver_field`` options (``customfield_10050``, or the field's
  name when the export has ``expand=names``); ``scope`` falls back to the summary;
* ``history`` = the changelog's status transitions (time, new status, author); whoever moved the issue into
  an approved status (``approved_statuses`` option, default ``Approved``) is an approver, and the last move
  into an approved or rejected status (``rejected_statuses``, default Rejected/Declined/Denied) is
  ``decided``. Approvers from the changelog come first, in time order, then those of the approver field
  (whose decisions carry no time of their own);
* ``effective`` / ``expires`` / ``environment`` / ``business_unit`` from the ``effective_field`` /
  ``expires_field`` / ``environment_field`` / ``business_unit_field`` options. A date-only field is a
  calendar day, read at midnight in the ``timezone`` option (default UTC).

People are written as their email address when Jira shows it, else user name (Server), display name or
account id. Jira Service Management's *Approvals* field (``approvers[].approverDecision``) is understood
when it is the ``approver_field``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from accessproof.model import StatusChange, WorkflowKind, WorkflowRecord
from accessproof.sources.base import Context, Reject, parse_date_or_time, parse_time

#: issue type name (lower case) → kind
ISSUE_KINDS: dict[str, str] = {
    "access request": WorkflowKind.ACCESS_REQUEST,
    "access": WorkflowKind.ACCESS_REQUEST,
    "request access": WorkflowKind.ACCESS_REQUEST,
    "access review": WorkflowKind.RECERTIFICATION_DECISION,
    "change": WorkflowKind.CHANGE_RECORD,
    "change request": WorkflowKind.CHANGE_RECORD,
    "normal change": WorkflowKind.CHANGE_RECORD,
    "standard change": WorkflowKind.CHANGE_RECORD,
    "emergency change": WorkflowKind.CHANGE_RECORD,
}
DEFAULT_APPROVED = ("approved",)
DEFAULT_REJECTED = ("rejected", "declined", "denied")
_KINDS = frozenset(k.value for k in WorkflowKind)


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list | bool):
        return None
    s = str(v).strip()
    return s or None


def _person(u: Any) -> str | None:
    """A Jira user as an email when shown, else user name, display name or account id."""
    if isinstance(u, dict):
        for k in ("emailAddress", "name", "displayName", "accountId", "key"):
            t = _text(u.get(k))
            if t:
                return t
        return None
    return _text(u)


def _adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document Format node (API v3 rich-text fields)."""
    if isinstance(node, dict):
        if node.get("type") == "text":
            return str(node.get("text") or "")
        sep = "\n" if node.get("type") in ("doc", "paragraph") else ""
        return sep.join(_adf_text(c) for c in node.get("content") or []).strip()
    return ""


def _values(v: Any) -> list[str]:
    """A custom field's value(s) as text: users, select options, ADF, plain values and lists of them."""
    if v is None:
        return []
    if isinstance(v, list):
        return [x for item in v for x in _values(item)]
    if isinstance(v, dict):
        if v.get("type") == "doc":
            t = _adf_text(v)
            return [t] if t else []
        if any(k in v for k in ("emailAddress", "accountId")):
            p = _person(v)
            return [p] if p else []
        for k in ("value", "name", "displayName", "key"):
            t = _text(v.get(k))
            if t:
                child = v.get("child")  # cascading select: "Parent / Child"
                return [f"{t} / {_values(child)[0]}" if isinstance(child, dict) and _values(child) else t]
        return []
    t = _text(v)
    return [t] if t else []


def _first(v: Any) -> str | None:
    vals = _values(v)
    return vals[0] if vals else None


def _names(v: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(v, str) and v.strip():
        return (v.strip().lower(),)
    if isinstance(v, list | tuple) and v:
        return tuple(str(x).strip().lower() for x in v)
    return default


class JiraSource:
    """Normalises one Jira issue (with its changelog, when expanded) into a ``WorkflowRecord``."""

    source_type = "jira"

    def normalize(self, obj: Any, ctx: Context) -> list[WorkflowRecord]:
        if not isinstance(obj, dict):
            raise Reject(f"Jira issue is not a JSON object (got {type(obj).__name__})")
        key = _text(obj.get("key"))
        if not key:
            raise Reject("Jira issue has no key")
        fields = obj.get("fields")
        if not isinstance(fields, dict):
            raise Reject(f"Jira issue {key} has no fields object")
        opts = ctx.options
        tz = str(opts.get("timezone") or "UTC")

        # an issue with no ``created`` at all (a partial export) is kept with ``opened`` unknown
        created = parse_time(fields.get("created"), what="created", required=False)
        updated = parse_time(fields["updated"], what="updated") if _text(fields.get("updated")) else None
        resolved = parse_time(fields["resolutiondate"], what="resolutiondate") \
            if _text(fields.get("resolutiondate")) else None

        issuetype = _first(fields.get("issuetype"))
        kind = ISSUE_KINDS.get((issuetype or "").lower())
        if kind is None:
            kind = str(opts.get("kind") or WorkflowKind.ACCESS_REQUEST)
            if kind not in _KINDS:
                raise Reject(f"kind option {kind!r} is not a workflow kind")
        status_obj = fields.get("status")
        status = _text(status_obj.get("name")) if isinstance(status_obj, dict) else _text(status_obj)
        status = status.lower() if status else None

        names = obj.get("names") if isinstance(obj.get("names"), dict) else {}

        def field(option: str) -> Any:
            """The value of the custom field named by ``option`` (its id, or its name via expand=names)."""
            fid = _text(opts.get(option))
            if not fid:
                return None
            if fid in fields:
                return fields[fid]
            for k, n in names.items():
                if isinstance(n, str) and n.lower() == fid.lower():
                    return fields.get(k)
            return None

        approved_st = _names(opts.get("approved_statuses"), DEFAULT_APPROVED)
        rejected_st = _names(opts.get("rejected_statuses"), DEFAULT_REJECTED)

        # --- changelog: status transitions, oldest first
        reporter = _person(fields.get("reporter"))
        transitions: list[tuple[datetime, str | None, str, str | None]] = []
        changelog = obj.get("changelog")
        histories = []
        if isinstance(changelog, dict):
            histories = changelog.get("histories") or changelog.get("values") or []
        for h in histories if isinstance(histories, list) else []:
            if not isinstance(h, dict):
                continue
            items = [i for i in h.get("items") or [] if isinstance(i, dict) and i.get("field") == "status"]
            if not items:
                continue
            when = parse_time(h.get("created"), what="changelog created")
            for i in items:
                to = _text(i.get("toString")) or _text(i.get("to"))
                if to:
                    transitions.append((when, _text(i.get("fromString")), to.lower(), _person(h.get("author"))))
        transitions.sort(key=lambda t: t[0])

        # the status at creation: where the first transition started from, else (with a changelog that has
        # no transition) the current status; without the changelog it is unknown
        first_from = transitions[0][1] if transitions else None
        if transitions:
            initial = first_from.lower() if first_from else None
        else:
            initial = status if isinstance(changelog, dict) else None
        history = [StatusChange(time=created, status=initial, by=_person(fields.get("creator")) or reporter)] \
            if initial and created else []
        history += [StatusChange(time=t, status=to, by=by) for t, _, to, by in transitions]

        approvers: list[str] = []
        rejected_by: list[str] = []
        decided = None
        for t, _, to, by in transitions:
            if to in approved_st or to in rejected_st:
                decided = t
                out = approvers if to in approved_st else rejected_by
                if by and by not in out:
                    out.append(by)

        # --- approver field: a user list, or JSM's Approvals field
        approval_value = field("approver_field")
        if isinstance(approval_value, list) and any(isinstance(a, dict) and "approvers" in a for a in approval_value):
            for a in (x for x in approval_value if isinstance(x, dict)):
                for ap in (x for x in a.get("approvers") or [] if isinstance(x, dict)):
                    who = _person(ap.get("approver"))
                    decision = str(ap.get("approverDecision") or "").lower()
                    if who and decision == "approved" and who not in approvers:
                        approvers.append(who)
                    elif who and decision in ("declined", "rejected") and who not in rejected_by:
                        rejected_by.append(who)
                done = a.get("completedDate")
                if decided is None and isinstance(done, dict) and (done.get("iso8601") or done.get("jira")):
                    decided = parse_time(done.get("iso8601") or done.get("jira"), what="approval completedDate")
        else:
            for who in _values(approval_value):
                if who not in approvers:
                    approvers.append(who)
        if decided is None and resolved is not None and status in approved_st + rejected_st:
            decided = resolved

        def when(option: str) -> datetime | None:
            v = _values(field(option))
            if not v:
                return None
            try:
                return parse_date_or_time(v[0], tz=tz, what=str(opts.get(option)))
            except (ZoneInfoNotFoundError, ValueError):
                raise Reject(f"unknown time zone {tz!r} in the timezone option") from None
            except Reject:
                raise Reject(f"{opts.get(option)} {v[0][:40]!r} is not a Jira date (yyyy-MM-dd) or "
                             "date-time") from None

        subject = _values(field("subject_field"))
        scope = _values(field("scope_field"))
        summary = _text(fields.get("summary"))
        env = _values(field("environment_field"))
        bu = _values(field("business_unit_field"))

        attributes: dict[str, Any] = {}
        project = fields.get("project")
        for name, value in (("issue_id", _text(obj.get("id"))),
                            ("issuetype", issuetype),
                            ("summary", summary),
                            ("project", _text(project.get("key")) if isinstance(project, dict) else None),
                            ("assignee", _person(fields.get("assignee"))),
                            ("priority", _first(fields.get("priority"))),
                            ("resolution", _first(fields.get("resolution"))),
                            ("resolved", resolved.isoformat() if resolved else None),
                            ("updated", updated.isoformat() if updated else None),
                            ("labels", [x for x in fields.get("labels") or [] if isinstance(x, str)] or None),
                            ("rejected_by", rejected_by or None),
                            ("subjects", subject if len(subject) > 1 else None),
                            ("self", _text(obj.get("self")))):
            if value:
                attributes[name] = value

        return [WorkflowRecord(
            record_id=key,
            system=ctx.source_name or "jira",
            kind=kind,
            subject=subject[0] if subject else None,
            scope=", ".join(scope) if scope else summary,
            requester=reporter,
            approvers=approvers,
            opened=created,
            decided=decided,
            effective=when("effective_field"),
            expires=when("expires_field"),
            status=status,
            history=history,
            environment=env[0] if env else None,
            business_unit=bu[0] if bu else None,
            attributes=attributes or None,
        )]


SOURCE = JiraSource()
