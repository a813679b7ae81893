"""The ``accessproof`` command: a thin shell over the library (Typer + Rich).

Every command takes ``--store DIR`` (or ``ACCESSPROOF_STORE``; default ``./.accessproof``). Errors are one
line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accessproof import queries
from accessproof.output import Format, console, emit, fail, first_line, one_line_errors, plain, safe_text, say
from accessproof.sources import REGISTRY, UnknownSource
from accessproof.store import StoreError, open_store

app = typer.Typer(
    name="accessproof",
    help="Prove identity governance end to end: approvals joined to their enforcement, sealed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)  # progress bars only; messages go through accessproof.output

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof)."),
]


def _open(store: str | None, read_only: bool = False):
    try:
        return open_store(store, read_only=read_only)
    except StoreError as e:
        fail(str(e))


def _parse_when(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    from accessproof.sources.base import Reject, parse_date_or_time

    try:
        return parse_date_or_time(value, tz="UTC", what=what)
    except Reject as e:
        fail(str(e))
    return None


@app.command()
def ingest(
    source_type: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(REGISTRY))}.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (plain or .gz).")],
    mapping: Annotated[Path | None, typer.Option(help="Column mapping (YAML/TOML) for csv/json.")] = None,
    source_name: Annotated[str | None, typer.Option(help="Name this source instance, e.g. okta:acme.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    batch_size: Annotated[int, typer.Option(help="Records per atomic batch.", hidden=True)] = 10_000,
    store: StoreOpt = None,
) -> None:
    """Read vendor exports into the store; every record is accepted, duplicate or quarantined."""
    from accessproof.ingest import ingest_paths

    if source_type in ("csv", "json") and mapping is None:
        fail(f"source type {source_type!r} needs --mapping FILE")
    options = {"mapping": mapping} if mapping else {}
    if source_type not in REGISTRY:
        fail(f"unknown source type {source_type!r}; known: {', '.join(sorted(REGISTRY))}")
    s = _open(store)
    try:
        with Progress(TextColumn("[bold]ingest[/bold] {task.description}"), BarColumn(), DownloadColumn(),
                      TextColumn("{task.fields[records]} records"), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
            task = bar.add_task(source_type, total=None, records=0)

            def progress(file: str, done: int, total: int) -> None:  # a file name is data: never markup
                bar.update(task, completed=done, total=total, description=escape(safe_text(Path(file).name)))

            def on_batch(summary) -> None:
                bar.update(task, records=summary.read)

            summary = ingest_paths(s, source_type, list(paths), source_name=source_name, options=options,
                                   progress=progress, on_batch=on_batch, batch_size=batch_size)
    except UnknownSource as e:
        fail(str(e))
    except (ValueError, OSError) as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    finally:
        s.close()
    if as_json:
        sys.stdout.write(orjson.dumps(summary.as_dict()).decode() + "\n")
    else:
        t = Table(title=f"ingest {source_type}", show_header=False)
        for k in ("files", "read", "accepted", "duplicate", "quarantined"):
            t.add_row(k, f"{getattr(summary, k):,}")
        t.add_row("events/s", f"{summary.events_per_second:,.0f}")
        console().print(t)
        for e in summary.file_errors:
            say(e, label="file:", style="yellow", err=True)
        if summary.quarantined:
            say(f"{summary.quarantined} record(s) set aside: see 'accessproof quarantine'.")


@app.command()
@one_line_errors
def events(
    source: Annotated[str | None, typer.Option(help="Source instance or type, e.g. okta or aws:1234.")] = None,
    action: Annotated[str | None, typer.Option(help="Canonical action, e.g. entitlement.grant.")] = None,
    subject: Annotated[str | None, typer.Option(help="Actor or target id/name (substring).")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601; UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0 = all).")] = 50,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    store: StoreOpt = None,
) -> None:
    """List canonical events, newest first."""
    s = _open(store, read_only=True)
    cols, rows = queries.events(s, source=source, action=action, subject=subject,
                                since=_parse_when(since, "--since"), until=_parse_when(until, "--until"),
                                limit=limit)
    emit(rows, fmt, cols, title="events")


@app.command()
@one_line_errors
def sources(
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    store: StoreOpt = None,
) -> None:
    """Per source: counts, time span and field completeness — can this source be trusted as evidence?"""
    s = _open(store, read_only=True)
    cols, rows = queries.source_quality(s)
    if fmt is Format.table:
        shown = [tuple(_pct(v) if c.endswith("_pct") else v for c, v in zip(cols, r, strict=True)) for r in rows]
        emit(shown, fmt, [c.removesuffix("_pct") for c in cols], title="sources: evidence quality")
        qcols, qrows = queries.quarantine_summary(s)
        if qrows:
            emit(qrows, fmt, qcols, title="quarantine by reason")
    else:
        emit(rows, fmt, cols)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}%"


@app.command()
@one_line_errors
def quarantine(
    source_type: Annotated[str | None, typer.Option("--source-type")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0 = all).")] = 100,
    show_data: Annotated[bool, typer.Option("--data", help="Include the raw bytes (as text).")] = False,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    store: StoreOpt = None,
) -> None:
    """Records set aside, with their position and the reason."""
    s = _open(store, read_only=True)
    cols, rows = queries.quarantined(s, source_type=source_type, limit=limit, with_data=show_data)
    emit(rows, fmt, cols, title="quarantine")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory for the vendor-format exports.")] = Path("accessproof-demo/data"),
    people: Annotated[int, typer.Option(help="Head count (40 or more).")] = 200,
    months: Annotated[int, typer.Option(help="Length of the period.")] = 6,
    seed: Annotated[int, typer.Option(help="Same seed, byte-identical exports.")] = 7,
    noise: Annotated[float, typer.Option(help="Usage events per person and working day.")] = 4.0,
) -> None:
    """Write a simulated regulated company's exports (HR, ServiceNow, QMS, Okta, CloudTrail, GitHub)
    with a ground_truth.json of every injected control failure."""
    from accessproof.demo.simulate import simulate as run_simulation

    try:
        with console().status("simulating the company…"):
            summary = run_simulation(people, months, seed, out, noise_per_person_day=noise)
    except (ValueError, OSError) as e:
        fail(str(e))
    t = Table(title=plain(f"simulated {summary.people} people, {summary.months} months → {out}"), show_header=True)
    t.add_column("export")
    t.add_column("records", justify="right")
    for name, n in summary.files.items():
        t.add_row(plain(name), f"{n:,}")
    console().print(t)
    say("injected failures: " + ", ".join(f"{k} {v}" for k, v in summary.failures.items()))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the data, store and report go.")] = Path("accessproof-demo"),
    people: Annotated[int, typer.Option(help="Head count of the simulated company.")] = 200,
    months: Annotated[int, typer.Option(help="Length of the period.")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    score: Annotated[bool, typer.Option("--score", help=(
        "Compare findings with the simulator's ground truth: precision and recall per control "
        "(with --json: one object, control id -> {precision, recall, tp, fp, fn})."))] = False,
) -> None:
    """The main job: simulate a company, ingest its exports, seal, link, test controls, write a report."""
    from accessproof.demo.run import run_demo

    with Progress(TextColumn("[bold]demo[/bold] {task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=fraction)

        try:
            result = run_demo(out, people=people, months=months, seed=seed, progress=progress)
        except (ValueError, OSError, StoreError) as e:
            fail(str(e))
    scores = result.summary.get("score", {})
    if as_json and score:
        keep = ("precision", "recall", "tp", "fp", "fn")
        sys.stdout.write(orjson.dumps({c: {k: v.get(k) for k in keep} for c, v in scores.items()}).decode() + "\n")
        return
    if as_json:
        payload = {"out": str(out), "totals": result.totals, "steps": result.steps,
                   "summary": result.summary}
        sys.stdout.write(orjson.dumps(payload, default=str).decode() + "\n")
        return
    t = Table(title=f"accessproof demo: {people} people, {months} months", show_header=True)
    for c in ("feed", "read", "accepted", "duplicate", "quarantined"):
        t.add_column(c, justify="left" if c == "feed" else "right")
    for label, s in result.ingests:
        t.add_row(plain(label), f"{s.read:,}", f"{s.accepted:,}", f"{s.duplicate:,}", f"{s.quarantined:,}")
    tot = result.totals
    t.add_row("[bold]total[/bold]", *(f"[bold]{tot[k]:,}[/bold]" for k in ("read", "accepted", "duplicate",
                                                                           "quarantined")))
    out_ = console()
    out_.print(t)
    link = result.summary.get("link")
    if link:
        links = link.get("links", {})
        explicit = sum(v for k, v in links.items() if k.startswith("explicit"))
        inferred = sum(v for k, v in links.items() if k.startswith("inferred"))
        say(f"links: {explicit} explicit, {inferred} inferred; {link.get('unlinked_grants', 0)} grants "
                      f"without approval; {link.get('late_removals', 0)} late and "
                      f"{link.get('missing_removals', 0)} missing removals")
    controls = result.summary.get("controls")
    if controls:
        c = controls["counts"]
        say(f"controls: {controls['controls']} tested — {c.get('alarm', 0)} alarm, {c.get('ok', 0)} ok, "
                      f"{c.get('skip', 0)} skip, {c.get('error', 0)} error; every run sealed in the ledger")
    if score and scores:
        st = Table(title="findings vs ground truth", show_header=True)
        for col in ("control", "precision", "recall", "tp", "fp", "fn"):
            st.add_column(col, justify="left" if col == "control" else "right")
        for cid, v in sorted(scores.items()):
            st.add_row(plain(cid), f"{v['precision']:.2f}", f"{v['recall']:.2f}", str(v["tp"]), str(v["fp"]), str(v["fn"]))
        out_.print(st)
    report = result.summary.get("report")
    if report:
        say(f"report: {report}")
    say("steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.steps.items()))
    say(f"store: {result.store_dir}  (try: accessproof --help, with --store {result.store_dir})")


def _mount() -> None:
    """Capabilities that live in their own packages bring their own sub-commands."""
    from accessproof.api.commands import serve_cmd, token_app
    from accessproof.audit.commands import matrix_cmd
    from accessproof.audit.package_commands import package_cmd, verify_package_cmd
    from accessproof.audit.sample_commands import evidence_cmd, sample_cmd
    from accessproof.audit.walkthrough_commands import walkthrough_cmd
    from accessproof.controls.commands import assess_cmd, controls_app, findings_cmd, policy_app
    from accessproof.identity.commands import identity_app
    from accessproof.ledger.commands import init_cmd, ledger_app, retention_app, verify_cmd
    from accessproof.linking.commands import access_cmd, link_app, timeline_cmd
    from accessproof.server.commands import outbox_app, retest_cmd, schedule_app

    app.command("init", help="Create the ledger signing key and print the verifier key.")(init_cmd)
    app.command("verify", help="Recompute the ledger and check every checkpoint; exit 0 only if all holds.")(
        verify_cmd)
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(retention_app, name="retention")
    app.add_typer(identity_app, name="identity")
    app.add_typer(link_app, name="link")
    app.command("access", help="Who had what, in which system, at a point in time.")(access_cmd)
    app.command("timeline", help="One person's lifecycle across all systems.")(timeline_cmd)
    app.command("assess", help="Run the controls; results, runs and findings stored and sealed.")(assess_cmd)
    app.command("findings", help="Findings with stable ids, first/last seen and state.")(findings_cmd)
    app.command("matrix", help="Traceability matrix: requirement → control → evidence → owner → result, as "
                "CSV, XLSX, HTML, JSON or OSCAL assessment results.")(matrix_cmd)
    app.command("sample", help="Freeze a control's population for a period in the ledger and draw a "
                "reproducible sample (the sample file audit packages are built from).")(sample_cmd)
    app.command("evidence", help="Sealed evidence by control, system, time and subject; purged payloads are "
                "listed as purged.")(evidence_cmd)
    app.command("package", help="An offline-verifiable audit package (zip) for a control, a sample file or a "
                "person: evidence, proofs against one signed checkpoint, workpaper.")(package_cmd)
    app.command("verify-package", help="Check an audit package offline: hashes, signatures, every proof, the "
                "population; exit 0 only if all hold.")(verify_package_cmd)
    app.command("walkthrough", help="Follow one item per scenario end to end (governance record, events, "
                "ledger); exit 1 if a link fails. Sealed.")(walkthrough_cmd)
    app.add_typer(controls_app, name="controls")
    app.add_typer(policy_app, name="policy")
    app.command("serve", help="Serve the REST API, webhooks and dashboard over the store.")(serve_cmd)
    app.add_typer(token_app, name="token")
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(outbox_app, name="outbox")
    app.command("retest", help="Re-test one subject (or the queued deliveries) now; changes go to the outbox.")(
        retest_cmd)


_mount()


def main() -> None:
    """Console entry point: an unexpected error is one line (ACCESSPROOF_DEBUG=1 shows the traceback)."""
    import os

    try:
        app()
    except Exception as e:  # a bug must still not greet the user with a traceback
        if os.environ.get("ACCESSPROOF_DEBUG"):
            raise
        say(f"{type(e).__name__}: {first_line(e, '')[:300]} (set ACCESSPROOF_DEBUG=1 for details)",
            label="error:", style="red", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
