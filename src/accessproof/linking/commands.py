"""Command line for linking: ``link_app`` (``accessproof link …``), ``access_cmd`` and ``timeline_cmd``.

The lead mounts them on the main CLI::

    app.add_typer(link_app, name="link")
    app.command("access")(access_cmd)
    app.command("timeline")(timeline_cmd)

``build_app()`` does exactly that (with ``identity_app``) for tests and standalone use. Every failure is one
line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from accessproof.linking.config import Config, load_config
from accessproof.output import Format, emit, one_line_errors
from accessproof.store import open_store

link_app = typer.Typer(help="Link approvals to the events that executed them; removals to their triggers.",
                       no_args_is_help=True)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof)."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", envvar="ACCESSPROOF_LINKING", help="Site linking/identity rules (YAML) merged "
                 "over the defaults."),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table, jsonl or csv.")]
LimitOpt = Annotated[int, typer.Option(help="Rows at most (0: all).")]


def open_for(store: str | None, read_only: bool = False):
    return open_store(store, read_only=read_only)


def config_of(path: str | None) -> Config:
    return load_config(path)


@link_app.command("run")
@one_line_errors
def run_cmd(store: StoreOpt = None, config: ConfigOpt = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """Resolve identities, build access intervals, links and removals (rebuilds the derived tables)."""
    from accessproof.linking.link import link_all

    s = open_for(store)
    try:
        summary = link_all(s, config_of(config))
    finally:
        s.close()
    if as_json:
        typer.echo(orjson.dumps(summary, default=str).decode())
        return
    for k, v in summary.items():
        typer.echo(f"{k}: {v}")


LINK_COLUMNS = ["event_time", "system", "person_id", "action", "entitlement", "record_id", "role", "basis", "rule",
                "delta_hours", "status", "event_id", "record_raw_id"]


@link_app.command("list")
@one_line_errors
def list_cmd(store: StoreOpt = None, person: Annotated[str | None, typer.Option()] = None,
             record: Annotated[str | None, typer.Option(help="Governance record id (RITM…).")] = None,
             event: Annotated[str | None, typer.Option(help="Event id.")] = None,
             basis: Annotated[str | None, typer.Option(help="explicit or inferred.")] = None,
             status: Annotated[str | None, typer.Option()] = None,
             fmt: FormatOpt = Format.table, limit: LimitOpt = 200) -> None:
    """Links between enforcement events and governance records, with basis, rule and evidence ids."""
    from accessproof.linking.link import links

    s = open_for(store)
    try:
        rows = links(s, event_id=event, record_id=record, person=person, basis=basis, status=status)
    finally:
        s.close()
    emit(rows, fmt, LINK_COLUMNS if fmt is Format.table else None, "links", limit=limit)


@link_app.command("unlinked")
@one_line_errors
def unlinked_cmd(store: StoreOpt = None, fmt: FormatOpt = Format.table, limit: LimitOpt = 200) -> None:
    """Grants with no justified link, and why."""
    from accessproof.linking.link import unlinked_grants

    s = open_for(store)
    try:
        rows = unlinked_grants(s)
    finally:
        s.close()
    cols = ["event_time", "system", "account_id", "person_id", "vendor_action", "entitlement", "reason_code",
            "reason", "event_id"]
    emit(rows, fmt, cols if fmt is Format.table else None, "unlinked grants", limit=limit)


@link_app.command("unexecuted")
@one_line_errors
def unexecuted_cmd(store: StoreOpt = None,
                   awaiting: Annotated[bool, typer.Option(help="Include those still inside their window.")] = False,
                   fmt: FormatOpt = Format.table, limit: LimitOpt = 200) -> None:
    """Approved requests with no event executing them."""
    from accessproof.linking.link import unexecuted_approvals

    s = open_for(store)
    try:
        rows = unexecuted_approvals(s, include_awaiting=awaiting)
    finally:
        s.close()
    cols = ["record_id", "system", "kind", "subject", "person_id", "scope", "decision_time", "status", "reason"]
    emit(rows, fmt, cols if fmt is Format.table else None, "approved, never executed", limit=limit)


@link_app.command("removals")
@one_line_errors
def removals_cmd(store: StoreOpt = None, person: Annotated[str | None, typer.Option()] = None,
                 missing: Annotated[bool, typer.Option("--missing", help="Only removals that never came.")] = False,
                 by_system: Annotated[bool, typer.Option("--by-system", help="One row per trigger and system.")]
                 = False,
                 fmt: FormatOpt = Format.table, limit: LimitOpt = 200) -> None:
    """Removals required by terminations, contract ends, end dates, revoke decisions and exception expiries."""
    from accessproof.linking.link import removal_latency, removal_links

    s = open_for(store)
    try:
        if by_system:
            rows = removal_latency(s)
            if person:
                rows = [r for r in rows if r["person_id"] == person]
            if missing:
                rows = [r for r in rows if r["status"] == "missing"]
            cols = ["trigger_kind", "trigger_record_id", "person_id", "system", "due_at", "accesses", "removed",
                    "fully_removed_at", "latency_hours", "status"]
        else:
            rows = removal_links(s, status="missing" if missing else None, person=person)
            cols = ["trigger_kind", "trigger_record_id", "person_id", "system", "account_id", "entitlement",
                    "due_at", "removed_at", "latency_hours", "status", "removal_event_id"]
    finally:
        s.close()
    emit(rows, fmt, cols if fmt is Format.table else None, "removals", limit=limit)


@one_line_errors
def access_cmd(at: Annotated[str, typer.Option("--at", help="Point in time (ISO 8601, UTC if no offset).")],
               person: Annotated[str | None, typer.Option(help="Person id, email or username.")] = None,
               system: Annotated[str | None, typer.Option(help="System, e.g. okta:acme or okta.")] = None,
               store: StoreOpt = None, fmt: FormatOpt = Format.table, limit: LimitOpt = 0) -> None:
    """Who had what, in which system, at a point in time (from grant / revoke / account events)."""
    from accessproof.identity.resolve import person_of
    from accessproof.linking.access import access_at
    from accessproof.sources.base import Reject, parse_date_or_time

    try:
        when = parse_date_or_time(at, tz="UTC", what="--at")
    except Reject as e:
        raise ValueError(str(e)) from None
    s = open_for(store)
    try:
        pid = person
        if person:
            found = person_of(s, person)
            pid = found["person_id"] if found else person
        rows = access_at(s, when, pid, system=system)
    finally:
        s.close()
    cols = ["person_id", "system", "account_id", "entitlement_type", "entitlement", "granted_at", "start_known",
            "grant_event_id"]
    emit(rows, fmt, cols if fmt is Format.table else None, f"access at {when.isoformat()}", limit=limit)


@one_line_errors
def timeline_cmd(person: Annotated[str, typer.Argument(help="Person id, email, username or account name.")],
                 store: StoreOpt = None,
                 as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """One person's access lifecycle across systems, in time order, with evidence and link basis."""
    from accessproof.linking.timeline import timeline

    s = open_for(store)
    try:
        steps = timeline(s, person)
    finally:
        s.close()
    if not steps:
        raise ValueError(f"no person matches {person!r} (or nothing is known about them)")
    if as_json:
        typer.echo(orjson.dumps(steps, option=orjson.OPT_INDENT_2).decode())
        return
    rows = [{"time": x["time"], "stage": x["stage"], "source": x["source"], "what": x["what"],
             "basis": x.get("link_basis") or "", "evidence": x["evidence"].get("event_id")
             or x["evidence"].get("record_id")} for x in steps]
    emit(rows, Format.table, title=f"timeline of {steps[0]['person_id']}")


def build_app() -> typer.Typer:
    """A standalone app with the identity and linking commands mounted as on the main CLI."""
    from accessproof.identity.commands import identity_app

    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(identity_app, name="identity")
    app.add_typer(link_app, name="link")
    app.command("access")(access_cmd)
    app.command("timeline")(timeline_cmd)
    return app
