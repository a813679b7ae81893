"""Small SQL helpers shared by identity resolution and linking.

All statements are written in DuckDB's dialect in forms that run on PostgreSQL after
``store.dialect.to_backend`` (tests compare the results on the demo): no ``CREATE OR REPLACE``, no
``arg_max``, every subquery in ``FROM`` named, every ``string_agg`` ordered, no views left on a table that
is rebuilt; tables are rebuilt with ``DROP`` + ``CREATE TABLE … AS``. Small configuration tables (aliases,
scope rules, patterns) are loaded with plain ``INSERT … VALUES`` and bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from accessproof.model import GRANTING_ACTIONS, REMOVING_ACTIONS
from accessproof.store.base import Store

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def replace_table(store: Store, name: str, select_sql: str, params: Sequence[Any] | None = None) -> None:
    """(Re)build ``name`` from a SELECT."""
    store.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    store.execute(f"CREATE TABLE {ident(name)} AS {select_sql}", params)


def load_table(store: Store, name: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]],
               chunk: int = 200) -> int:
    """(Re)create a small table and insert ``rows`` (config data: aliases, rules, patterns)."""
    store.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    store.execute(f"CREATE TABLE {ident(name)} ({', '.join(f'{ident(c)} {t}' for c, t in columns)})")
    rows = [tuple(r) for r in rows]
    width = len(columns)
    one = "(" + ", ".join("?" * width) + ")"
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        store.execute(f"INSERT INTO {name} VALUES {', '.join([one] * len(part))}",
                      [v for r in part for v in r])
    return len(rows)


def table_exists(store: Store, name: str) -> bool:
    """Whether the store's own schema holds table (or view) ``name`` (a server holds many schemas)."""
    rows = store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                       "AND table_schema = current_schema()", [name])
    return bool(rows and rows[0][0])


def columns(store: Store, name: str) -> list[tuple[str, str]]:
    """(column, type) of table ``name`` as this session sees it, temporary tables included; list types end
    in ``[]`` (``VARCHAR[]`` in DuckDB, ``TEXT[]`` in PostgreSQL)."""
    if store.dialect == "postgres":  # the relation the name resolves to (a temporary table first)
        rows = store.query("""
          SELECT attname, upper(format_type(atttypid, atttypmod)) FROM pg_attribute
          WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped ORDER BY attnum""", [name])
    else:
        rows = store.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                           "ORDER BY ordinal_position", [name])
    return [(r[0], str(r[1])) for r in rows]


def count(store: Store, name: str, where: str = "") -> int:
    return int(store.query(f"SELECT count(*) FROM {ident(name)} {('WHERE ' + where) if where else ''}")[0][0])


def in_list(values: Iterable[str]) -> str:
    """A SQL list of string literals (values come from code or validated config, quotes doubled)."""
    vals = sorted({str(v) for v in values})
    if not vals:
        return "(NULL)"
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in vals) + ")"


GRANTING = in_list(str(a) for a in GRANTING_ACTIONS)
REMOVING = in_list(str(a) for a in REMOVING_ACTIONS)


def json_text(column: str, path: str) -> str:
    """The text at a dotted ``path`` inside a JSON text column (``tags.owner``)."""
    parts = [p for p in path.split(".") if p]
    for p in parts:
        if not re.match(r"^[A-Za-z0-9_@-]+$", p):
            raise ValueError(f"unsupported JSON path element {p!r} in {path!r}")
    return f"json_extract_string(CAST({column} AS JSON), '$.{'.'.join(parts)}')"


def json_list(column: str) -> str:
    """The elements (text) of a JSON array in a text column, as a set-returning expression."""
    return f"unnest(CAST(CAST({column} AS JSON) AS VARCHAR[]))"


def hours(a: str, b: str) -> str:
    """Hours from ``a`` to ``b`` (both timestamps), as a double."""
    return f"round((epoch({b}) - epoch({a})) / 3600.0, 3)"


def email_stages(expr: str, *, lower: bool = True, strip_plus: bool = True) -> tuple[str, str, str]:
    """SQL for the exact, case-normalised and plus-tag-stripped forms of an email-shaped ``expr``.

    The domain-alias stage needs a join (``domain_of`` / ``local_of`` help with it).
    """
    exact = f"trim({expr})"
    low = f"lower({exact})" if lower else exact
    if strip_plus:
        local = f"split_part({low}, '@', 1)"
        plus = (f"(CASE WHEN strpos({local}, '+') > 1 THEN substr({local}, 1, strpos({local}, '+') - 1) "
                f"|| '@' || split_part({low}, '@', 2) ELSE {low} END)")
    else:
        plus = low
    return exact, low, plus


def local_of(expr: str) -> str:
    return f"split_part({expr}, '@', 1)"


def domain_of(expr: str) -> str:
    return f"split_part({expr}, '@', 2)"
