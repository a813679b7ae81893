"""Command line for identity resolution: ``identity_app`` (``accessproof identity …``).

Mounted by the lead with ``app.add_typer(identity_app, name="identity")``.
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from accessproof.linking.commands import ConfigOpt, FormatOpt, LimitOpt, StoreOpt, config_of, open_for
from accessproof.output import Format, emit, one_line_errors

identity_app = typer.Typer(help="Accounts → persons, with the basis of each match; orphans and conflicts.",
                           no_args_is_help=True)


@identity_app.command("resolve")
@one_line_errors
def resolve_cmd(store: StoreOpt = None, config: ConfigOpt = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """Rebuild the accounts table from the events and map accounts to persons."""
    from accessproof.identity.resolve import resolve_identities

    s = open_for(store)
    try:
        summary = resolve_identities(s, config_of(config))
    finally:
        s.close()
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
        return
    for k, v in summary.items():
        typer.echo(f"{k}: {v}")


@identity_app.command("list")
@one_line_errors
def list_cmd(store: StoreOpt = None, system: Annotated[str | None, typer.Option()] = None,
             person: Annotated[str | None, typer.Option()] = None,
             status: Annotated[str | None, typer.Option(help="resolved, orphan, conflict, owned, ownerless…")]
             = None,
             kind: Annotated[str | None, typer.Option(help="human or service.")] = None,
             fmt: FormatOpt = Format.table, limit: LimitOpt = 200) -> None:
    """Accounts with the person each maps to, the rule's basis and confidence."""
    from accessproof.identity.resolve import list_identities

    s = open_for(store)
    try:
        rows = list_identities(s, system=system, person=person, status=status, kind=kind)
    finally:
        s.close()
    cols = ["system", "account_id", "name", "kind", "person_id", "basis", "confidence", "owner", "status"]
    emit(rows, fmt, cols if fmt is Format.table else None, "identities", limit=limit)


@identity_app.command("orphans")
@one_line_errors
def orphans_cmd(store: StoreOpt = None, fmt: FormatOpt = Format.table, limit: LimitOpt = 0) -> None:
    """Human accounts that map to no current person."""
    from accessproof.identity.resolve import orphans

    s = open_for(store)
    try:
        rows = orphans(s)
    finally:
        s.close()
    cols = ["system", "account_id", "name", "orphan_kind", "person_id", "reason", "last_seen"]
    emit(rows, fmt, cols if fmt is Format.table else None, "orphan accounts", limit=limit)


@identity_app.command("ownerless")
@one_line_errors
def ownerless_cmd(store: StoreOpt = None, fmt: FormatOpt = Format.table, limit: LimitOpt = 0) -> None:
    """Service accounts without an accountable current owner."""
    from accessproof.identity.resolve import ownerless_service_accounts

    s = open_for(store)
    try:
        rows = ownerless_service_accounts(s)
    finally:
        s.close()
    cols = ["system", "account_id", "name", "owner", "status", "reason"]
    emit(rows, fmt, cols if fmt is Format.table else None, "service accounts without an owner", limit=limit)


@identity_app.command("conflicts")
@one_line_errors
def conflicts_cmd(store: StoreOpt = None, fmt: FormatOpt = Format.table, limit: LimitOpt = 0) -> None:
    """Accounts matching more than one person, with every candidate (never resolved by guessing)."""
    from accessproof.identity.resolve import conflicts

    s = open_for(store)
    try:
        groups = conflicts(s)
    finally:
        s.close()
    rows = [{"system": g["system"], "account_id": g["account_id"], "status": g["status"],
             "person_id": c["person_id"], "rule": c["rule"], "basis": c["basis"], "handle": c["handle"],
             "reason": g["reason"]} for g in groups for c in g["candidates"]]
    emit(rows, fmt, None, "identity conflicts", limit=limit)
