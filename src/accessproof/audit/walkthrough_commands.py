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

import duckdb
import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from accessproof.audit.walkthrough import SCENARIOS, WalkthroughError, WalkthroughResult, list_walkthroughs
from accessproof.ledger.ledger import LedgerError
from accessproof.store import StoreError, open_store, store_location
from accessproof.store.duckdb import DB_FILE

Scenario = StrEnum("Scenario", {s: s for s in SCENARIOS})  # type: ignore[misc]


def _fail(message: str) -> None:
    first = (message.splitlines() or ["error"])[0]
    Console(stderr=True).print(f"[red]error:[/red] {escape(first)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _table(result: WalkthroughResult) -> Table:
    t = Table(title=f"walkthrough {result.walkthrough_id} · seed {result.seed}", show_lines=False)
    for c in ("scenario", "item", "check", "result", "broken link", "why"):
        t.add_column(c, overflow="fold")
    for item in result.items:
        for check in item.ordered_checks():
            mark = Text("pass", style="green") if check.passed else Text("FAIL", style="bold red")
            # log content is attacker-controlled: Text cells are never read as Rich markup
            t.add_row(Text(item.scenario), Text(item.key), Text(check.check), mark,
                      Text("" if check.passed else check.link), Text(check.reason))
    return t


def _print_list(console: Console, store: str | None, as_json: bool) -> None:
    s = open_store(store, read_only=True)
    try:
        rows = list_walkthroughs(s)
    finally:
        s.close()
    if as_json:
        sys.stdout.write(orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("no walkthrough has been sealed in this store")
        return
    t = Table(title="sealed walkthroughs")
    for c in ("walkthrough", "ledger index", "finished", "seed", "items", "failed checks"):
        t.add_column(c, overflow="fold")
    for r in rows:
        failed = "payload purged" if r["payload"] == "purged" else ", ".join(r["failed"]) or "none"
        t.add_row(Text(r["walkthrough_id"]), str(r["ledger_index"]), Text(str(r["finished"])),
                  Text(str(r.get("seed", ""))), Text(", ".join(r.get("items") or [])), Text(failed))
    console.print(t)


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
    from accessproof.controls.policy import PolicyError
    from accessproof.linking.config import ConfigError

    console = Console()  # made per call: it reads the terminal width (COLUMNS) now
    try:
        if not str(store_location(store)).startswith(("postgresql://", "postgres://")) and \
                not (Path(store_location(store)) / DB_FILE).exists():
            raise StoreError(f"no store at {store_location(store)} (run 'accessproof ingest' or "
                             "'accessproof demo' first)")
        if list_:
            _print_list(console, store, as_json)
            return
        s = open_store(store)
        try:
            result = run_walkthrough(s, seed=seed, scenarios=[str(x) for x in scenario] if scenario else None,
                                     item=item, policy=policy, relink=relink)
        finally:
            s.close()
    except (WalkthroughError, StoreError, LedgerError, PolicyError, ConfigError, OSError) as e:
        _fail(str(e))
        return
    except duckdb.Error as e:
        _fail(f"database: {e}")
        return
    if as_json:
        sys.stdout.write(orjson.dumps(result.as_dict(), default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        if result.items:
            console.print(_table(result))
        for scen, why in result.skipped.items():
            console.print(Text(f"{scen}: skipped, {why}"))
        failed = sum(1 for i in result.items for c in i.checks if not c.passed)
        verdict = "all checks hold" if result.passed else (
            f"{failed} check(s) failed" if failed else "nothing could be walked")
        sealed = f"; sealed at ledger index {result.ledger_index}" if result.ledger_index is not None else ""
        console.print(Text(f"{len(result.items)} item(s) walked, {verdict}{sealed}"))
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
