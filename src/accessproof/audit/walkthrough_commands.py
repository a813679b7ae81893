"""Command line for walkthroughs: ``walkthrough_cmd``, which the lead mounts as ``accessproof walkthrough``::

    app.command("walkthrough", help="Follow one item per scenario end to end; exit 1 if a link fails.")(
        walkthrough_cmd)

Exit codes: 0 every check holds, 1 a check failed (or nothing could be walked), 2 bad input — one line on
stderr, never a traceback. ``build_app()`` mounts it for tests and standalone use.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from accessproof.audit.walkthrough import SCENARIOS, WalkthroughResult, list_walkthroughs
from accessproof.output import console, emit, one_line_errors, plain, say
from accessproof.store import StoreError, open_store, store_location
from accessproof.store.duckdb import DB_FILE

Scenario = StrEnum("Scenario", {s: s for s in SCENARIOS})  # type: ignore[misc]


def _table(result: WalkthroughResult) -> Table:
    t = Table(title=plain(f"walkthrough {result.walkthrough_id} · seed {result.seed}"), show_lines=False)
    for c in ("scenario", "item", "check", "result", "broken link", "why"):
        t.add_column(c, overflow="fold")
    for item in result.items:
        for check in item.ordered_checks():
            mark = plain("pass", "green") if check.passed else plain("FAIL", "bold red")
            # log content is attacker-controlled: plain cells are never read as Rich markup
            t.add_row(plain(item.scenario), plain(item.key), plain(check.check), mark,
                      plain("" if check.passed else check.link), plain(check.reason))
    return t


def _print_list(store: str | None, as_json: bool) -> None:
    s = open_store(store, read_only=True)
    try:
        rows = list_walkthroughs(s)
    finally:
        s.close()
    if as_json:
        sys.stdout.write(orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        say("no walkthrough has been sealed in this store")
        return
    emit([(r["walkthrough_id"], r["ledger_index"], r["finished"], r.get("seed", ""), ", ".join(r.get("items") or []),
           "payload purged" if r["payload"] == "purged" else ", ".join(r["failed"]) or "none") for r in rows],
         "table", ("walkthrough", "ledger index", "finished", "seed", "items", "failed checks"),
         title="sealed walkthroughs")


@one_line_errors
def walkthrough_cmd(
    store: Annotated[str | None, typer.Option(
        "--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Pick items reproducibly from this seed (default: a random seed, recorded).")] = None,
    scenario: Annotated[list[Scenario] | None, typer.Option(
        "--scenario", help="Only this scenario; repeatable (default: all four).")] = None,
    item: Annotated[str | None, typer.Option(
        "--item", help="Walk this item: HRE-… transfer, RITM… of supplier staff, a leaver (person id, email, "
                       "HR termination id) or EXC-….")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    policy: Annotated[Path | None, typer.Option(
        "--policy", envvar="ACCESSPROOF_POLICY", help="Access policy YAML (approver training, supplier statuses).")
    ] = None,
    relink: Annotated[bool, typer.Option("--relink", help="Re-run identity resolution and linking first.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the walkthroughs sealed in this store.")] = False,
) -> None:
    """Follow one role change, supplier onboarding, contractor offboarding and emergency exception end to end:
    governance record, enforcement events and sealed archive must agree. Sealed in the ledger."""
    from accessproof.audit.walkthrough import run_walkthrough

    if not str(store_location(store)).startswith(("postgresql://", "postgres://")) and \
            not (Path(store_location(store)) / DB_FILE).exists():
        raise StoreError(f"no store at {store_location(store)} (run 'accessproof ingest' or "
                         "'accessproof demo' first)")
    if list_:
        _print_list(store, as_json)
        return
    s = open_store(store)
    try:
        result = run_walkthrough(s, seed=seed, scenarios=[str(x) for x in scenario] if scenario else None,
                                 item=item, policy=policy, relink=relink)
    finally:
        s.close()
    if as_json:
        sys.stdout.write(orjson.dumps(result.as_dict(), default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        if result.items:
            console().print(_table(result))
        for scen, why in result.skipped.items():
            say(f"{scen}: skipped, {why}")
        failed = sum(1 for i in result.items for c in i.checks if not c.passed)
        verdict = "all checks hold" if result.passed else (
            f"{failed} check(s) failed" if failed else "nothing could be walked")
        sealed = f"; sealed at ledger index {result.ledger_index}" if result.ledger_index is not None else ""
        say(f"{len(result.items)} item(s) walked, {verdict}{sealed}")
    if not result.passed:
        raise typer.Exit(1)


def build_app() -> typer.Typer:
    """A standalone app with the command mounted as the lead would."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def _root() -> None:
        """accessproof (walkthrough only)."""

    app.command("walkthrough")(walkthrough_cmd)
    return app


__all__ = ["build_app", "walkthrough_cmd"]
