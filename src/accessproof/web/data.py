"""What the overview, control and sources pages show, read through the library the CLI uses.

The traceability matrix (``audit.matrix.build_matrix``) gives each control's latest result, framework
mappings and the exception register; ``controls`` gives findings and runs; ``queries`` evidence quality;
``linking`` removal latency; the ledger its latest checkpoint, whose signature is checked here on every
view. Only the small aggregations a page needs that no library function offers (results per assessment)
are queried here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from accessproof.audit.matrix import FRAMEWORK_NAMES, NOT_RUN, Matrix, build_matrix
from accessproof.linking.sql import table_exists
from accessproof.store.base import Store

#: the frameworks the overview always shows, in this order (others follow when controls map to them)
HEADLINE_FRAMEWORKS = ("soc2", "iso27001_2022", "nist_800_53_r5", "cfr_part11", "eu_gmp_annex11")
SEVERITIES = ("critical", "high", "medium", "low", "info")
AGE_BUCKETS = (("< 7 days", 7), ("7–30 days", 30), ("30–90 days", 90), ("> 90 days", None))
EXPIRING_DAYS = 30


def utc(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
    try:
        d = datetime.fromisoformat(str(v))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)


def control_state(c: dict[str, Any]) -> str:
    """passing | failing | error | not run — what a control's latest run says."""
    if c["latest_status"] == NOT_RUN:
        return "not run"
    if c["latest_status"] == "error":
        return "error"
    return "failing" if (c.get("open_findings") or 0) > 0 or (c.get("alarm") or 0) > 0 else "passing"


def framework_status(m: Matrix) -> list[dict[str, Any]]:
    """Per framework: how many of the controls mapped to it pass, fail, errored or never ran."""
    present = [fw for fw in m.summary.get("frameworks", {}) if fw not in HEADLINE_FRAMEWORKS]
    out = []
    for fw in (*HEADLINE_FRAMEWORKS, *present):
        states = Counter(control_state(c) for c in m.controls if c["frameworks"].get(fw))
        reqs = len({r["requirement_id"] for r in m.rows if r["framework"] == fw})
        out.append({"framework": fw, "name": FRAMEWORK_NAMES.get(fw, fw), "requirements": reqs,
                    "controls": sum(states.values()), **{k: states.get(k, 0) for k in
                                                         ("passing", "failing", "error", "not run")}})
    return out


def open_findings(store: Store) -> list[dict[str, Any]]:
    from accessproof.controls import list_findings

    return list_findings(store, state="open")


def findings_by_severity_and_age(findings: list[dict[str, Any]], now: datetime) -> dict[str, dict[str, int]]:
    """severity -> age bucket -> count; age is how long each has been open (since first detected)."""
    out: dict[str, dict[str, int]] = {s: {b: 0 for b, _ in AGE_BUCKETS} for s in SEVERITIES}
    for f in findings:
        first = utc(f.get("first_seen")) or now
        days = (now - first).total_seconds() / 86400
        bucket = next(b for b, limit in AGE_BUCKETS if limit is None or days < limit)
        out.setdefault(f.get("severity") or "info", {b: 0 for b, _ in AGE_BUCKETS})[bucket] += 1
    return {s: v for s, v in out.items() if sum(v.values()) or s in SEVERITIES[:4]}


def expiring_exceptions(m: Matrix, days: int = EXPIRING_DAYS) -> list[dict[str, Any]]:
    """Exceptions in force at the assessment's as-of that expire within ``days`` of it, soonest first."""
    if m.as_of is None:
        return []
    horizon = m.as_of + timedelta(days=days)
    rows = [e for e in m.exceptions if e["in_force"] and e["expires"] is not None and e["expires"] <= horizon]
    for e in rows:
        e["days_left"] = max(0, (e["expires"] - m.as_of).days)
    return sorted(rows, key=lambda e: e["expires"])


#: what an assessment was: most of the catalogue at once, fewer controls (a run-now, a selection), or an
#: event-driven re-test of the subjects an ingest touched (``server.retest``: its id starts ``retest-``)
ASSESSMENT_KINDS = ("full", "partial", "retest")
RETEST_PREFIX = "retest-"


def assessments(store: Store) -> list[dict[str, Any]]:
    """Each assessment's totals, oldest first: controls run, ok and alarm rows, errors, pass rate, and its
    ``kind`` (``ASSESSMENT_KINDS``; a partial one ran fewer than half the controls of the widest full or
    partial one)."""
    if not table_exists(store, "control_runs"):
        return []
    rows = store.query_dicts("""
        SELECT assessment_id, min(started) AS started, max(finished) AS finished, max(as_of) AS as_of,
               count(*) AS controls, sum(ok) AS ok, sum(alarm) AS alarm,
               sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors
        FROM control_runs GROUP BY assessment_id ORDER BY min(started), assessment_id""")
    widest = max((int(r["controls"]) for r in rows if not str(r["assessment_id"]).startswith(RETEST_PREFIX)),
                 default=0)
    for r in rows:
        ok, alarm = int(r["ok"] or 0), int(r["alarm"] or 0)
        r["pass_rate"] = round(100.0 * ok / (ok + alarm), 1) if ok + alarm else None
        r["kind"] = ("retest" if str(r["assessment_id"]).startswith(RETEST_PREFIX)
                     else "full" if int(r["controls"]) * 2 >= widest else "partial")
    return rows


def trend_assessments(rows: list[dict[str, Any]], keep: int = 12) -> list[dict[str, Any]]:
    """Full assessments only (a run-now of one control or a re-test is not a point on the programme's trend)."""
    return [r for r in rows if r["kind"] == "full"][-keep:]


def latency_percentiles(store: Store) -> list[dict[str, Any]]:
    """Per month of the removal's due date: p50 / p90 / p99 hours from trigger to removal, and the misses."""
    if not table_exists(store, "removal_latency"):
        return []
    from accessproof.linking.link import removal_latency

    months: dict[str, list[float]] = defaultdict(list)
    missing: Counter = Counter()
    for r in removal_latency(store):
        due = utc(r.get("due_at"))
        if due is None:
            continue
        key = due.strftime("%Y-%m")
        if r.get("latency_hours") is None:
            missing[key] += 1
            months.setdefault(key, [])
        else:
            months[key].append(float(r["latency_hours"]))
    out = []
    for key in sorted(months):
        lat = sorted(months[key])
        out.append({"month": key, "removals": len(lat), "missing": missing[key],
                    **{f"p{q}": _quantile(lat, q / 100) for q in (50, 90, 99)}})
    return out


def _quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (pos - lo), 2)


def checkpoint_state(store: Store) -> dict[str, Any]:
    """The latest signed checkpoint and whether its signature verifies with the store's verifier key."""
    if not table_exists(store, "ledger_entries") or getattr(store, "dir", None) is None:
        return {"available": False, "reason": "this store has no ledger yet"}
    from accessproof.ledger import open_ledger
    from accessproof.ledger.ledger import LedgerError

    ledger = open_ledger(store.dir, getattr(store, "con", None))
    out: dict[str, Any] = {"available": True, "entries": ledger.size, "origin": ledger.origin}
    cp = ledger.latest_checkpoint()
    if cp is None:
        return {**out, "checkpoint": None, "signature": "no checkpoint signed yet", "signature_ok": False}
    out["checkpoint"] = {"size": cp.size, "root": cp.root.hex(), "created": cp.created, "note": cp.note,
                         "covers_all": cp.size == out["entries"]}
    try:
        _, size, root = ledger.open_checkpoint(cp.note)
    except LedgerError as e:
        return {**out, "signature": str(e), "signature_ok": False}
    if (size, root) != (cp.size, cp.root):
        return {**out, "signature": "the signed note does not match the stored checkpoint", "signature_ok": False}
    return {**out, "signature": "signature verified with the store's verifier key", "signature_ok": True}


def freshness(store: Store, as_of: datetime | None) -> list[dict[str, Any]]:
    """Per source: last record, volume, completeness (time, actor, target, mapped action), and how far it
    lags the newest data."""
    from accessproof.queries import source_quality

    cols, rows = source_quality(store)
    pct_cols = ["time_pct", "actor_pct", "target_pct", "mapped_pct"]  # what every event needs
    out = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        present = [float(d[c]) for c in pct_cols if d[c] is not None]
        d["completeness"] = round(sum(present) / len(present), 1) if present else None
        last = utc(d["last_event"])
        d["lag_days"] = (as_of - last).total_seconds() / 86400 if as_of and last else None
        out.append(d)
    return out


def overview(store: Store) -> dict[str, Any]:
    m = build_matrix(store)
    now = datetime.now(UTC)
    states = Counter(control_state(c) for c in m.controls)
    found = open_findings(store)
    runs = assessments(store)
    at = max((i for i, r in enumerate(runs) if r["kind"] != "retest"), default=None)
    return {
        "matrix": m, "as_of": m.as_of, "period_start": m.period_start, "now": now,
        "states": {k: states.get(k, 0) for k in ("passing", "failing", "error", "not run")},
        "frameworks": framework_status(m), "open_findings": len(found),
        "by_severity_age": findings_by_severity_and_age(found, now),
        "by_severity": Counter(f.get("severity") for f in found),
        "expiring": expiring_exceptions(m), "exceptions_in_force": m.summary.get("exceptions_in_force", 0),
        "last_assessment": runs[at] if at is not None else None, "trend": trend_assessments(runs),
        "retests_since": sum(1 for r in runs[(at or 0):] if r["kind"] == "retest"),
        "latency": latency_percentiles(store), "ledger": checkpoint_state(store),
        "freshness": freshness(store, m.as_of),
    }


# ---------------------------------------------------------------- one control


def control_page(store: Store, control_id: str, *, state: str | None = None, system: str | None = None,
                 person: str | None = None) -> dict[str, Any] | None:
    from accessproof.controls import list_findings, load_catalogue

    catalogue = load_catalogue()
    control = catalogue.get(control_id)
    if control is None:
        return None
    m = build_matrix(store, catalogue=catalogue)
    row = next((c for c in m.controls if c["control_id"] == control_id), None)
    history = []
    if table_exists(store, "control_runs"):
        history = store.query_dicts("""
            SELECT run_id, assessment_id, started, finished, status, error_message, population, ok, alarm, skip,
                   info, error, as_of, results_digest, parameters_json
            FROM control_runs WHERE control_id = ? ORDER BY started DESC, run_id DESC LIMIT 50""", [control_id])
        for h in history:
            ok, alarm = int(h["ok"] or 0), int(h["alarm"] or 0)
            h["pass_rate"] = round(100.0 * ok / (ok + alarm), 1) if ok + alarm else None
            h["parameters"] = json.loads(h.pop("parameters_json") or "{}")
    findings = list_findings(store, control=control_id, state=state or None, system=system or None,
                             person=person or None)
    all_states = Counter(f["state"] for f in list_findings(store, control=control_id))
    systems = sorted({f["system"] for f in list_findings(store, control=control_id) if f.get("system")})
    return {"control": control, "row": row, "state": control_state(row) if row else "not run",
            "history": history, "findings": findings, "finding_states": all_states, "systems": systems,
            "filters": {"state": state or "", "system": system or "", "person": person or ""}}
