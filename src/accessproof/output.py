"""Writing results for people and spreadsheets, safely.

Log content is attacker-controlled. A CSV cell starting with ``= + - @`` (or a tab / carriage return) is
executed as a formula by spreadsheet programs, so such values are prefixed with a single quote (OWASP's
recommendation for CSV injection). HTML escaping lives with the HTML writers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A value made safe for a spreadsheet cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
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
