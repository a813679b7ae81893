"""Command line for sampling and evidence retrieval: ``sample_cmd`` and ``evidence_cmd``, mounted as
``accessproof sample`` and ``accessproof evidence``. A thin shell over ``audit.sample`` and
``audit.retrieval``; ``build_app()`` mounts both for tests and standalone use. Errors are one line, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accessproof.audit.commands import _write
from accessproof.ledger.entry import iso_utc
from accessproof.output import console, emit, one_line_errors, plain, say
from accessproof.store import StoreError, open_store, store_location
from accessproof.store.duckdb import DB_FILE

StoreOpt = Annotated[str | None, typer.Option(
    "--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")]
EVIDENCE_FORMATS = ("table", "jsonl", "csv")
TABLE_LIMIT = 200


@one_line_errors
def sample_cmd(
    control: Annotated[str, typer.Option("--control", "-c", help="Control id (see 'accessproof controls list').")],
    period: Annotated[str, typer.Option(
        "--period", "-p", help="FROM..TO, dates or times (UTC unless given; TO exclusive), e.g. 2026-01-01..2026-07-01.")],
    size: Annotated[int | None, typer.Option(
        "--size", "-n", help="Items to draw (default: by the control's frequency and severity).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the draw (default: a random one, recorded).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the sample file (JSON) here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sample file to standard output.")] = False,
    store: StoreOpt = None,
) -> None:
    """Freeze a control's population for a period in the ledger and draw a reproducible sample from it."""
    from accessproof.audit.sample import parse_period, take_sample

    start, end = parse_period(period)
    if not (Path(store_location(store)) / DB_FILE).exists():  # never create a store by mistake
        raise StoreError(f"no store at {store_location(store)} (run 'accessproof ingest' or 'accessproof demo' first)")
    s = open_store(store)
    try:
        smp = take_sample(s, control, start, end, size=size, seed=seed)
    finally:
        s.close()
    data = smp.to_json()
    if out is not None:
        _write(out, data)
    if as_json:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    pop = smp.population
    t = Table(title=plain(f"sample of {control}: {smp.size} of {pop.count}, seed {smp.seed}"), show_lines=False)
    for c in ("#", "key", "subject", "time", "summary", "raw records"):
        t.add_column(c, overflow="fold", justify="right" if c in ("#", "raw records") else "left")
    for n, item in enumerate(smp.items, 1):
        t.add_row(str(n), plain(item.key), plain(item.subject), iso_utc(item.time) if item.time else "",
                  plain(item.summary), str(len(item.raw_ids)))
    console().print(t)
    frozen = "sealed" if smp.sealed_now else "already sealed"
    say(f"population: {pop.definition}; {pop.count} items, digest {pop.digest[:16]}…, "
        f"{frozen} at ledger index {smp.ledger_index}")
    say(f"size: {smp.guidance}")
    say("draw: " + smp.document()["method"]["algorithm"])
    if out is not None:
        say(f"sample file: {out}")


@one_line_errors
def evidence_cmd(
    control: Annotated[str | None, typer.Option(
        "--control", "-c", help="What evidences this control: its runs, populations, findings and tested rows.")] = None,
    system: Annotated[str | None, typer.Option(
        "--system", help="Source or source type, e.g. okta, okta:acme, cloudtrail, hr.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="Record time from (ISO 8601; UTC unless given).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Record time before (exclusive).")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="A person (HR id, email, username) across all their accounts, or an account.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | jsonl | csv (csv is formula-safe).")] = "table",
    limit: Annotated[int | None, typer.Option(
        "--limit", help=f"At most this many entries (0 = all; default {TABLE_LIMIT} for table, all otherwise).")] = None,
    store: StoreOpt = None,
) -> None:
    """Sealed evidence by control, system, time and subject, with its ledger index and whether its payload is
    held or was purged under retention (purged entries are listed, with when, by whom and why)."""
    from accessproof.audit.retrieval import COLUMNS, find_evidence
    from accessproof.audit.sample import parse_when

    fmt = (fmt or "").lower().strip()
    if fmt not in EVIDENCE_FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose {', '.join(EVIDENCE_FORMATS)})")
    if limit is not None and limit < 0:
        raise ValueError("--limit must be 0 (all) or more")
    start = parse_when(since, "--from") if since else None
    end = parse_when(until, "--to") if until else None
    cap = (TABLE_LIMIT if fmt == "table" else 0) if limit is None else limit
    s = open_store(store, read_only=True)
    try:
        ev = find_evidence(s, control=control, system=system, start=start, end=end, subject=subject,
                           limit=cap or None)
    finally:
        s.close()
    if fmt != "table":
        emit([r.values() for r in ev.rows], fmt, list(COLUMNS))
        return
    shown = ("index", "type", "source", "kind", "subject", "time", "record_id", "payload", "why")
    rows = [(r.index, r.type, r.source, r.kind, r.subject, r.time, r.record_id, r.payload,
             r.why if r.payload != "purged" else f"{r.why}; purged {r.purged_at} by {r.purged_by} "
             f"(entry {r.purge_index})") for r in ev.rows]
    emit(rows, fmt, shown, title="sealed evidence")
    who = f" for person {ev.person_id} ({len(ev.accounts)} accounts)" if ev.person_id else ""
    more = f"; showing the first {len(ev.rows)} (--limit 0 for all)" if ev.total > len(ev.rows) else ""
    say(f"{ev.total} entries{who}, {ev.purged} shown purged{more}")


def build_app() -> typer.Typer:
    """A standalone app with the commands mounted as the main CLI does."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.command("sample")(sample_cmd)
    app.command("evidence")(evidence_cmd)
    return app


__all__ = ["build_app", "evidence_cmd", "sample_cmd"]
