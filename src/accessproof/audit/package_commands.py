"""Command line for audit packages: ``package_cmd`` and ``verify_package_cmd``, which the lead mounts as
``accessproof package`` and ``accessproof verify-package``. Thin shells over ``audit.package.build_package``
and ``audit.verify_package.verify_package``; errors are one line on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accessproof.output import echo, fail, one_line_errors, say


@one_line_errors
def package_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="The package zip to write.")],
    control: Annotated[str | None, typer.Option(
        "--control", help="Package a control: definition, latest sealed run, and each finding's evidence.")] = None,
    sample: Annotated[Path | None, typer.Option(
        "--sample", help="Package a sample file from `accessproof sample --out`: population, method, items.")] = None,
    person: Annotated[str | None, typer.Option(
        "--person", help="Package one person's lifecycle (person id, email, username or account).")] = None,
    since_checkpoint: Annotated[Path | None, typer.Option(
        "--since-checkpoint", help="A checkpoint note you already hold: the package proves the log only grew.")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")] = None,
) -> None:
    """Build an offline-verifiable audit package: evidence raw and normalised, inclusion proofs against one
    signed checkpoint, controls, findings, population and method, CSV/XLSX and an HTML workpaper."""
    from accessproof.audit.package import build_package
    from accessproof.store import open_store

    since = since_checkpoint.read_text(encoding="utf-8") if since_checkpoint else None
    open_store(store, read_only=True).close()  # a missing store is an error, not a new empty one
    s = open_store(store)
    try:
        result = build_package(s, out, control=control, sample=sample, person=person, since_checkpoint=since)
    finally:
        s.close()
    for w in result.warnings:
        say(w, label="warning:", style="yellow", err=True)
    echo(f"{result.path}: {result.items} items, {result.evidence} evidence records, {result.proofs} "
               f"inclusion proofs against tree size {result.tree_size}, {result.files} files, {result.bytes} bytes")


def verify_package_cmd(
    package: Annotated[Path, typer.Argument(help="The package zip (or the folder it was unpacked into).")],
    key: Annotated[str | None, typer.Option(
        "--key", help="The verifier key you hold (text or file); default: the key inside, with a warning.")] = None,
) -> None:
    """Check a package offline: file hashes against the signed manifest, every inclusion proof, the checkpoint
    signature, the consistency proof and the population; exit 0 only if all hold."""
    from accessproof.audit.verify_package import verify_package

    if not package.exists():
        fail(f"{package}: no such file")
    report = verify_package(package, key)  # a forged package names what it likes: printed as plain text
    for w in report.warnings:
        say(w, label="warning:", style="yellow", err=True)
    for f in report.failures:
        say(f, label="FAIL", style="red", err=True)
    echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def build_app() -> typer.Typer:
    """A standalone app with the commands mounted as the lead would."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.command("package")(package_cmd)
    app.command("verify-package")(verify_package_cmd)
    return app


__all__ = ["build_app", "package_cmd", "verify_package_cmd"]
