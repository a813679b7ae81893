"""Command line for the ledger: ``ledger_app``, ``retention_app``, ``init_cmd`` and ``verify_cmd``.

The lead mounts them on the main CLI (``app.add_typer(ledger_app, name="ledger")``,
``app.command("init")(init_cmd)``…); ``build_app()`` does exactly that for tests and standalone use.
Every failure is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from accessproof.ledger.api import compact_store, init_store, open_ledger, parse_verifier_arg
from accessproof.ledger.ledger import Ledger, LedgerError
from accessproof.ledger.merkle import leaf_hash
from accessproof.ledger.retention import add_hold, list_holds, purge, release_hold, subject_coverage
from accessproof.ledger.verify import verify_ledger
from accessproof.output import echo, one_line_errors

ledger_app = typer.Typer(help="Tamper-evident ledger: keys, checkpoints and proofs.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention: legal holds and purge of expired payloads.", no_args_is_help=True
)
hold_app = typer.Typer(help="Legal holds.", no_args_is_help=True)
retention_app.add_typer(hold_app, name="hold")

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store", envvar="ACCESSPROOF_STORE", help="Store directory or postgresql:// URL.", show_default=True
    ),
]
DEFAULT_STORE = ".accessproof"


def _open(store: str) -> Ledger:
    return open_ledger(store, create=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# -- top level --------------------------------------------------------------------------------------------


@one_line_errors
def init_cmd(store: StoreOpt = DEFAULT_STORE) -> None:
    """Create the store's ledger and its signing key (mode 0600); print the verifier key to keep elsewhere."""
    led, verifier = init_store(store)
    led.close()
    typer.echo(str(verifier))


@one_line_errors
def verify_cmd(
    store: StoreOpt = DEFAULT_STORE,
    against: Annotated[
        Path | None, typer.Option("--against", help="An exported checkpoint the store must still contain.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Verifier key (or file) to trust instead of the store's own.")
    ] = None,
) -> None:
    """Recompute the whole ledger and check tiles, checkpoints and payloads; exit 0 only if all hold."""
    note = against.read_text() if against else None
    with _open(store) as led:
        verifiers = [parse_verifier_arg(key)] if key else None
        report = verify_ledger(led, payloads=led.payloads, against=note, verifiers=verifiers)
    if report.ok:
        echo(report.summary())
        return
    echo(report.summary(), err=True)
    for problem in report.problems[:20]:  # a problem may quote the tampered data: shown as plain text
        echo(f"  {problem}", err=True)
    raise typer.Exit(1)


# -- ledger ---------------------------------------------------------------------------------------------


@ledger_app.command("key")
@one_line_errors
def key_cmd(store: StoreOpt = DEFAULT_STORE) -> None:
    """Print the verifier key."""
    with _open(store) as led:
        if not led.verifiers:
            raise LedgerError("no key yet: run `accessproof init`")
        typer.echo(str(led.verifiers[0]))


@ledger_app.command("checkpoint")
@one_line_errors
def checkpoint_cmd(
    store: StoreOpt = DEFAULT_STORE,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the signed checkpoint here.")] = None,
) -> None:
    """Sign the current tree head (after proving it extends the previous one) and print it."""
    with _open(store) as led:
        row = led.checkpoint()
    if out:
        out.write_text(row.note)
    typer.echo(row.note, nl=False)


def _resolve(led: Ledger, ref: str, record_type: str | None) -> int:
    if ref.isdigit():
        return int(ref)
    found = led.find(ref, record_type)
    if not found:
        raise LedgerError(f"no sealed record {ref!r}" + (f" of type {record_type}" if record_type else ""))
    if len(found) > 1:
        raise LedgerError(f"record {ref!r} is sealed {len(found)} times (indexes {found[:5]}); pass --type")
    return found[0]


@ledger_app.command("proof")
@one_line_errors
def proof_cmd(
    record: Annotated[str, typer.Argument(help="Ledger index, or a record id.")],
    store: StoreOpt = DEFAULT_STORE,
    size: Annotated[int | None, typer.Option("--size", help="Tree size of an existing checkpoint.")] = None,
    record_type: Annotated[
        str | None, typer.Option("--type", help="Record type, if the id is ambiguous.")
    ] = None,
) -> None:
    """Print an inclusion proof of one record against a signed checkpoint, as one JSON object.

    Without --size the latest checkpoint is used, or a new one is signed if it does not cover the record.
    """
    with _open(store) as led:
        index = _resolve(led, record, record_type)
        if index >= led.size:
            raise LedgerError(f"no entry at index {index}: the ledger holds {led.size}")
        if size is None:
            latest = led.latest_checkpoint()
            row = latest if latest is not None and latest.size > index else led.checkpoint()
        else:
            found = led.checkpoint_at(size)
            if found is None:
                sizes = [c.size for c in led.checkpoints()][-5:]
                raise LedgerError(f"no checkpoint at size {size} (latest sizes: {sizes})")
            row = found
        if index >= row.size:
            raise LedgerError(f"index {index} is not in the tree of size {row.size}")
        entry = led.entry(index)
        proof = led.inclusion_proof(index, row.size)
    typer.echo(
        json.dumps(
            {
                "index": index,
                "tree_size": row.size,
                "entry": _b64(entry),
                "leaf_hash": leaf_hash(entry).hex(),
                "inclusion_path": [_b64(h) for h in proof],
                "checkpoint": row.note,
            },
            indent=2,
        )
    )


@ledger_app.command("consistency")
@one_line_errors
def consistency_cmd(
    old_size: Annotated[int, typer.Argument(help="The earlier tree size.")],
    new_size: Annotated[int | None, typer.Argument(help="The later tree size (default: current).")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Print a consistency proof between two tree sizes, as one JSON object."""
    with _open(store) as led:
        new = led.size if new_size is None else new_size
        if not 0 <= old_size <= new <= led.size:
            raise LedgerError(f"need 0 <= old size <= new size <= {led.size}")
        proof = led.consistency_proof(old_size, new)
        old_cp, new_cp = led.checkpoint_at(old_size), led.checkpoint_at(new)
        out = {
            "old_size": old_size,
            "new_size": new,
            "old_root": _b64(led.root(old_size)),
            "new_root": _b64(led.root(new)),
            "consistency_path": [_b64(h) for h in proof],
            "old_checkpoint": old_cp.note if old_cp else None,
            "new_checkpoint": new_cp.note if new_cp else None,
        }
    typer.echo(json.dumps(out, indent=2))


# -- retention -----------------------------------------------------------------------------------------


@retention_app.command("purge")
@one_line_errors
def purge_cmd(
    store: StoreOpt = DEFAULT_STORE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; change nothing.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Purge as of this ISO time (default: now).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who runs the purge (recorded).")] = "accessproof",
) -> None:
    """Delete payloads past retention and not under hold; the ledger records the purge and keeps verifying."""
    with _open(store) as led:
        if led.payloads is None:
            raise LedgerError("no payload store")
        report = purge(led, led.payloads, now=_time(now), dry_run=dry_run, by=by)
    verb = "would purge" if dry_run else "purged"
    typer.echo(f"{verb} {len(report.purge)} payloads as of {report.now}; {len(report.held)} kept under hold")
    for hold_id in sorted({*report.held_by, *report.coverage}):  # what each hold kept; a subject's records
        covers = report.coverage.get(hold_id)
        about = f"; subject {covers.subject} {covers.describe()}" if covers else ""
        echo(f"  {hold_id}: kept {report.held_by.get(hold_id, 0)} expired{about}")
    for ref in report.purge[:20]:
        echo(f"  {ref.idx} {ref.record_type} {ref.record_id}")
    if not dry_run and report.purge:
        compact_store(store)  # the database keeps freed bytes: rewrite so they are gone
        typer.echo(f"purge manifest sealed at index {report.manifest_index}; database compacted")


@hold_app.command("add")
@one_line_errors
def hold_add_cmd(
    reason: Annotated[str, typer.Option("--reason", help="Why (case, matter, request).")],
    by: Annotated[str, typer.Option("--by", help="Who sets the hold.")],
    store: StoreOpt = DEFAULT_STORE,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            help="Person or account the records are about (HR id, email, username, account id or name): "
            "covers their events, governance records, HR records and quarantined input.",
        ),
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Source, glob allowed (okta:*).")] = None,
    record_type: Annotated[str | None, typer.Option("--type", help="Record type (raw, event…).")] = None,
    time_from: Annotated[
        str | None, typer.Option("--from", help="Record time from (ISO, inclusive).")
    ] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Record time to (ISO, exclusive).")] = None,
) -> None:
    """Put matching records under legal hold (sealed in the ledger)."""
    with _open(store) as led:
        hold = add_hold(
            led,
            reason=reason,
            by=by,
            subject=subject,
            source=source,
            record_type=record_type,
            time_from=_time(time_from),
            time_to=_time(time_to),
        )
    echo(hold.describe())


@hold_app.command("list")
@one_line_errors
def hold_list_cmd(
    store: StoreOpt = DEFAULT_STORE,
    all_: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
) -> None:
    """List holds."""
    with _open(store) as led:
        holds = list_holds(led, include_released=all_)
        covers = subject_coverage(led, [h for h in holds if h.released is None])
    if not holds:
        typer.echo("no holds")
    for h in holds:
        released = (
            f" [released by {h.released['by']} {h.released['at']}: {h.released['reason']}]"
            if h.released
            else ""
        )
        echo(h.describe() + released)
        if h.hold_id in covers:
            echo(f"  {covers[h.hold_id].describe()}")


@hold_app.command("release")
@one_line_errors
def hold_release_cmd(
    hold_id: Annotated[str, typer.Argument(help="The hold to release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it ends.")],
    by: Annotated[str, typer.Option("--by", help="Who releases it.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Release a hold (sealed in the ledger); its records become purgeable once expired."""
    with _open(store) as led:
        idx = release_hold(led, hold_id, reason=reason, by=by)
    echo(f"released {hold_id} (ledger index {idx})")


def build_app() -> typer.Typer:
    """A standalone app with everything mounted as the main CLI would."""
    app = typer.Typer(no_args_is_help=True)
    app.command("init")(init_cmd)
    app.command("verify")(verify_cmd)
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(retention_app, name="retention")
    return app


__all__ = ["build_app", "init_cmd", "ledger_app", "retention_app", "verify_cmd"]
