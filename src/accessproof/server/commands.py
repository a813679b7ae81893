"""Command line for scheduled and event-driven testing and outgoing events, mounted on the main CLI as::

    app.add_typer(schedule_app, name="schedule")   # accessproof schedule list|add|remove|runs|run-due|apply
    app.add_typer(outbox_app, name="outbox")       # accessproof outbox list|deliver|attempts|requeue|endpoint …
    app.command("retest")(retest_cmd)              # accessproof retest SUBJECT | --queue

Every failure is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from accessproof.output import Format, echo, emit, one_line_errors
from accessproof.server import config as server_config
from accessproof.server import outbox as O
from accessproof.server import scheduler as S
from accessproof.store import Store, open_store

schedule_app = typer.Typer(help="Cron-style schedules of assessments and walkthroughs; missed runs.",
                           no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing CloudEvents: endpoints, deliveries, dead letters.", no_args_is_help=True)
endpoint_app = typer.Typer(help="Where outgoing events are sent.", no_args_is_help=True)
outbox_app.add_typer(endpoint_app, name="endpoint")

StoreOpt = Annotated[
    str | None, typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table, jsonl or csv.")]


@contextmanager
def _opened(store: str | None) -> Iterator[Store]:
    s = open_store(store)
    try:
        yield s
    finally:
        s.close()


def _by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _params(values: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for v in values or []:
        k, eq, val = v.partition("=")
        if not eq or not k.strip():
            raise ValueError(f"--param {v!r}: expected name=value")
        params[k.strip()] = val.strip()
    return params


# ---------------------------------------------------------------- schedule

@schedule_app.command("list")
@one_line_errors
def schedule_list(store: StoreOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Schedules with their next fire time and last run."""
    with _opened(store) as s:
        rows = []
        for sch in S.list_schedules(s):
            last = S.schedule_runs(s, name=sch.name, limit=1)
            nxt = sch.trigger().get_next_fire_time(None, datetime.now().astimezone())
            rows.append({**sch.as_dict(), "next": nxt, "last_status": last[0]["status"] if last else None,
                         "last_scheduled_for": last[0]["scheduled_for"] if last else None})
    emit(rows, fmt, ["name", "kind", "cron", "timezone", "select", "params", "grace_seconds", "exception_days",
                      "next", "last_scheduled_for", "last_status"], title=f"{len(rows)} schedules")


@schedule_app.command("add")
@one_line_errors
def schedule_add(
    name: Annotated[str, typer.Argument(help="Letters, digits, - and _.")],
    cron: Annotated[str, typer.Option("--cron", help="Crontab: minute hour day-of-month month day-of-week.")],
    kind: Annotated[str, typer.Option("--kind", help="assessment or walkthrough.")] = "assessment",
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone of the cron fields.")] = "UTC",
    select: Annotated[list[str] | None, typer.Option("--select", "-s", help="Controls (ids, frameworks, tag:…).")
                      ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value (control parameter, or a "
                                                    "walkthrough argument).")] = None,
    grace: Annotated[int, typer.Option("--grace", help="Seconds after a fire time it may still run; later it "
                                       "is reported missed.")] = S.DEFAULT_GRACE,
    exception_days: Annotated[int, typer.Option("--exception-days", help="Announce exceptions expiring within "
                                                "this many days after each run (0: never).")] = S.DEFAULT_EXCEPTION_DAYS,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a schedule of the same name.")] = False,
    store: StoreOpt = None,
) -> None:
    """Add a schedule (sealed as an administrative action)."""
    params: dict[str, Any] = _params(param)
    if kind == "walkthrough" and "scenarios" in params:
        params["scenarios"] = [x.strip() for x in str(params["scenarios"]).split(",") if x.strip()]
    sch = S.Schedule(name, kind, cron, timezone, list(select or []), params, grace, exception_days)
    with _opened(store) as s:
        S.add_schedule(s, sch, by=_by(), replace=replace)
        nxt = sch.trigger().get_next_fire_time(None, datetime.now().astimezone())
    typer.echo(f"schedule {name}: {kind} at '{cron}' ({timezone}); next run {nxt.isoformat() if nxt else 'never'}")


@schedule_app.command("remove")
@one_line_errors
def schedule_remove(name: str, store: StoreOpt = None) -> None:
    """Remove a schedule; its run history stays."""
    with _opened(store) as s:
        found = S.remove_schedule(s, name, by=_by())
    if not found:
        raise ValueError(f"no schedule named {name}")
    typer.echo(f"schedule {name} removed")


@schedule_app.command("runs")
@one_line_errors
def schedule_runs_cmd(
    name: Annotated[str | None, typer.Option("--name")] = None,
    status: Annotated[str | None, typer.Option("--status", help="completed | error | missed")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    store: StoreOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Runs of the schedules, newest first, missed ones included."""
    with _opened(store) as s:
        rows = S.schedule_runs(s, name=name, status=status, limit=limit or None)
    emit(rows, fmt, ["schedule", "kind", "scheduled_for", "status", "started", "finished", "result_id",
                      "ledger_index", "message"], title=f"{len(rows)} runs")


@schedule_app.command("run-due")
@one_line_errors
def schedule_run_due(
    deliver: Annotated[bool, typer.Option("--deliver/--no-deliver", help="Send due outgoing events after.")] = True,
    store: StoreOpt = None,
) -> None:
    """Report missed fire times and run what is due now (for a cron job when no server runs)."""
    with _opened(store) as s:
        report = S.run_due(s)
        sent = O.deliver_due(s) if deliver else None
    for r in report.missed:
        echo(f"missed  {r['schedule']} {r['scheduled_for'].isoformat()}: {r['message']}")
    for r in report.ran:
        echo(f"{r['status']:<9} {r['schedule']} {r['scheduled_for'].isoformat()}: {r['message']} "
                   f"(sealed at {r['ledger_index']})")
    if not report.missed and not report.ran:
        typer.echo("nothing due")
    if sent is not None and sent.attempted:
        typer.echo("outbox: " + ", ".join(f"{k} {v}" for k, v in sent.as_dict().items()))
    if any(r["status"] == "error" for r in report.ran):
        raise typer.Exit(1)


@schedule_app.command("apply")
@one_line_errors
def schedule_apply(path: Annotated[Path, typer.Argument(help="TOML file of [[schedule]] and [[endpoint]] "
                                                        "entries.")], store: StoreOpt = None) -> None:
    """Add or replace the schedules and endpoints a file names (others are left alone)."""
    with _opened(store) as s:
        schedules, endpoints = server_config.apply(s, path, by=_by())
    typer.echo(f"applied {len(schedules)} schedule(s) and {len(endpoints)} endpoint(s) from {path}")


# ---------------------------------------------------------------- outbox

@outbox_app.command("list")
@one_line_errors
def outbox_list(
    status: Annotated[str | None, typer.Option("--status", help="pending | delivered | dead | recorded")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="finding.opened, schedule.missed, …")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    store: StoreOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Outgoing events, newest first, one row per endpoint (dead letters: --status dead)."""
    if status and status not in ("pending", "delivered", "dead", "recorded"):
        raise ValueError("--status must be pending, delivered, dead or recorded")
    with _opened(store) as s:
        rows = O.list_events(s, status=status, type_=type_, limit=limit or None)
        counts = O.counts(s)
    cols = ["event_id", "type", "subject", "created", "endpoint", "status", "attempts", "last_status", "last_error",
            "next_attempt"]
    if fmt is not Format.table:
        cols.append("data")
    emit(rows, fmt, cols, title=", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no events")


@outbox_app.command("deliver")
@one_line_errors
def outbox_deliver(store: StoreOpt = None) -> None:
    """Announce new signed checkpoints, then send every delivery that is due now, once."""
    from accessproof.server.changes import checkpoint_events

    with _opened(store) as s:
        O.emit(s, checkpoint_events(s))
        report = O.deliver_due(s)
    typer.echo(", ".join(f"{k} {v}" for k, v in report.as_dict().items()))


@outbox_app.command("attempts")
@one_line_errors
def outbox_attempts(event_id: str, store: StoreOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Every attempt to deliver one event."""
    with _opened(store) as s:
        rows = O.attempts(s, event_id)
    emit(rows, fmt, ["endpoint", "attempt", "attempted", "status_code", "outcome", "seconds", "error"],
          title=f"{len(rows)} attempts of {event_id}")


@outbox_app.command("requeue")
@one_line_errors
def outbox_requeue(
    event_id: Annotated[str | None, typer.Option("--event")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint")] = None,
    store: StoreOpt = None,
) -> None:
    """Give dead-lettered deliveries a fresh set of attempts."""
    with _opened(store) as s:
        n = O.requeue(s, event_id, endpoint)
    typer.echo(f"{n} dead-lettered deliveries queued again")


@endpoint_app.command("add")
@one_line_errors
def endpoint_add(
    name: str,
    url: str,
    mode: Annotated[str, typer.Option("--mode", help="binary (ce-* headers) or structured "
                                      "(application/cloudevents+json).")] = "structured",
    secret_env: Annotated[str | None, typer.Option("--secret-env", help="Environment variable holding the "
                                                   "signing secret (read when sending).")] = None,
    secret: Annotated[str | None, typer.Option("--secret", help="The signing secret itself (stored in the "
                                               "store; prefer --secret-env).")] = None,
    types: Annotated[list[str] | None, typer.Option("--type", "-t", help="Event types to send (globs: "
                                                    "finding.*); default all.")] = None,
    max_attempts: Annotated[int, typer.Option("--max-attempts")] = O.DEFAULT_MAX_ATTEMPTS,
    replace: Annotated[bool, typer.Option("--replace")] = False,
    store: StoreOpt = None,
) -> None:
    """Add an endpoint (sealed as an administrative action; the secret is never in the ledger)."""
    ep = O.Endpoint(name, url, mode, secret, secret_env, list(types or []), max_attempts)
    with _opened(store) as s:
        O.add_endpoint(s, ep, by=_by(), replace=replace)
    typer.echo(f"endpoint {name}: {mode} mode to {url}" + ("" if ep.secret or ep.secret_env else " (unsigned)"))


@endpoint_app.command("list")
@one_line_errors
def endpoint_list(store: StoreOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Endpoints (secrets never shown)."""
    with _opened(store) as s:
        rows = [e.describe() for e in O.endpoints(s)]
    emit(rows, fmt, ["name", "url", "mode", "secret", "types", "max_attempts", "enabled"],
          title=f"{len(rows)} endpoints")


@endpoint_app.command("remove")
@one_line_errors
def endpoint_remove(name: str, store: StoreOpt = None) -> None:
    """Remove an endpoint; its pending deliveries are dead-lettered."""
    with _opened(store) as s:
        found = O.remove_endpoint(s, name, by=_by())
    if not found:
        raise ValueError(f"no endpoint named {name}")
    typer.echo(f"endpoint {name} removed")


# ---------------------------------------------------------------- retest

@one_line_errors
def retest_cmd(
    subject: Annotated[str | None, typer.Argument(help="Person id, email, username, or account id/name.")] = None,
    control: Annotated[list[str] | None, typer.Option("--control", "-c", help="Only these controls.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Process what webhooks queued instead.")] = False,
    store: StoreOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Re-test one subject now (relinking first), or the queued deliveries; changes go to the outbox."""
    from accessproof.server import retest

    if bool(subject) == queue:
        raise ValueError("give a SUBJECT or --queue")
    with _opened(store) as s:
        if queue:
            result = retest.process_queue(s)
            if result.error:
                raise ValueError(f"re-test failed: {result.error}")
            changes = result.changes
        else:
            changes = retest.retest_subject(s, subject or "", "cli", controls=control)
    emit([c.as_dict() for c in changes], fmt, ["change", "control_id", "resource", "before", "after", "reason"],
          title=f"{len(changes)} finding changes")
