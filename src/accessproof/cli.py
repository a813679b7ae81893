"""The ``accessproof`` command: a thin shell over the library (Typer + Rich).

Every command takes ``--store DIR`` (or ``ACCESSPROOF_STORE``; default ``./.accessproof``). Errors are one
line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accessproof import queries
from accessproof.output import to_csv, to_jsonl
from accessproof.sources import REGISTRY, UnknownSource
from accessproof.store import StoreError, open_store

app = typer.Typer(
    name="accessproof",
    help="Prove identity governance end to end: approvals joined to their enforcement, sealed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof)."),
]


class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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


def _emit(columns: list[str], rows: list[tuple], fmt: Format, title: str | None = None) -> None:
    if fmt is Format.jsonl:
        sys.stdout.write(to_jsonl(columns, rows))
    elif fmt is Format.csv:
        sys.stdout.write(to_csv(columns, rows))
    else:
        t = Table(title=title, show_lines=False)
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*("" if v is None else str(v) for v in r))
        console.print(t)


@app.command()
def ingest(
    source_type: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(REGISTRY))}.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (plain or .gz).")],
    mapping: Annotated[Path | None, typer.Option(help="Column mapping (YAML/TOML) for csv/json.")] = None,
    source_name: Annotated[str | None, typer.Option(help="Name this source instance, e.g. okta:acme.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    batch_size: Annotated[int, typer.Option(help="Records per atomic batch.", hidden=True)] = 20_000,
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

            def progress(file: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=Path(file).name)

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
        console.print(t)
        for e in summary.file_errors:
            err.print(f"[yellow]file:[/yellow] {escape(e)}", highlight=False, soft_wrap=True)
        if summary.quarantined:
            console.print(f"{summary.quarantined} record(s) set aside: see 'accessproof quarantine'.")


@app.command()
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
    _emit(cols, rows, fmt, title="events")


@app.command()
def sources(
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    store: StoreOpt = None,
) -> None:
    """Per source: counts, time span and field completeness — can this source be trusted as evidence?"""
    s = _open(store, read_only=True)
    cols, rows = queries.source_quality(s)
    if fmt is Format.table:
        shown = [tuple(_pct(v) if c.endswith("_pct") else v for c, v in zip(cols, r, strict=True)) for r in rows]
        _emit([c.removesuffix("_pct") for c in cols], shown, fmt, title="sources: evidence quality")
        qcols, qrows = queries.quarantine_summary(s)
        if qrows:
            _emit(qcols, qrows, fmt, title="quarantine by reason")
    else:
        _emit(cols, rows, fmt)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}%"


@app.command()
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
    _emit(cols, rows, fmt, title="quarantine")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
