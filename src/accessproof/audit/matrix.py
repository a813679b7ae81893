"""The traceability matrix: requirement → control → workflow source → evidence sources → owner → retention →
latest result → open findings → exceptions.

``build_matrix(store)`` reads the control catalogue and the tables an assessment leaves behind
(``control_runs``, ``findings``, the governance exceptions in ``ctl_exceptions`` / ``wf_current`` and, when the
store is sealed, ``ledger_entries``) and returns a ``Matrix``:

* ``rows`` — one row per (framework requirement, control) pair: a control mapped to SOC 2 CC6.1 and CC6.2
  and to NIST AC-2 gives three rows. A control with no framework mapping still gets one row (empty
  framework and requirement) so that nothing the catalogue tests is left out;
* ``controls`` — the same facts once per control (what the demo report's traceability section shows);
* ``exceptions`` — the register of governance exceptions: scope, validity, whether in force at the
  assessment's ``as_of``, owner, compensating control, justification and the findings each one excepts.

"Latest result" is the latest *completed* run of each control (a control that never completed shows its
latest failed run); a newer failed run is reported next to it in ``latest_error``. Finding counts are the
``findings`` table's current states. Workflow sources are the control's evidence sources that are
governance systems (requests, approvals, HR, QMS…), evidence sources the identity systems it reads.

Writers: ``to_csv`` / ``to_json`` / ``to_html`` return text, ``to_xlsx`` bytes. Every value may be
attacker-controlled (a ticket's justification, an HR name): spreadsheet cells go through
``accessproof.output.cell`` (a leading ``= + - @``, tab or carriage return gets a single quote) and XLSX text
cells are stored with data type ``s``, so no formula is ever written; HTML values go through
``html.escape(..., quote=True)`` and the page forbids scripts.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from accessproof.linking.sql import table_exists
from accessproof.output import cell
from accessproof.output import to_csv as _rows_to_csv
from accessproof.store.base import Store

__all__ = [
    "COLUMNS",
    "EXCEPTION_COLUMNS",
    "FRAMEWORK_NAMES",
    "Matrix",
    "build_matrix",
    "control_rows",
    "is_governance",
    "natural_key",
    "present_sources",
    "to_csv",
    "to_html",
    "to_json",
    "to_xlsx",
    "workflow_systems",
]

FORMAT = "accessproof-matrix/1"
FRAMEWORK_NAMES = {"soc2": "SOC 2", "iso27001_2022": "ISO 27001", "nist_800_53_r5": "NIST 800-53",
                   "cfr_part11": "21 CFR 11", "eu_gmp_annex11": "EU GMP Annex 11", "sox_itgc": "SOX ITGC",
                   "hipaa": "HIPAA"}
GOVERNANCE_HINTS = ("servicenow", "jira", "hr", "workday", "qms", "sap", "successfactors", "bamboo", "veeva",
                    "mastercontrol", "compliancequest", "governance", "workflow")
NOT_RUN = "not run"

#: (key, label) of the matrix columns, in order (CSV headers are the keys, XLSX and HTML show the labels)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("framework", "Framework"), ("framework_name", "Framework name"), ("requirement_id", "Requirement"),
    ("control_id", "Control id"), ("control_title", "Control"), ("control_objective", "Control objective"),
    ("layer", "Layer"), ("stage", "Stage"), ("frequency", "Frequency"), ("severity", "Severity"),
    ("workflow_sources", "Workflow sources"), ("evidence_sources", "Evidence sources"), ("owner", "Owner"),
    ("retention_class", "Retention class"), ("retention", "Retention"),
    ("latest_status", "Latest result"), ("pass_rate", "Pass rate %"), ("population", "Population"),
    ("ok", "OK"), ("alarm", "Alarm"), ("skip", "Skip"), ("info", "Info"), ("error", "Error rows"),
    ("latest_as_of", "As of"), ("latest_run_id", "Run id"), ("latest_assessment_id", "Assessment id"),
    ("latest_run_ledger_index", "Ledger entry"), ("latest_error", "Newer failed run"),
    ("open_findings", "Open findings"), ("excepted_findings", "Excepted findings"),
    ("resolved_findings", "Resolved findings"), ("exceptions", "Exceptions"),
)
EXCEPTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("exception_id", "Exception"), ("system", "System"), ("subject", "Subject"), ("person_id", "Person"),
    ("scope", "Scope"), ("approval_state", "Approval"), ("status", "Status"), ("valid_from", "Valid from"),
    ("expires", "Expires"), ("in_force", "In force at as-of"), ("owner", "Owner"),
    ("compensating_control", "Compensating control"), ("justification", "Justification"),
    ("excepts", "Excepts findings of"),
)
#: Excel's limit on the characters of one cell
XLSX_CELL_MAX = 32_767


@dataclass
class Matrix:
    """The matrix and what it was built from (see the module docstring)."""

    rows: list[dict[str, Any]]
    controls: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    as_of: datetime | None
    period_start: datetime | None
    runs: int
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            "format": FORMAT, "as_of": self.as_of, "period_start": self.period_start,
            "frameworks": {k: v for k, v in FRAMEWORK_NAMES.items() if k in self.summary.get("frameworks", {})},
            "summary": self.summary, "columns": [k for k, _ in COLUMNS], "rows": self.rows,
            "exceptions": self.exceptions,
        })


# ---------------------------------------------------------------- shared with the demo report


def workflow_systems(store: Store) -> set[str]:
    """Systems that hold governance records or people (workflow and HR systems)."""
    out = {r[0] for r in store.query("SELECT DISTINCT system FROM workflow_records")}
    out |= {r[0] for r in store.query("SELECT DISTINCT system FROM persons")}
    return {str(s) for s in out if s}


def present_sources(store: Store) -> list[str]:
    """Source names that have data in the store (vendor prefixes and source types)."""
    wf = workflow_systems(store)
    present = {r[0] for r in store.query("SELECT DISTINCT source_type FROM events") if r[0]}
    present |= {x.split(":")[0] for x in wf}
    present |= {str(r[0]).split(":")[0] for r in store.query("SELECT DISTINCT source FROM events") if r[0]}
    return sorted(present)


def is_governance(source: str, wf_systems: set[str]) -> bool:
    """Whether a control's evidence source is a governance (workflow, HR, QMS) system."""
    s = source.lower()
    if any(s == w.lower() or w.lower().startswith(s + ":") or s.startswith(w.lower().split(":")[0] + ":")
           for w in wf_systems):
        return True
    return any(h in s for h in GOVERNANCE_HINTS)


def control_rows(store: Store, catalogue: Mapping[str, Mapping[str, Any]], latest: Mapping[str, Mapping[str, Any]],
                 findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One traceability row per control (catalogued or run), sorted by control id.

    ``catalogue``: control id → metadata (``title``, ``requirement``, ``owner``, ``layer``,
    ``evidence_sources``, ``frameworks``); ``latest``: control id → its latest run (``title``, ``status``,
    ``pass_rate``, ``alarm``, ``population``, ``as_of``, ``frameworks`` and ``findings``, the count of its
    findings by state); ``findings``: rows with ``control_id``, ``state`` and ``exception_id`` (the excepted
    ones name the exceptions). The demo report's traceability section and ``build_matrix`` both use this.
    """
    exceptions: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.get("state") == "excepted" and f.get("exception_id"):
            exceptions[f["control_id"]].add(f["exception_id"])
    wf_systems = workflow_systems(store)
    rows = []
    for cid in sorted(set(catalogue) | set(latest)):
        meta, run = catalogue.get(cid, {}), latest.get(cid, {})
        sources = list(meta.get("evidence_sources") or [])
        workflow = [s for s in sources if is_governance(s, wf_systems)]
        evidence = [s for s in sources if s not in workflow]
        fw = meta.get("frameworks") or run.get("frameworks") or {}
        states = run.get("findings") or {}
        rows.append({"requirement": meta.get("requirement"),
                     "frameworks": [f"{k}:{i}" for k, v in sorted(fw.items()) for i in v],
                     "control_id": cid, "title": meta.get("title") or run.get("title"),
                     "layer": meta.get("layer"), "workflow_sources": workflow, "evidence_sources": evidence,
                     "owner": meta.get("owner"), "status": run.get("status") or NOT_RUN,
                     "pass_rate": run.get("pass_rate"), "alarm": run.get("alarm"), "population": run.get("population"),
                     "as_of": run.get("as_of"), "open_findings": states.get("open", 0),
                     "excepted_findings": states.get("excepted", 0),
                     "exceptions": sorted(exceptions.get(cid, set()))})
    return rows


# ---------------------------------------------------------------- reading the store


def _table_exists(store: Store, name: str) -> bool:
    return table_exists(store, name)  # in the store's own schema (a server's database holds many)


def _pct(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


def _loads(v: Any, default: Any) -> Any:
    try:
        out = json.loads(v) if v else default
    except (TypeError, ValueError):
        return default
    return out if isinstance(out, type(default)) else default


def _utc(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    try:
        d = datetime.fromisoformat(str(v))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)


def _runs(store: Store) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(latest completed run — else latest run — of each control, newest run of each control)."""
    if not _table_exists(store, "control_runs"):
        return {}, {}
    latest: dict[str, dict[str, Any]] = {}
    newest: dict[str, dict[str, Any]] = {}
    for r in store.query_dicts("SELECT * FROM control_runs ORDER BY started, run_id"):
        r["frameworks"] = _loads(r.pop("frameworks_json", None), {})
        r["parameters"] = _loads(r.pop("parameters_json", None), {})
        cid = r["control_id"]
        newest[cid] = r
        if r.get("status") == "completed" or latest.get(cid, {}).get("status") != "completed":
            latest[cid] = r
    return latest, newest


def _retention_policy(store: Store) -> Any:
    try:
        from accessproof.ledger.retention import load_policy

        own = Path(store.dir) / "retention.yaml" if getattr(store, "dir", None) else None
        return load_policy(own if own is not None and own.exists() else None)
    except Exception:  # an unreadable policy must not cost the matrix; the class name still shows
        return None


def _retention_text(policy: Any, name: str | None) -> str | None:
    if policy is None or not name or name not in policy.classes:
        return None
    c = policy.classes[name]
    if c.permanent:
        return "permanent"
    parts = []
    if c.years:
        parts.append(f"{c.years} year{'s' if c.years != 1 else ''}")
    if c.days:
        parts.append(f"{c.days} day{'s' if c.days != 1 else ''}")
    return " ".join(parts) or None


def _ledger_index(store: Store, run_ids: list[str]) -> dict[str, int]:
    if not run_ids or not _table_exists(store, "ledger_entries"):
        return {}
    return {r[0]: int(r[1]) for r in store.query(
        "SELECT record_id, min(idx) FROM ledger_entries WHERE record_type = 'control_result' "
        "AND record_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) GROUP BY 1", [run_ids])}


def _justification(attrs: Any) -> str | None:
    fields = _loads(attrs, {})
    for k in sorted(fields):
        if "justification" in str(k).lower() and fields[k] not in (None, ""):
            return str(fields[k])
    return None


def _exceptions(store: Store, as_of: datetime | None, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Governance exceptions (kind ``exception``) with validity, justification and what they except."""
    if _table_exists(store, "ctl_exceptions"):
        rows = store.query_dicts("""
            SELECT x.record_id AS exception_id, x.system, x.subject, x.person_id, x.scope, x.approval_state,
                   x.status, x.valid_from, x.expires, x.owner, x.compensating_control, w.attributes_json
            FROM ctl_exceptions x LEFT JOIN wf_current w ON w.raw_id = x.raw_id
            ORDER BY x.record_id, x.system""")
    elif _table_exists(store, "wf_current"):
        rows = store.query_dicts("""
            SELECT record_id AS exception_id, system, subject, NULL AS person_id, scope, NULL AS approval_state,
                   status, coalesce(effective, decided, opened) AS valid_from, expires, owner, compensating_control,
                   attributes_json
            FROM wf_current WHERE kind = 'exception' ORDER BY record_id, system""")
    else:
        return []
    excepts: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        if f["state"] == "excepted" and f.get("exception_id"):
            excepts[f["exception_id"]][f["control_id"]] += 1
    out = []
    for r in rows:
        valid_from, expires = _utc(r["valid_from"]), _utc(r["expires"])
        in_force = None
        if as_of is not None and r["approval_state"] is not None:
            in_force = bool(r["approval_state"] == "approved" and expires is not None and valid_from is not None
                            and valid_from <= as_of < expires)
        hit = excepts.get(r["exception_id"], Counter())
        out.append({"exception_id": r["exception_id"], "system": r["system"], "subject": r["subject"],
                    "person_id": r["person_id"], "scope": r["scope"], "approval_state": r["approval_state"],
                    "status": r["status"], "valid_from": valid_from, "expires": expires, "in_force": in_force,
                    "owner": r["owner"], "compensating_control": r["compensating_control"],
                    "justification": _justification(r.pop("attributes_json", None)),
                    "excepts": [f"{c} ({n})" for c, n in sorted(hit.items())],
                    "excepted_findings": sum(hit.values())})
    return out


_NUM = re.compile(r"(\d+)")


def natural_key(s: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in _NUM.split(s) if p)


def build_matrix(store: Store, *, controls_dir: str | Path | list[str | Path] | None = None,
                 catalogue: Mapping[str, Any] | None = None) -> Matrix:
    """The matrix of ``store`` for the built-in catalogue (plus ``controls_dir``) and every control run."""
    from accessproof.controls.engine import FRAMEWORKS, load_catalogue

    cat = dict(catalogue) if catalogue is not None else load_catalogue(controls_dir)
    meta = {cid: {"title": c.title, "requirement": c.requirement, "owner": c.owner, "layer": c.layer,
                  "stage": c.stage, "frequency": c.frequency, "severity": c.severity,
                  "evidence_sources": list(c.evidence_sources), "frameworks": dict(c.frameworks),
                  "retention_class": c.retention_class} for cid, c in cat.items()}
    latest, newest = _runs(store)
    findings: list[dict[str, Any]] = []
    if _table_exists(store, "findings"):
        findings = store.query_dicts("SELECT control_id, state, exception_id FROM findings ORDER BY finding_id")
    states: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        states[f["control_id"]][f["state"]] += 1
    for cid, r in latest.items():
        ok, alarm = int(r.get("ok") or 0), int(r.get("alarm") or 0)
        r["pass_rate"] = _pct(ok, ok + alarm) if r.get("status") == "completed" else None
        r["findings"] = dict(states.get(cid, {}))
    base = control_rows(store, meta, latest, findings)
    as_ofs = [d for d in (_utc(r.get("as_of")) for r in latest.values()) if d is not None]
    as_of = max(as_ofs) if as_ofs else None
    period_start = None
    if _table_exists(store, "events"):
        period_start = _utc(store.query("SELECT min(time) FROM events")[0][0])
    policy = _retention_policy(store)
    ledger = _ledger_index(store, sorted(r["run_id"] for r in latest.values()))
    fw_rank = {k: i for i, k in enumerate(FRAMEWORKS)}
    controls: list[dict[str, Any]] = []
    for b in base:
        cid = b["control_id"]
        m, run, new = meta.get(cid, {}), latest.get(cid, {}), newest.get(cid, {})
        later_error = None
        if new and run and new is not run and new.get("status") == "error":
            started = _utc(new.get("started"))
            later_error = (f"{started.isoformat()}: " if started else "") + str(new.get("error_message") or "error")
        frameworks = m.get("frameworks") or run.get("frameworks") or {}
        status = b["status"]
        controls.append({
            "control_id": cid, "control_title": b["title"], "control_objective": b["requirement"],
            "frameworks": {k: list(v) for k, v in sorted(frameworks.items(),
                                                          key=lambda kv: (fw_rank.get(kv[0], len(fw_rank)), kv[0]))},
            "layer": b["layer"], "stage": m.get("stage"), "frequency": m.get("frequency"),
            "severity": m.get("severity") or run.get("severity"),
            "workflow_sources": b["workflow_sources"], "evidence_sources": b["evidence_sources"],
            "owner": b["owner"], "retention_class": m.get("retention_class"),
            "retention": _retention_text(policy, m.get("retention_class")),
            "latest_status": status, "pass_rate": b["pass_rate"],
            **{k: (int(run[k]) if run.get(k) is not None else None) if status != NOT_RUN else None
               for k in ("population", "ok", "alarm", "skip", "info", "error")},
            "latest_as_of": _utc(run.get("as_of")), "latest_run_id": run.get("run_id"),
            "latest_assessment_id": run.get("assessment_id"), "latest_started": _utc(run.get("started")),
            "latest_finished": _utc(run.get("finished")), "results_digest": run.get("results_digest"),
            "control_digest": run.get("control_digest"), "policy_digest": run.get("policy_digest"),
            "latest_run_error_message": run.get("error_message"),
            "latest_run_ledger_index": ledger.get(run.get("run_id")) if run else None,
            "latest_error": later_error,
            "open_findings": int(b["open_findings"]), "excepted_findings": int(b["excepted_findings"]),
            "resolved_findings": int(states.get(cid, {}).get("resolved", 0)), "exceptions": b["exceptions"],
        })
    rows: list[dict[str, Any]] = []
    for c in controls:
        pairs = [(fw, req) for fw, reqs in c["frameworks"].items() for req in reqs] or [("", "")]
        for fw, req in pairs:
            row = {"framework": fw, "framework_name": FRAMEWORK_NAMES.get(fw, fw), "requirement_id": req}
            row.update({k: c.get(k) for k, _ in COLUMNS if k not in row})
            rows.append(row)
    rows.sort(key=lambda r: (r["framework"] == "", fw_rank.get(r["framework"], len(fw_rank)), r["framework"],
                             natural_key(str(r["requirement_id"])), r["control_id"]))
    exceptions = _exceptions(store, as_of, findings)
    run_statuses = Counter(c["latest_status"] for c in controls)
    summary = {
        "rows": len(rows), "controls": len(controls), "controls_run": sum(1 for c in controls if c["latest_run_id"]),
        "controls_completed": run_statuses.get("completed", 0), "controls_error": run_statuses.get("error", 0),
        "controls_not_run": run_statuses.get(NOT_RUN, 0),
        "open_findings": sum(c["open_findings"] for c in controls),
        "excepted_findings": sum(c["excepted_findings"] for c in controls),
        "exceptions": len(exceptions), "exceptions_in_force": sum(1 for e in exceptions if e["in_force"]),
        "frameworks": {fw: len({r["requirement_id"] for r in rows if r["framework"] == fw})
                       for fw in sorted({r["framework"] for r in rows if r["framework"]}, key=lambda f: fw_rank.get(f, 99))},
    }
    return Matrix(rows=rows, controls=controls, exceptions=exceptions, as_of=as_of, period_start=period_start,
                  runs=len(latest), summary=summary)


# ---------------------------------------------------------------- values


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_jsonable(x) for x in v]
    if isinstance(v, datetime):
        return (_utc(v) or v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return str(v)


def flat(v: Any) -> Any:
    """One cell's value: lists joined with ``; ``, times in UTC ISO 8601, None empty; numbers stay numbers."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return "; ".join(str(flat(x)) for x in v)
    if isinstance(v, datetime | date):
        return _jsonable(v)
    if isinstance(v, int | float):
        return v
    return str(v)


def _table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> list[list[Any]]:
    return [[flat(r.get(k)) for k, _ in columns] for r in rows]


# ---------------------------------------------------------------- writers


def to_json(matrix: Matrix) -> str:
    return json.dumps(matrix.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_csv(matrix: Matrix) -> str:
    """The matrix rows; column headers are the keys of ``COLUMNS``; formula-looking cells neutralised."""
    return _rows_to_csv([k for k, _ in COLUMNS], _table(matrix.rows, COLUMNS))


def _xlsx_text(v: Any) -> str:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    s = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(cell(v)))
    return s if len(s) <= XLSX_CELL_MAX else s[: XLSX_CELL_MAX - 1] + "…"


def _sheet(ws: Any, columns: tuple[tuple[str, str], ...], rows: list[list[Any]]) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    widths = [len(label) for _, label in columns]
    for j, (_, label) in enumerate(columns, 1):
        c = ws.cell(row=1, column=j)
        c.value = _xlsx_text(label)
        c.data_type = "s"
        c.font = Font(bold=True)
    for i, row in enumerate(rows, 2):
        for j, v in enumerate(row, 1):
            c = ws.cell(row=i, column=j)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                c.value = v  # a number is never a formula
            else:
                c.value = _xlsx_text(v)
                c.data_type = "s"  # text, whatever it starts with: no formula is ever stored
            widths[j - 1] = max(widths[j - 1], min(len(str(c.value)), 60))
            c.alignment = Alignment(vertical="top", wrap_text=len(str(c.value)) > 60)
    for j, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = max(8, w + 2)
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = ws.dimensions


def to_xlsx(matrix: Matrix) -> bytes:
    """A workbook with sheets Matrix, Exceptions and About. Text cells are type ``s``, never formulas."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Matrix"
    _sheet(ws, COLUMNS, _table(matrix.rows, COLUMNS))
    _sheet(wb.create_sheet("Exceptions"), EXCEPTION_COLUMNS, _table(matrix.exceptions, EXCEPTION_COLUMNS))
    about = [["format", FORMAT], ["as of", flat(matrix.as_of)], ["period start", flat(matrix.period_start)],
             *([k, flat(v) if not isinstance(v, dict) else "; ".join(f"{a}: {b}" for a, b in v.items())]
               for k, v in matrix.summary.items()),
             ["note", "Values that would start a formula (= + - @, tab, carriage return) are prefixed with a "
                      "single quote; every text cell is stored as text."]]
    _sheet(wb.create_sheet("About"), (("key", "Key"), ("value", "Value")), about)
    when = matrix.as_of or datetime(1970, 1, 1, tzinfo=UTC)
    wb.properties.creator = "accessproof"
    wb.properties.created = wb.properties.modified = when.replace(tzinfo=None)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#5b6470}.small{font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{border:1px solid #d8dde3;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f3f5f7;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td.f{color:#b42318;font-weight:600}
.kpi{display:inline-block;margin:0 18px 8px 0}.kpi b{font-size:18px;display:block}
code{font-size:11px}
td.long{min-width:340px}td.id{white-space:nowrap}.wrap{overflow-x:auto}
"""
_LONG = {"control_objective", "justification", "compensating_control", "latest_error", "scope"}
_IDS = {"framework", "requirement_id", "control_id", "latest_run_id", "latest_assessment_id", "exception_id",
        "latest_as_of", "valid_from", "expires"}
_NUMERIC = {"pass_rate", "population", "ok", "alarm", "skip", "info", "error", "open_findings",
            "excepted_findings", "resolved_findings", "latest_run_ledger_index"}


def _html_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in columns)
    body = []
    for r in rows:
        cls = ' class="bad"' if r.get("open_findings") else ""
        tds = []
        for k, _ in columns:
            v = flat(r.get(k))
            attrs = (' class="num f"' if k == "open_findings" else ' class="num"' if k in _NUMERIC
                     else ' class="long"' if k in _LONG else ' class="id"' if k in _IDS else "")
            tds.append(f"<td{attrs}>{_esc(v)}</td>")
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def to_html(matrix: Matrix) -> str:
    """One self-contained page (inline CSS, no script, no network); every value escaped."""
    s = matrix.summary
    kpis = (("Requirement × control rows", s.get("rows")), ("Controls", s.get("controls")),
            ("Controls run", s.get("controls_run")), ("Open findings", s.get("open_findings")),
            ("Excepted findings", s.get("excepted_findings")), ("Exceptions in force", s.get("exceptions_in_force")))
    fws = ", ".join(f"{FRAMEWORK_NAMES.get(k, k)}: {n} requirements" for k, n in (s.get("frameworks") or {}).items())
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        "img-src data:; base-uri 'none'; form-action 'none'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Traceability matrix</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Traceability matrix</h1>",
        f'<p class="muted">Requirement → control → workflow source → evidence sources → owner → retention → latest '
        f"result → open findings → exceptions. As of {_esc(flat(matrix.as_of) or '—')}; "
        f"data from {_esc(flat(matrix.period_start) or '—')}.</p>",
        "<div>" + "".join(f'<span class="kpi"><b>{_esc(v)}</b><span class="muted small">{_esc(k)}</span></span>'
                          for k, v in kpis) + "</div>",
        f'<p class="small muted">{_esc(fws)}</p>',
        _html_table(matrix.rows, COLUMNS),
        "<h2>Exceptions</h2>",
        '<p class="muted small">Governance exceptions in the store; an approved exception in force suppresses the '
        "findings inside its scope until it expires.</p>",
        _html_table(matrix.exceptions, EXCEPTION_COLUMNS) if matrix.exceptions
        else '<p class="muted">No governance exception in this store.</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
