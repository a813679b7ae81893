"""Controls as code: each control is a folder with ``control.yaml`` (metadata) and ``query.sql`` (one query).

The query is written once in DuckDB SQL and returns one row per resource of the control's population:

* ``resource`` — a stable name of what was tested (an event, an account, a person in a system…);
* ``status`` — ``ok`` | ``alarm`` | ``skip`` | ``info`` | ``error``;
* ``reason`` — one line a person can act on;
* ``evidence_ids`` — a list of record ids (event ids, governance record ids, raw ids) that justify the row;
* any other columns are dimensions (``person_id``, ``system``, ``account_id``, ``entitlement``, ``scope``…).

Parameters are named ``$name`` in the SQL (declared with defaults in the YAML; ``$as_of`` — the data's "now",
the latest event time unless given — and ``$period_start`` are always there) and are bound, never pasted:
``bind`` turns them into positional ``?`` with a value list. ``transpile`` gives the query in another
engine's dialect through sqlglot. Users add controls in their own folders (``controls_dir``) with the same
layout, without touching the package; a folder's control replaces a built-in one of the same id.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlglot.errors import ErrorLevel

from accessproof.store.base import Store

FRAMEWORKS = ("soc2", "iso27001_2022", "nist_800_53_r5", "cfr_part11", "eu_gmp_annex11", "sox_itgc", "hipaa")
STATUSES = ("ok", "alarm", "skip", "info", "error")
BUILTIN_PARAMS = ("as_of", "period_start")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ControlError(ValueError):
    """A control that cannot be loaded or run; the message is one line."""


class Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Any
    description: str = ""


class Control(BaseModel):
    """A control's metadata (``control.yaml``) and its query (``query.sql``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    requirement: str
    owner: str
    severity: Literal["critical", "high", "medium", "low", "info"]
    stage: Literal["request", "approval", "provisioning", "use", "review", "mover", "deprovisioning",
                   "exception", "supplier", "identity", "credential", "privileged"]
    layer: Literal["policy", "workflow", "enforcement"]
    frequency: Literal["continuous", "daily", "weekly", "monthly", "quarterly", "annual"]
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    evidence_sources: list[str] = Field(default_factory=list)
    retention_class: str
    frameworks: dict[str, list[str]]
    tags: list[str] = Field(default_factory=list)
    #: a governance exception may suppress this control's findings (never for the exception controls)
    exceptable: bool = True
    sql: str = ""
    path: str | None = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _params(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (p if isinstance(p, dict) and "default" in p else {"default": p}) for k, p in v.items()}
        return v

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = [k for k in v if k not in FRAMEWORKS]
        if bad:
            raise ValueError(f"unknown framework(s) {', '.join(bad)}; known: {', '.join(FRAMEWORKS)}")
        return v

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.parameters.items()}

    @property
    def digest(self) -> str:
        body = json.dumps(self.model_dump(exclude={"path"}), sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def mappings(self) -> list[str]:
        return [f"{fw}:{i}" for fw, ids in self.frameworks.items() for i in ids]


# ---------------------------------------------------------------- SQL: parameters and dialects

_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$([A-Za-z_][A-Za-z0-9_]*)""", re.S)


def _scan(sql: str) -> Iterable[tuple[str, int, int]]:
    """(name, start, end) of each ``$name`` outside string literals, quoted identifiers and comments."""
    for m in _TOKENS.finditer(sql):
        if m.group(1):
            yield m.group(1), m.start(), m.end()


def parameters_used(sql: str) -> list[str]:
    """Names of the ``$parameters`` a query uses, in order of first use."""
    seen: list[str] = []
    for name, _, _ in _scan(sql):
        if name not in seen:
            seen.append(name)
    return seen


def bind(sql: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """``$name`` → positional ``?`` and the values in order. A name without a value is an error."""
    out, params, last = [], [], 0
    for name, start, end in _scan(sql):
        if name not in values:
            raise ControlError(f"parameter ${name} has no value")
        out.append(sql[last:start])
        out.append("?")
        params.append(values[name])
        last = end
    out.append(sql[last:])
    return "".join(out), params


def transpile(sql: str, dialect: str) -> str:
    """A control query (DuckDB SQL) in ``dialect`` (any sqlglot dialect: postgres, trino, spark…). For
    PostgreSQL it is exactly what a PostgreSQL store runs (``store.dialect.to_backend``: DuckDB's meaning
    kept with compatibility functions); other dialects get sqlglot's plain translation.

    Raises ``ControlError`` when sqlglot cannot express part of it in that dialect."""
    if dialect == "duckdb":
        return sql
    if dialect in ("postgres", "postgresql"):
        from accessproof.store.dialect import DialectError, to_backend

        try:
            return to_backend(sql, "postgres")
        except DialectError as e:
            raise ControlError(str(e)) from None
    try:
        out = sqlglot.transpile(sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as e:
        raise ControlError(f"cannot transpile to {dialect}: {str(e).splitlines()[0]}") from None
    return ";\n".join(out)


# ---------------------------------------------------------------- catalogue

def builtin_dir() -> Path:
    return Path(str(resources.files("accessproof.controls").joinpath("catalog")))


def load_control(folder: Path) -> Control:
    meta, query = folder / "control.yaml", folder / "query.sql"
    try:
        data = yaml.load(meta.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
        sql = query.read_text(encoding="utf-8")
    except OSError as e:
        raise ControlError(f"{folder}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ControlError(f"{meta}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ControlError(f"{meta}: expected a mapping")
    try:
        c = Control.model_validate({**data, "sql": sql, "path": str(folder)})
    except ValidationError as e:
        first = e.errors()[0]
        raise ControlError(f"{meta}: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
    if c.id != folder.name:
        raise ControlError(f"{meta}: id {c.id!r} differs from its folder name {folder.name!r}")
    unknown = [p for p in parameters_used(sql) if p not in c.parameters and p not in BUILTIN_PARAMS]
    if unknown:
        raise ControlError(f"{query}: parameter(s) {', '.join('$' + p for p in unknown)} not declared in "
                           "control.yaml")
    return c


def load_catalogue(controls_dir: str | Path | Sequence[str | Path] | None = None, *,
                   builtin: bool = True) -> dict[str, Control]:
    """Every control: the built-in catalogue, then each folder of ``controls_dir`` (same layout)."""
    dirs: list[Path] = [builtin_dir()] if builtin else []
    if controls_dir is not None:
        extra = [controls_dir] if isinstance(controls_dir, str | Path) else list(controls_dir)
        for d in extra:
            p = Path(d)
            if not p.is_dir():
                raise ControlError(f"{p}: not a directory of controls")
            dirs.append(p)
    out: dict[str, Control] = {}
    for d in dirs:
        if (d / "control.yaml").exists():
            c = load_control(d)
            out[c.id] = c
            continue
        for sub in sorted(p for p in d.iterdir() if p.is_dir() and (p / "control.yaml").exists()):
            c = load_control(sub)
            out[c.id] = c
    return out


def select_controls(catalogue: dict[str, Control], select: str | Sequence[str] | None) -> list[Control]:
    """Controls matching any selector: an id (``*`` wildcards), a framework (``soc2``), a framework
    requirement (``soc2:CC6.2``, ``nist_800_53_r5:AC-2``; a requirement also selects its enhancements), a
    tag (``tag:sod`` or the bare tag), a layer (``layer:policy``) or a stage (``stage:deprovisioning``)."""
    controls = sorted(catalogue.values(), key=lambda c: c.id)
    if not select:
        return controls
    sels = [select] if isinstance(select, str) else list(select)
    sels = [s.strip() for x in sels for s in str(x).split(",") if s.strip()]
    picked: dict[str, Control] = {}
    for s in sels:
        hits = [c for c in controls if _matches(c, s)]
        if not hits:
            raise ControlError(f"selector {s!r} matches no control (ids, frameworks {', '.join(FRAMEWORKS)}, "
                               "tag:…, layer:…, stage:…)")
        for c in hits:
            picked[c.id] = c
    return sorted(picked.values(), key=lambda c: c.id)


def _matches(c: Control, s: str) -> bool:
    low = s.lower()
    if fnmatch.fnmatchcase(c.id, low):
        return True
    if low in FRAMEWORKS:
        return bool(c.frameworks.get(low))
    kind, _, value = s.partition(":")
    kind = kind.lower()
    if kind in FRAMEWORKS and value:
        v = value.lower()
        return any(i.lower() == v or i.lower().startswith(v + "(") or i.lower().startswith(v + " ")
                   for i in c.frameworks.get(kind, []))
    if kind == "tag":
        return value in c.tags
    if kind == "layer":
        return c.layer == value
    if kind == "stage":
        return c.stage == value
    return s in c.tags


# ---------------------------------------------------------------- running

@dataclass
class Assessment:
    """One assessment: a run per control (``runs``, the ``control_runs`` rows, ready to be sealed)."""

    assessment_id: str
    as_of: datetime | None
    policy_digest: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] == "error"]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for r in self.runs:
            for s in STATUSES:
                out[s] += int(r.get(s) or 0)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"assessment_id": self.assessment_id, "as_of": self.as_of, "policy_digest": self.policy_digest,
                "seconds": round(self.seconds, 3), "counts": self.counts(), "runs": self.runs}


def data_times(store: Store) -> tuple[datetime | None, datetime | None]:
    """(earliest, latest) event time: the period the data covers; the latest is the default ``as_of``."""
    row = store.query("SELECT min(time), max(time) FROM events")
    return (row[0][0], row[0][1]) if row else (None, None)


def parameter_values(control: Control, overrides: dict[str, Any] | None, builtins: dict[str, Any]
                     ) -> dict[str, Any]:
    """Defaults, then overrides naming a declared parameter: ``name`` (every control declaring it), then
    ``<control id>.name`` (this control only; it wins)."""
    values = {**control.defaults}
    items = sorted((overrides or {}).items(), key=lambda kv: "." in kv[0])
    for k, v in items:
        cid, dot, name = k.rpartition(".")
        if dot and cid != control.id:
            continue
        if name in control.parameters:
            values[name] = _coerce(v, control.parameters[name].default)
    values.update(builtins)
    return values


def _coerce(value: Any, default: Any) -> Any:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list):
        return [x.strip() for x in value.split(",") if x.strip()]
    return value


def run_query(store: Store, control: Control, values: dict[str, Any], table: str = "_ctl_out") -> float:
    """Materialise the control's rows in temp table ``table``; returns the seconds it took."""
    sql, params = bind(control.sql, values)
    t = time.perf_counter()
    store.execute(f"DROP TABLE IF EXISTS {table}")
    store.execute(f"CREATE TEMP TABLE {table} AS {sql}", params)
    return time.perf_counter() - t


def assess(store: Store, select: str | Sequence[str] | None = None, *,
           controls_dir: str | Path | Sequence[str | Path] | None = None,
           params: dict[str, Any] | None = None, policy: Any = None, as_of: datetime | None = None,
           config: Any = None, catalogue: dict[str, Control] | None = None, relink: bool = False) -> Assessment:
    """Run the selected controls and record the results.

    Links the store first if it has not been linked (``relink=True``: always, e.g. after new ingests),
    loads the access ``policy`` (default: the packaged demo policy) into ``policy_*`` tables, builds the
    shared ``ctl_*`` views, then per control, in one transaction: runs the query, stores every row in ``control_results``, a ``control_runs`` row (population, counts by status,
    parameters, policy digest, a digest of the results) and updates ``findings`` (new alarms open, alarms
    seen again keep their first_seen, findings no longer alarming are resolved, resolved ones that alarm
    again reopen; findings inside an approved, unexpired exception's scope are ``excepted``).
    ``params`` overrides parameters: ``{"revocation_sla_hours": 48}`` for every control declaring it,
    ``{"dormant_account.dormant_days": 30}`` for one control. A control whose query fails gets a run with
    status ``error`` and its message; the others still run.
    """
    from accessproof.controls import findings as F
    from accessproof.controls.policy import as_policy, load_policy_tables
    from accessproof.controls.prelude import build_prelude, ensure_linked

    t_all = time.perf_counter()
    catalogue = catalogue if catalogue is not None else load_catalogue(controls_dir)
    chosen = select_controls(catalogue, select)
    if relink:
        from accessproof.linking.link import link_all

        link_all(store, config)
    else:
        ensure_linked(store, config)
    pol = as_policy(policy)
    store.execute("BEGIN TRANSACTION")
    try:
        load_policy_tables(store, pol)
        build_prelude(store, config)
        F.ensure_tables(store)
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    period_start, horizon = data_times(store)
    as_of = as_of or horizon or datetime.now(UTC)
    builtins = {"as_of": as_of, "period_start": period_start or as_of}
    assessment = Assessment(assessment_id=uuid.uuid4().hex[:16], as_of=as_of, policy_digest=pol.digest)
    for control in chosen:
        values = parameter_values(control, params, builtins)
        run = F.new_run(assessment, control, values)
        # one transaction per control: its rows, findings and run row land together (and the write-ahead
        # log is synced once, not once per statement); a failing query rolls back only its own control
        store.execute("BEGIN TRANSACTION")
        try:
            run["query_seconds"] = round(run_query(store, control, values), 4)
            F.record_results(store, control, run)
            F.update_findings(store, control, run)
            run["status"] = "completed"
        except Exception as e:
            store.execute("ROLLBACK")
            store.execute("BEGIN TRANSACTION")
            run["status"] = "error"
            run["error_message"] = str(e).splitlines()[0][:500] if str(e) else type(e).__name__
            run["error"] = 1
        store.execute("DROP TABLE IF EXISTS _ctl_out")
        F.finish_run(store, run)
        store.execute("COMMIT")
        assessment.runs.append(run)
    assessment.seconds = time.perf_counter() - t_all
    return assessment
