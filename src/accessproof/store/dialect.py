"""DuckDB SQL on other engines: linking, identity, controls and queries are written once, in DuckDB's
dialect, and run on PostgreSQL after ``to_backend``.

sqlglot translates the syntax. What it cannot know — the types DuckDB gives a value and how DuckDB prints
it — is settled here, so that a control gives the same rows, the same finding ids and the same reasons on
both engines:

* ``CAST(x AS VARCHAR)`` prints as DuckDB prints: a double ``24.0`` (PostgreSQL says ``24``), through the
  compatibility function ``duckdb_text`` (overloaded per type, in ``pg_compat.sql``);
* ``a / b`` divides as DuckDB divides, in double precision (PostgreSQL truncates integers);
* ``round(double, n)`` rounds the exact binary value half away from zero, like DuckDB; ``round(x)`` too;
* ``LIKE`` has no escape character (PostgreSQL's default is a backslash);
* regular expressions are RE2's (``\\b`` is PostgreSQL's ``\\y``): ``regexp_extract`` is a compatibility
  function, ``regexp_matches`` a ``~`` on the translated pattern;
* ``unnest(CAST(CAST(x AS JSON) AS VARCHAR[]))`` is ``json_array_elements_text``; ``json_object`` and
  ``to_json`` write JSON as DuckDB writes it (``duckdb_json_object``, ``duckdb_json``: no spaces, DuckDB's
  number layout, timestamps as text); ``list_sort`` / ``list_distinct`` / ``sha256`` of text are
  compatibility functions too.

Placeholders stay positional (``?`` becomes ``%s``; the PostgreSQL store numbers them ``$1…``). Text is
compared byte-wise on both engines only when the PostgreSQL database's collation is ``C`` or ``C.UTF-8``
(``min``, ``max``, ``ORDER BY`` and ``row_number`` ties on text depend on it); ``compat_problems`` says
so. Sessions must share DuckDB's time zone (the PostgreSQL store sets UTC): timestamps print in it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

COMPAT_FILE = "pg_compat.sql"
_STRING_TYPES = (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR)
_DOUBLE = exp.DataType.build("DOUBLE PRECISION", dialect="postgres")


class DialectError(ValueError):
    """SQL that cannot be expressed in the target dialect; the message is one line."""


@lru_cache(maxsize=4096)
def to_backend(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB's dialect, ``?`` placeholders) as the engine ``dialect`` runs it."""
    if dialect == "duckdb":
        return sql
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
        if dialect in ("postgres", "postgresql"):
            trees = [_rewrite(t) for t in trees]
            dialect = "postgres"
        out = [t.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE) for t in trees]
    except SqlglotError as e:
        first = sql.strip().splitlines()[0][:80] if sql.strip() else ""
        raise DialectError(f"cannot translate to {dialect}: {str(e).splitlines()[0]} (in: {first})") from None
    return ";\n".join(out)


def _rewrite(node: exp.Expression) -> exp.Expression:
    """``node`` with every node below it rewritten for PostgreSQL, children before parents."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _rewrite(value))
        elif isinstance(value, list):
            node.set(key, [_rewrite(v) if isinstance(v, exp.Expression) else v for v in value])
    return _postgres(node)


def _postgres(node: exp.Expression) -> exp.Expression:
    """One node of a DuckDB tree rewritten so PostgreSQL computes what DuckDB computes."""
    if isinstance(node, exp.Cast) and _to_string(node) and not isinstance(node.this, exp.Literal | exp.Null):
        return exp.Anonymous(this="duckdb_text", expressions=[node.this])
    if isinstance(node, exp.Decode):  # DuckDB's decode(blob) is UTF-8 text; PostgreSQL's decode is not it
        return exp.Anonymous(this="convert_from", expressions=[node.this, exp.Literal.string("UTF8")])
    if isinstance(node, exp.JSONExtractScalar) and not (
            isinstance(node.this, exp.Cast) and node.this.to.is_type(exp.DataType.Type.JSON)):
        node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("JSON")))  # text is not json there
        return node
    if isinstance(node, exp.Div):
        left = node.this
        if not (isinstance(left, exp.Div)
                or (isinstance(left, exp.Cast) and left.to.is_type(exp.DataType.Type.DOUBLE))):
            left = exp.Cast(this=left, to=_DOUBLE.copy())
        return exp.Div(this=left, expression=node.expression)
    if isinstance(node, exp.Round):  # as written (sqlglot would detour through numeric)
        decimals = node.args.get("decimals")
        return exp.Anonymous(this="round", expressions=[node.this, decimals or exp.Literal.number(0)])
    if isinstance(node, exp.Like | exp.ILike) and not isinstance(node.parent, exp.Escape):
        return exp.Escape(this=node, expression=exp.Literal.string(""))
    if isinstance(node, exp.RegexpExtract):
        args = [node.this, node.expression]
        if node.args.get("group") is not None:
            args.append(node.args["group"])
        return exp.Anonymous(this="regexp_extract", expressions=args)
    if isinstance(node, exp.RegexpLike):
        pattern = exp.Anonymous(this="re2_to_are", expressions=[node.expression])
        return exp.RegexpLike(this=node.this, expression=pattern)
    if isinstance(node, exp.Explode | exp.Unnest) and _json_list(node):
        return exp.Anonymous(this="json_array_elements_text", expressions=[_json_list(node)])
    if isinstance(node, exp.JSONObject):
        args: list[exp.Expression] = []
        for kv in node.expressions:
            args += [kv.this, exp.Anonymous(this="duckdb_json", expressions=[kv.expression])]
        return exp.Anonymous(this="duckdb_json_object", expressions=args)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "to_json":
        return exp.Cast(this=exp.Anonymous(this="duckdb_json", expressions=node.expressions),
                        to=exp.DataType.build("JSON"))
    if isinstance(node, exp.ArraySort):
        return exp.Anonymous(this="list_sort", expressions=[node.this])
    if isinstance(node, exp.ArrayDistinct):
        return exp.Anonymous(this="list_distinct", expressions=[node.this])
    return node


def _to_string(cast: exp.Cast) -> bool:
    to = cast.to
    return to is not None and to.this in _STRING_TYPES and not to.expressions


def _json_list(node: exp.Expression) -> exp.Expression | None:
    """``x`` of ``unnest(CAST(CAST(x AS JSON) AS VARCHAR[]))`` (a JSON array's elements as text)."""
    inner = node.this if isinstance(node, exp.Explode) else (node.expressions[0] if node.expressions else None)
    if (isinstance(inner, exp.Cast) and inner.to.is_type(exp.DataType.Type.ARRAY)
            and isinstance(inner.this, exp.Cast) and inner.this.to.is_type(exp.DataType.Type.JSON)):
        return inner.this
    return None


# ---------------------------------------------------------------- compatibility functions


def compat_sql() -> str:
    """The DDL of the PostgreSQL compatibility functions (``pg_compat.sql``)."""
    return resources.files("accessproof.store").joinpath(COMPAT_FILE).read_text(encoding="utf-8")


def compat_digest() -> str:
    return hashlib.sha256(compat_sql().encode()).hexdigest()[:16]


_MARK = "duckdb_text(double precision)"


def install_compat(conn: Any) -> bool:
    """Create the compatibility functions in the current schema of ``conn`` (a psycopg connection) unless
    this version of them is already there; returns whether it installed them. Safe to call on every open:
    one catalogue lookup when nothing changed; writers of one schema are serialised by an advisory lock."""
    digest = compat_digest()
    if _installed(conn) == digest:
        return False
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('accessproof:compat:' || current_schema()))")
        if _installed(conn) == digest:
            return False
        conn.execute(compat_sql())
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute(f"COMMENT ON FUNCTION {_quote(schema)}.{_MARK} IS 'accessproof compat {digest}'")
    return True


def _installed(conn: Any) -> str | None:
    row = conn.execute(
        "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema() AND p.proname = 'duckdb_text' "
        "AND p.proargtypes = '701'::oidvector").fetchone()
    text = row[0] if row else None
    return text.rsplit(" ", 1)[-1] if text and text.startswith("accessproof compat ") else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compat_problems(conn: Any) -> list[str]:
    """What in a PostgreSQL session would make results differ from DuckDB's (empty when nothing)."""
    out = []
    collation = conn.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()[0]
    if collation not in ("C", "POSIX", "C.UTF-8", "C.utf8"):
        out.append(f"database collation {collation} orders text unlike DuckDB (byte order); use C or C.UTF-8")
    if _installed(conn) != compat_digest():
        out.append("compatibility functions missing or outdated (run store.dialect.install_compat)")
    return out
