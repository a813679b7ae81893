"""Writing results for people, terminals and spreadsheets, safely: the one place the commands print through.

Log content is attacker-controlled, and so is everything derived from it (names, groups, file names, quarantine
reasons, findings, hold reasons…). Three rules follow:

- **Spreadsheets.** A CSV cell starting with ``= + - @`` (or a tab / carriage return) is executed as a formula
  by spreadsheet programs, so such values are prefixed with a single quote (OWASP's recommendation for CSV
  injection), and control characters other than tab and line feed are made visible: :func:`cell`,
  :func:`to_csv`. JSON Lines escape control characters by themselves (``\\u001b``).
- **Rich.** A value is never read as Rich markup: ``[/x]`` would raise ``MarkupError`` (a traceback) and
  ``[bold red]…`` or ``[link=…]`` would style the terminal. Values go into tables and messages as
  :class:`rich.text.Text`, which Rich never parses (:func:`plain`, :func:`emit`, :func:`say`, :func:`fail`).
- **Terminals.** Control characters, ANSI escape sequences and bidirectional overrides never reach the
  terminal raw: they are shown as visible escapes (``\\x1b`` for ESC, ``\\r``, ``\\u202e``…): :func:`safe_text`.

The commands print tables, JSON Lines, CSV and one-line errors through :func:`emit`, :func:`say`, :func:`fail`
and :func:`one_line_errors`. Rich and Typer are imported only when something is printed, so the library
modules that write CSV (matrix, packages) do not pull them in. HTML escaping lives with the HTML writers.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# C0 and C1 controls (ESC starts every ANSI sequence; CR rewrites a line), DEL, the Unicode line and paragraph
# separators, bidirectional marks/overrides/isolates (they reorder what is shown) and lone surrogates (they
# cannot be encoded for the terminal at all).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
# In a spreadsheet cell a tab or a line break is text; the rest has no place there (XLSX cannot even hold it)
# and would reach a terminal that CSV is printed to.
_CSV_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

F = TypeVar("F", bound=Callable[..., Any])


class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


# ---------------------------------------------------------------------------------------------- values


def _visible(m: re.Match[str]) -> str:
    ch = m.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def safe_text(value: Any) -> str:
    """``value`` as text a terminal shows as it is: every control character, escape sequence start,
    bidirectional override or lone surrogate replaced by a visible escape (ESC → ``\\x1b``)."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_visible, text)


def _flat(value: Any) -> Any:
    """A value for one cell: None empty, lists and objects as JSON, times in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def shown(value: Any) -> str:
    """A value as a table cell shows it (:func:`safe_text` of its flat form)."""
    return safe_text(_flat(value))


def plain(value: Any, style: str = "") -> Text:
    """A value as a Rich ``Text``: never parsed as markup, control characters made visible."""
    from rich.text import Text

    return Text(shown(value), style=style)


def cell(value: Any) -> Any:
    """A value made safe for a spreadsheet cell: never a formula; control characters other than tab and line
    feed (ESC, CR…) shown as visible escapes."""
    value = _flat(value)
    if isinstance(value, str):
        value = _CSV_UNSAFE.sub(_visible, value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([cell(v) for v in row])
    return buf.getvalue()


def to_jsonl(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = []
    for row in rows:
        out.append(orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode())
    return "\n".join(out) + ("\n" if out else "")


# ---------------------------------------------------------------------------------------------- printing


def console(stderr: bool = False) -> Console:
    """A Rich console made now (it reads the terminal width, or ``COLUMNS``, when made)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def emit(rows: Sequence[Mapping[str, Any] | Sequence[Any]], fmt: str, columns: Sequence[str] | None = None,
         title: str | None = None, *, limit: int = 0) -> None:
    """Rows (mappings, or sequences in ``columns`` order) to standard output as a Rich table, JSON Lines,
    formula-safe CSV or (``fmt == "json"``) one JSON array of the rows as they are.

    Without ``columns`` a mapping's keys are the columns. In a table every cell and the title are plain text
    (:func:`plain`); an empty table is followed by ``(none)``. ``limit`` keeps the first rows only (0: all).
    """
    import sys

    if limit:
        rows = rows[:limit]
    cols = list(columns) if columns is not None else (
        list(rows[0]) if rows and isinstance(rows[0], Mapping) else [])
    tuples = [tuple(r.get(c) for c in cols) if isinstance(r, Mapping) else tuple(r) for r in rows]
    fmt = str(fmt)
    if fmt == "json":
        whole = [dict(r) if isinstance(r, Mapping) else dict(zip(cols, r, strict=True)) for r in rows]
        sys.stdout.write(json.dumps(whole, default=str, indent=2) + "\n")
    elif fmt == Format.jsonl:
        sys.stdout.write(to_jsonl(cols, tuples))
    elif fmt == Format.csv:
        sys.stdout.write(to_csv(cols, tuples))
    else:
        from rich.table import Table

        t = Table(title=plain(title) if title is not None else None)
        for c in cols:
            t.add_column(plain(c), overflow="fold")
        for r in tuples:
            t.add_row(*(plain(v) for v in r))
        out = console()
        out.print(t)
        if not tuples:
            out.print("(none)")


def say(message: Any, *, label: str = "", style: str = "", err: bool = False) -> None:
    """One message as plain text (never markup), after an optional styled ``label`` (e.g. ``warning:``)."""
    from rich.text import Text

    text = Text.assemble((label, style), " " if label else "", shown(message))
    console(stderr=err).print(text, soft_wrap=True)


def echo(message: Any, *, err: bool = False) -> None:
    """One line for scripts as well as people (no Rich), its control characters made visible."""
    import typer

    typer.echo(safe_text(message), err=err)


def first_line(message: Any, default: str = "error") -> str:
    lines = [x for x in str(message).splitlines() if x.strip()]
    return lines[0] if lines else default


def fail(message: Any, code: int = 2) -> NoReturn:
    """The one-line error: ``error: …`` (its first line, as plain text) on standard error, exit ``code``."""
    import typer

    say(first_line(message), label="error:", style="red", err=True)
    raise typer.Exit(code)


def error_message(exc: BaseException) -> str | None:
    """The one-line message for an error the user caused (bad input, a missing or locked store, a database
    refusing a query), or None for anything else (a bug, which must not be hidden)."""
    import sys

    from accessproof.ledger.ledger import LedgerError
    from accessproof.store import StoreError

    if isinstance(exc, OSError | ValueError | StoreError | LedgerError):
        return first_line(exc, type(exc).__name__)
    duckdb = sys.modules.get("duckdb")
    is_database = (duckdb is not None and isinstance(exc, duckdb.Error)) or \
        type(exc).__module__.startswith("psycopg")  # PostgreSQL's errors, without importing psycopg
    if not is_database:
        return None
    first = first_line(exc, type(exc).__name__)
    hint = " (is 'accessproof serve' running on this store?)" if "lock" in first.lower() else ""
    return f"database: {first}{hint}"


def one_line_errors(fn: F) -> F:
    """A command whose bad input, store or database errors end as one line on standard error, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            message = error_message(exc)
            if message is None:
                raise
            fail(message)

    return wrapper  # type: ignore[return-value]
