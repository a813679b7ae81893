"""Command line for the traceability matrix: ``matrix_cmd``, which the lead mounts as ``accessproof matrix``::

    app.command("matrix", help="Requirement → control → sources → owner → retention → result → findings → "
                "exceptions, as CSV, XLSX, HTML, JSON or OSCAL.")(matrix_cmd)

``build_app()`` does that for tests and standalone use. Errors are one line on stderr, exit code 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from accessproof.output import echo, one_line_errors
from accessproof.store import open_store

FORMATS = ("csv", "xlsx", "html", "json", "oscal")


def render(store: Any, fmt: str, *, controls_dir: list[Path] | None = None, import_ap: str | None = None
           ) -> tuple[bytes, Any]:
    """(the output in ``fmt``, the matrix) for an open store; ValueError for an unknown format or a store
    without any control run."""
    from accessproof.audit import matrix as M

    fmt = fmt.lower().strip()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    m = M.build_matrix(store, controls_dir=controls_dir or None)
    if not m.runs:
        raise ValueError("no control has been run on this store yet (run 'accessproof assess' first)")
    if fmt == "xlsx":
        return M.to_xlsx(m), m
    if fmt == "oscal":
        from accessproof.audit.oscal import to_oscal_json

        text = to_oscal_json(store, m, import_ap=import_ap)
    else:
        text = {"csv": M.to_csv, "html": M.to_html, "json": M.to_json}[fmt](m)
    return text.encode("utf-8"), m


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (no half-written output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@one_line_errors
def matrix_cmd(
    store: Annotated[str | None, typer.Option(
        "--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="csv | xlsx | html | json | oscal (OSCAL assessment results, JSON).")] = "csv",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write to FILE (default: standard output; xlsx needs a file).")] = None,
    controls_dir: Annotated[list[Path] | None, typer.Option(
        "--controls-dir", help="A folder of your own controls (<id>/control.yaml + query.sql); repeatable.")] = None,
    import_ap: Annotated[str | None, typer.Option(
        "--import-ap", help="OSCAL only: href of your assessment plan (default: a back-matter placeholder).")] = None,
) -> None:
    """Traceability matrix: requirement → control → workflow source → evidence sources → owner → retention →
    latest result → open findings → exceptions, one row per (requirement, control) pair."""
    fmt = (fmt or "").lower().strip()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    if fmt == "xlsx" and out is None:
        raise ValueError("--format xlsx needs --out FILE")
    s = open_store(store, read_only=True)
    try:
        data, m = render(s, fmt, controls_dir=controls_dir, import_ap=import_ap)
    finally:
        s.close()
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    _write(out, data)
    sm = m.summary
    echo(f"{fmt}: {sm['rows']} requirement × control rows ({sm['controls']} controls, "
               f"{sm['open_findings']} open findings, {sm['exceptions']} exceptions) → {out}")


def build_app() -> typer.Typer:
    """A standalone app with the command mounted as the lead would."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def _root() -> None:
        """accessproof (matrix only)."""

    app.command("matrix")(matrix_cmd)
    return app


__all__ = ["FORMATS", "build_app", "matrix_cmd", "render"]
