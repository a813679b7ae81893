"""The demo's report: one self-contained HTML page (and the same numbers as JSON) an auditor can open offline.

``write_report(store, result, out_dir)`` reads the store after ingest and linking (and, when they exist, the
control results and the ledger) and writes ``out_dir/index.html`` and ``out_dir/report.json``. The page has
inline CSS and inline SVG charts drawn here in Python: no JavaScript at all (its Content-Security-Policy
forbids scripts), no network, nothing to install. Every value read from the store is attacker-controlled
(log fields, ticket comments, HR names) and goes through ``html.escape(..., quote=True)`` before it is put in
the page, in text, attributes and SVG alike.

The page is reproducible: "generated at" is the data's own "now" (the latest event time), not the clock, and
nothing random (run ids, timings) is shown. Sections whose tables do not exist yet (controls, findings,
ledger) say so instead of pretending.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accessproof.audit.matrix import FRAMEWORK_NAMES, control_rows, present_sources
from accessproof.lifecycle import PAL, esc
from accessproof.lifecycle import as_dt as _as_dt
from accessproof.lifecycle import clean_rows as _clean
from accessproof.lifecycle import evidence_chains as _chains
from accessproof.lifecycle import fmt_hours as _dur
from accessproof.lifecycle import fmt_time as _t
from accessproof.lifecycle import group_by as _group
from accessproof.lifecycle import svg as _svg
from accessproof.lifecycle import svg_text as _text
from accessproof.lifecycle import system_label as _label
from accessproof.lifecycle import timeline_legend_svg as _legend_svg
from accessproof.lifecycle import timeline_svg as _timeline_svg
from accessproof.linking.sql import table_exists as _table_exists
from accessproof.store.base import Store

if TYPE_CHECKING:
    from accessproof.demo.run import DemoResult

__all__ = ["collect", "render_html", "write_report"]

NOT_YET = "not yet available"
#: shown per control in the page; report.json has every finding
FINDINGS_PER_CONTROL = 6
CHAIN_NODES = 9
TABLE_ROWS = 60

# ---------------------------------------------------------------- small helpers


def _n(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{int(v):,}"


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else 100.0 * part / whole


def _pct_s(p: float | None, digits: int = 1) -> str:
    return "—" if p is None else f"{p:.{digits}f}%"


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, set | frozenset):
        return sorted(v)
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item"):  # numpy / decimal-like scalars
        return v.item()
    return str(v)


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _jitter(key: str, spread: float) -> float:
    """Deterministic offset in [-spread, spread] (crc32 of the key: same data, same picture)."""
    return ((zlib.crc32(key.encode()) % 1000) / 999.0 * 2 - 1) * spread


# ---------------------------------------------------------------- collecting the numbers


def collect(store: Store, result: DemoResult | None) -> dict[str, Any]:
    """Everything the page shows, as plain data (this is what report.json holds)."""
    data: dict[str, Any] = {"format": "accessproof-report/1"}
    data["meta"] = _meta(store, result)
    data["ledger"] = _ledger(store)
    data["intake"] = _intake(store, result)
    data["linking"] = _linking(store)
    data["removals"] = _removals(store)
    data["controls"] = _controls(store)
    data["traceability"] = _traceability(store, data["controls"])
    data["timelines"] = _timelines(store, data["meta"])
    return data


def _meta(store: Store, result: DemoResult | None) -> dict[str, Any]:
    start, end = store.query("SELECT min(time), max(time) FROM events")[0]
    company = None
    if result is not None:
        truth = Path(result.data) / "ground_truth.json"
        if truth.exists():
            try:
                company = (json.loads(truth.read_text(encoding="utf-8")).get("company") or {}).get("name")
            except (OSError, ValueError, AttributeError):
                company = None
    people = None
    if _table_exists(store, "persons_current"):
        people = store.query("SELECT count(*) FROM persons_current")[0][0]
    else:
        people = store.query("SELECT count(DISTINCT person_id) FROM persons")[0][0]
    days = (end - start).total_seconds() / 86400 if start and end else None
    return {"company": company or "Your organisation", "period_start": start, "period_end": end,
            "period_days": round(days) if days is not None else None, "generated_at": end,
            "generated_at_basis": "the latest event time in the store (the data's own now)", "people": people}


def _ledger(store: Store) -> dict[str, Any]:
    if not _table_exists(store, "ledger_entries"):
        return {"available": False, "reason": "the store has not been sealed in the ledger yet"}
    out: dict[str, Any] = {"available": True}
    out["entries"] = int(store.query("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries")[0][0])
    out["by_type"] = {t: n for t, n in store.query(
        "SELECT record_type, count(*) FROM ledger_entries GROUP BY 1 ORDER BY 2 DESC, 1")}
    out["raw_records"] = int(store.query("SELECT count(*) FROM raw_records")[0][0])
    out["raw_unsealed"] = int(store.query("""
        SELECT count(*) FROM raw_records r
        WHERE NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.record_type = 'raw' AND l.record_id = r.raw_id)""")[0][0])
    meta = {}
    if _table_exists(store, "ledger_meta"):
        meta = dict(store.query("SELECT key, value FROM ledger_meta"))
    out["origin"] = meta.get("origin")
    cps = []
    if _table_exists(store, "ledger_checkpoints"):
        cps = store.query("SELECT size, root, note, created FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
        out["checkpoints"] = int(store.query("SELECT count(*) FROM ledger_checkpoints")[0][0])
    if not cps:
        out["checkpoint"] = None
        out["signature"] = "no checkpoint signed yet"
        return out
    size, root, note, created = cps[0]
    root = bytes(root) if root is not None else b""
    out["checkpoint"] = {"size": int(size), "root": root.hex(), "created": created,
                         "covers_all_entries": int(size) == out["entries"]}
    out["signature"], out["signature_ok"] = _check_signature(store, note, int(size), root, out["origin"], meta)
    return out


def _check_signature(store: Store, note: str, size: int, root: bytes, origin: str | None,
                     meta: dict[str, str]) -> tuple[str, bool]:
    try:
        from accessproof.ledger.api import load_verifier
        from accessproof.ledger.note import NoteError, Verifier, open_note, parse_checkpoint
    except ImportError:  # pragma: no cover - ledger not installed
        return ("cannot be checked here (ledger package missing)", False)
    verifiers = []
    try:
        v = load_verifier(store.dir) if getattr(store, "dir", None) else None
        if v is None and meta.get("verifier_key"):
            v = Verifier.parse(meta["verifier_key"])
        if v is not None:
            verifiers.append(v)
    except Exception as e:
        return (f"verifier key unusable: {str(e).splitlines()[0][:200]}", False)
    if not verifiers:
        return ("no verifier key to check it with", False)
    try:
        n_origin, n_size, n_root = parse_checkpoint(open_note(note, verifiers))
    except NoteError as e:
        return (f"signature check failed: {e}", False)
    if (n_size, n_root) != (size, root) or (origin and n_origin != origin):
        return ("signed note does not match the stored checkpoint row", False)
    return ("signature verified", True)


def _intake(store: Store, result: DemoResult | None) -> dict[str, Any]:
    from accessproof.queries import counts, quarantine_summary, source_quality

    feeds = []
    for label, s in (result.ingests if result is not None else []):
        feeds.append({"feed": label, "source_type": s.source_type, "files": s.files, "read": s.read,
                      "accepted": s.accepted, "duplicate": s.duplicate, "quarantined": s.quarantined,
                      "file_errors": len(s.file_errors or []),
                      "accounted": s.read == s.accepted + s.duplicate + s.quarantined})
    if not feeds and _table_exists(store, "ingest_runs"):
        for st, files, read, acc, dup, q in store.query(
                "SELECT source_type, sum(files), sum(read), sum(accepted), sum(duplicate), sum(quarantined) "
                "FROM ingest_runs GROUP BY 1 ORDER BY 1"):
            feeds.append({"feed": st, "source_type": st, "files": int(files or 0), "read": int(read or 0),
                          "accepted": int(acc or 0), "duplicate": int(dup or 0), "quarantined": int(q or 0),
                          "file_errors": 0, "accounted": read == acc + dup + q})
    totals = {k: sum(f[k] for f in feeds) for k in ("files", "read", "accepted", "duplicate", "quarantined")}
    totals["accounted"] = all(f["accounted"] for f in feeds)
    cols, rows = source_quality(store)
    quality = [dict(zip(cols, r, strict=True)) for r in rows]
    qcols, qrows = quarantine_summary(store)
    return {"feeds": feeds, "totals": totals, "store": counts(store), "quality": quality,
            "quarantine_reasons": [dict(zip(qcols, r, strict=True)) for r in qrows],
            "flagged_content": _flagged(store)}


#: markup (a tag opening) or a spreadsheet formula at the start of a value
_MARKUP_RX = r"<\s*[A-Za-z/!?]"
_FORMULA_RX = r"^\s*[=+@]"


def _flagged(store: Store) -> list[dict[str, Any]]:
    """Values in logs and records that carry markup or spreadsheet formulas (shown as text, never run)."""
    out: list[dict[str, Any]] = []
    for col in ("actor_name", "target_name", "entitlement_name", "user_agent"):
        for source, value, n, example in store.query(f"""
            SELECT source, {col}, count(*), min(event_id) FROM events
            WHERE regexp_matches({col}, ?) OR regexp_matches({col}, ?)
            GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 20""", [_MARKUP_RX, _FORMULA_RX]):
            out.append({"where": f"{source} events", "field": col, "value": value, "records": int(n),
                        "example_id": example, "kind": _kind_of(value)})
    for system, record_id, attrs in store.query("""
        SELECT system, record_id, attributes_json FROM workflow_records
        WHERE regexp_matches(attributes_json, ?) OR regexp_matches(attributes_json, ?)
        ORDER BY system, record_id LIMIT 50""", [_MARKUP_RX, r'":\s*"\s*[=+@]']):
        try:
            fields = json.loads(attrs or "{}")
        except ValueError:
            fields = {}
        for k, v in sorted(fields.items()) if isinstance(fields, dict) else []:
            if isinstance(v, str) and _kind_of(v):
                out.append({"where": f"{system} records", "field": k, "value": v, "records": 1,
                            "example_id": record_id, "kind": _kind_of(v)})
    for system, person_id, name in store.query("""
        SELECT system, person_id, display_name FROM persons
        WHERE regexp_matches(display_name, ?) OR regexp_matches(display_name, ?) ORDER BY 1, 2 LIMIT 20""",
                                               [_MARKUP_RX, _FORMULA_RX]):
        out.append({"where": f"{system} people", "field": "display_name", "value": name, "records": 1,
                    "example_id": person_id, "kind": _kind_of(name)})
    return out


def _kind_of(v: str) -> str | None:
    import re

    if re.search(_MARKUP_RX, v):
        return "markup"
    if re.match(_FORMULA_RX, v):
        return "formula"
    return None


GRANT_CATEGORIES = ("explicit", "inferred", "not-justified", "unlinked")


def _linking(store: Store) -> dict[str, Any]:
    if not _table_exists(store, "links") or not _table_exists(store, "access_events"):
        return {"available": False, "reason": "linking has not run on this store"}
    from accessproof.linking.link import link_summary

    summary = link_summary(store)
    by_system: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(GRANT_CATEGORIES, 0))
    for system, cat, n in store.query("""
        WITH g AS (SELECT DISTINCT event_id, raw_id, system FROM access_events WHERE direction = 'grant'),
        j AS (SELECT event_id, event_raw_id, max(CASE WHEN basis = 'explicit' THEN 1 ELSE 0 END) AS explicit
              FROM links WHERE role = 'request' AND justified GROUP BY 1, 2),
        lk AS (SELECT DISTINCT event_id, event_raw_id FROM links WHERE role = 'request')
        SELECT g.system,
               CASE WHEN j.event_id IS NOT NULL AND j.explicit = 1 THEN 'explicit'
                    WHEN j.event_id IS NOT NULL THEN 'inferred'
                    WHEN lk.event_id IS NOT NULL THEN 'not-justified' ELSE 'unlinked' END AS cat, count(*)
        FROM g LEFT JOIN j ON j.event_id = g.event_id AND j.event_raw_id = g.raw_id
        LEFT JOIN lk ON lk.event_id = g.event_id AND lk.event_raw_id = g.raw_id
        GROUP BY 1, 2 ORDER BY 1, 2"""):
        by_system[system][cat] = int(n)
    grants_total = {c: sum(v[c] for v in by_system.values()) for c in GRANT_CATEGORIES}
    by_rule = _clean(store.query_dicts("""
        SELECT direction, basis, rule, status, count(DISTINCT event_id || '|' || event_raw_id) AS events
        FROM links WHERE role = 'request' GROUP BY ALL ORDER BY direction, basis, events DESC, rule, status"""))
    unlinked = _clean(store.query_dicts("""
        SELECT u.event_time AS time, u.system, e.actor_name AS actor, coalesce(u.account_name, u.account_id) AS target,
               u.entitlement, u.vendor_action, u.reason_code, u.reason, u.candidates, u.event_id, u.person_id
        FROM unlinked_grants u LEFT JOIN events e ON e.event_id = u.event_id AND e.raw_id = u.event_raw_id
        ORDER BY u.event_time, u.event_id"""))
    unexecuted: list[dict[str, Any]] = []
    awaiting = 0
    if _table_exists(store, "unexecuted_approvals"):
        unexecuted = _clean(store.query_dicts("""
            SELECT record_id, system, kind, subject, person_id, scope, decision_time, window_end, reason
            FROM unexecuted_approvals WHERE status = 'never-executed' ORDER BY decision_time, record_id"""))
        awaiting = int(store.query("SELECT count(*) FROM unexecuted_approvals WHERE status = 'awaiting'")[0][0])
    approved = int(store.query("SELECT count(*) FROM wf_requests WHERE approval_state = 'approved'")[0][0]) \
        if _table_exists(store, "wf_requests") else None
    summary.pop("horizon", None)
    return {"available": True, "summary": summary, "grants_by_system": {k: dict(v) for k, v in sorted(by_system.items())},
            "grants_total": grants_total, "grants": sum(grants_total.values()),
            "by_rule": by_rule, "unlinked_grants": unlinked, "never_executed": unexecuted,
            "awaiting_execution": awaiting, "approved_requests": approved}


def _removals(store: Store) -> dict[str, Any]:
    if not _table_exists(store, "removal_links"):
        return {"available": False, "reason": "linking has not run on this store"}
    sla = store.query("SELECT max(sla_hours) FROM removal_links")[0][0]
    if sla is None:
        from accessproof.linking.config import as_config

        sla = float((as_config(None).linking.get("removal") or {}).get("sla_hours", 24))
    per_system = _clean(store.query_dicts("""
        SELECT system, trigger_kind, trigger_record_id, person_id, due_at, accesses, removed, latency_hours, status
        FROM removal_latency ORDER BY system, due_at, person_id, trigger_kind"""))
    stats: dict[str, dict[str, Any]] = {}
    for system in sorted({r["system"] for r in per_system}):
        rows = [r for r in per_system if r["system"] == system]
        lat = [float(r["latency_hours"]) for r in rows if r["latency_hours"] is not None]
        st = Counter(r["status"] for r in rows)
        stats[system] = {"required": len(rows), "on_time": st["removed"], "late": st["late"],
                         "missing": st["missing"], "median_hours": _quantile(lat, 0.5),
                         "p90_hours": _quantile(lat, 0.9), "max_hours": max(lat) if lat else None,
                         "within_sla_pct": _pct(st["removed"], len(rows))}
    by_status = dict(store.query("SELECT status, count(*) FROM removal_links GROUP BY 1 ORDER BY 1"))
    late_missing = _clean(store.query_dicts("""
        SELECT r.status, r.trigger_kind, r.trigger_record_id, r.trigger_system, r.person_id,
               p.display_name AS person, r.system, coalesce(r.account_name, r.account_id) AS account,
               r.entitlement_type, r.entitlement, r.due_at, r.removed_at, r.latency_hours, r.removal_event_id,
               r.grant_event_id
        FROM removal_links r LEFT JOIN persons_current p ON p.person_id = r.person_id
        WHERE r.status IN ('late', 'missing')
        ORDER BY CASE r.status WHEN 'missing' THEN 0 ELSE 1 END, r.due_at, r.person_id, r.system, r.entitlement""")) \
        if _table_exists(store, "persons_current") else _clean(store.query_dicts("""
        SELECT status, trigger_kind, trigger_record_id, trigger_system, person_id, NULL AS person, system,
               coalesce(account_name, account_id) AS account, entitlement_type, entitlement, due_at, removed_at,
               latency_hours, removal_event_id, grant_event_id
        FROM removal_links WHERE status IN ('late', 'missing') ORDER BY status, due_at, person_id"""))
    return {"available": True, "sla_hours": float(sla), "required_accesses": sum(by_status.values()),
            "by_status": {k: int(v) for k, v in by_status.items()}, "per_system": stats,
            "latencies": per_system, "late_and_missing": late_missing}


def _controls(store: Store) -> dict[str, Any]:
    if not _table_exists(store, "control_runs"):
        return {"available": False, "reason": "no control has been run on this store yet", "catalogue": _catalogue()}
    runs = store.query_dicts("SELECT * FROM control_runs ORDER BY started, control_id")
    for r in runs:
        for k in ("frameworks_json", "parameters_json"):
            v = r.pop(k, None)
            try:
                r[k.removesuffix("_json")] = json.loads(v) if v else {}
            except ValueError:
                r[k.removesuffix("_json")] = {}
    assessments: dict[str, dict[str, Any]] = {}
    for r in runs:
        a = assessments.setdefault(r["assessment_id"], {"assessment_id": r["assessment_id"], "started": r["started"],
                                                         "as_of": r.get("as_of"), "ok": 0, "alarm": 0, "error_runs": 0,
                                                         "controls": 0})
        a["started"] = min(a["started"], r["started"]) if a["started"] and r["started"] else a["started"]
        a["controls"] += 1
        a["ok"] += int(r.get("ok") or 0)
        a["alarm"] += int(r.get("alarm") or 0)
        a["error_runs"] += 1 if r.get("status") == "error" else 0
    history = sorted(assessments.values(), key=lambda a: (_as_dt(a["started"]) or datetime.min.replace(tzinfo=UTC)))
    for a in history:
        a["pass_rate"] = _pct(a["ok"], a["ok"] + a["alarm"])
    latest: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r.get("status") == "completed" or r["control_id"] not in latest:
            latest[r["control_id"]] = r
    per_control: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a_idx, a in enumerate(history):
        for r in runs:
            if r["assessment_id"] == a["assessment_id"]:
                per_control[r["control_id"]].append({"assessment": a_idx, "ok": r.get("ok"), "alarm": r.get("alarm"),
                                                     "pass_rate": _pct(int(r.get("ok") or 0),
                                                                       int(r.get("ok") or 0) + int(r.get("alarm") or 0))})
    findings: list[dict[str, Any]] = []
    states: dict[str, Counter] = defaultdict(Counter)
    if _table_exists(store, "findings"):
        findings = store.query_dicts("SELECT * FROM findings ORDER BY control_id, state, last_seen DESC, resource")
        for f in findings:
            states[f["control_id"]][f["state"]] += 1
            for k in ("evidence_ids_json", "dimensions_json"):
                v = f.pop(k, None)
                try:
                    f[k.removesuffix("_json")] = json.loads(v) if v else ([] if k.startswith("evidence") else {})
                except ValueError:
                    f[k.removesuffix("_json")] = []
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    state_rank = {"open": 0, "excepted": 1, "resolved": 2}
    shown: list[dict[str, Any]] = []
    by_ctl: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        by_ctl[f["control_id"]].append(f)
    for _cid, fs in sorted(by_ctl.items()):
        fs.sort(key=lambda f: (state_rank.get(f["state"], 9), rank.get(f.get("severity") or "", 9),
                               str(f.get("resource"))))
        shown.extend(fs[:FINDINGS_PER_CONTROL])
    chains = _chains(store, shown)
    for f in shown:
        f["chain"] = chains.get(f["finding_id"], [])
    controls = []
    for cid, r in sorted(latest.items()):
        ok, alarm = int(r.get("ok") or 0), int(r.get("alarm") or 0)
        controls.append({"control_id": cid, "title": r.get("title"), "severity": r.get("severity"),
                         "status": r.get("status"), "error_message": r.get("error_message"),
                         "population": r.get("population"), "ok": ok, "alarm": alarm, "skip": r.get("skip"),
                         "info": r.get("info"), "pass_rate": _pct(ok, ok + alarm), "as_of": r.get("as_of"),
                         "frameworks": r.get("frameworks") or {}, "findings": dict(states.get(cid, {})),
                         "history": per_control.get(cid, [])})
    open_total = sum(c["findings"].get("open", 0) for c in controls)
    for cid in states:
        if cid not in latest:
            controls.append({"control_id": cid, "title": None, "findings": dict(states[cid]), "history": []})
    return {"available": True, "assessments": _clean(history), "controls": _clean(controls),
            "open_findings": open_total, "findings": _clean(findings), "findings_shown": len(shown),
            "catalogue": _catalogue()}


def _catalogue() -> dict[str, dict[str, Any]]:
    try:
        from accessproof.controls.engine import load_catalogue

        cat = load_catalogue()
    except Exception:
        return {}
    return {cid: {"title": c.title, "requirement": c.requirement, "owner": c.owner, "severity": c.severity,
                  "stage": c.stage, "layer": c.layer, "frequency": c.frequency,
                  "evidence_sources": list(c.evidence_sources), "frameworks": dict(c.frameworks),
                  "exceptable": c.exceptable} for cid, c in sorted(cat.items())}


def _traceability(store: Store, controls: dict[str, Any]) -> dict[str, Any]:
    if not controls.get("available"):
        return {"available": False, "reason": "no control has been run on this store yet"}
    latest = {c["control_id"]: c for c in controls["controls"]}
    rows = control_rows(store, controls.get("catalogue") or {}, latest, controls["findings"])
    return {"available": True, "rows": rows, "present_sources": present_sources(store)}


# ---------------------------------------------------------------- people for the timelines

TIMELINE_ROLES = (
    ("leaver", "Leaver with a late removal"),
    ("supplier", "Supplier staff at contract end"),
    ("mover", "Mover between departments"),
    ("joiner", "Clean joiner"),
)


def _pick_people(store: Store) -> list[tuple[str, str, str]]:
    """(role, label, person id) for a few instructive people, chosen from the data (same data, same people)."""
    if not _table_exists(store, "removal_links") or not _table_exists(store, "persons_current"):
        return []
    q = store.query
    picks: list[tuple[str, str, str]] = []
    taken: set[str] = set()

    def first(rows: list[tuple]) -> str | None:
        for r in rows:
            if r[0] and r[0] not in taken:
                return r[0]
        return None

    candidates = {
        "leaver": q("""SELECT person_id FROM removal_latency WHERE trigger_kind = 'termination'
                       GROUP BY person_id
                       ORDER BY max(CASE status WHEN 'late' THEN 2 WHEN 'missing' THEN 1 ELSE 0 END) DESC,
                                max(latency_hours) DESC NULLS LAST, person_id"""),
        "supplier": q("""SELECT p.person_id FROM persons_current p
                         LEFT JOIN removal_links r ON r.person_id = p.person_id AND r.trigger_kind = 'contract-end'
                         WHERE p.supplier_id IS NOT NULL OR lower(p.worker_type) = 'supplier'
                         GROUP BY p.person_id
                         ORDER BY count(r.person_id) > 0 DESC,
                                  (SELECT count(*) FROM links l WHERE l.person_id = p.person_id
                                   AND l.role = 'request') DESC,
                                  count(DISTINCT r.system) DESC, p.person_id"""),
        "mover": q("""SELECT s.person_id FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
                      LEFT JOIN links l ON l.person_id = s.person_id
                      WHERE w.kind = 'hr_event' AND lower(w.event_type) IN ('transfer', 'move', 'job change')
                      GROUP BY s.person_id ORDER BY count(l.event_id) DESC, s.person_id"""),
        "joiner": q("""SELECT s.person_id FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
                       JOIN links l ON l.person_id = s.person_id AND l.role = 'request' AND l.justified
                       JOIN persons_current p ON p.person_id = s.person_id AND p.terminated IS NULL
                       WHERE w.kind = 'hr_event' AND lower(w.event_type) = 'hire'
                         AND NOT EXISTS (SELECT 1 FROM unlinked_grants u WHERE u.person_id = s.person_id)
                         AND NOT EXISTS (SELECT 1 FROM removal_links r WHERE r.person_id = s.person_id
                                         AND r.status <> 'removed')
                       GROUP BY s.person_id ORDER BY count(DISTINCT l.system) DESC, count(*) DESC, s.person_id"""),
    }
    for role, label in TIMELINE_ROLES:
        pid = first(candidates[role])
        if pid:
            picks.append((role, label, pid))
            taken.add(pid)
    return picks


def _timelines(store: Store, meta: dict[str, Any]) -> dict[str, Any]:
    if not _table_exists(store, "links"):
        return {"available": False, "reason": "linking has not run on this store", "people": []}
    from accessproof.linking.timeline import timeline

    people = []
    for role, label, pid in _pick_people(store):
        p = store.query_dicts("""
            SELECT person_id, display_name, worker_type, supplier_id, business_unit, title, hired, terminated
            FROM persons_current WHERE person_id = ?""", [pid])
        steps = timeline(store, pid)
        intervals = _clean(store.query_dicts("""
            SELECT system, account_id, account_name, entitlement_type, entitlement, granted_at, removed_at, start_known
            FROM access_intervals WHERE person_id = ? ORDER BY system, granted_at NULLS FIRST, entitlement""", [pid]))
        triggers = _clean(store.query_dicts("""
            SELECT DISTINCT trigger_kind, trigger_record_id, trigger_system, due_at FROM removal_links
            WHERE person_id = ? ORDER BY due_at, trigger_record_id""", [pid]))
        missing = _clean(store.query_dicts("""
            SELECT system, coalesce(account_name, account_id) AS account, entitlement_type, entitlement, due_at,
                   trigger_kind, trigger_record_id
            FROM removal_links WHERE person_id = ? AND status = 'missing' ORDER BY system, due_at, entitlement""", [pid]))
        counts = Counter(s["stage"] for s in steps)
        people.append({"role": role, "label": label, "person": _clean(p)[0] if p else {"person_id": pid},
                       "steps": steps, "intervals": intervals, "triggers": triggers, "missing": missing,
                       "stage_counts": dict(sorted(counts.items()))})
    return {"available": True, "people": people}


# ---------------------------------------------------------------- SVG drawing

CAT_COLORS = {"explicit": "#1d4ed8", "inferred": "#60a5fa", "not-justified": PAL["warn"], "unlinked": PAL["bad"]}
CAT_LABELS = {"explicit": "Justified — explicit (cites the record)", "inferred": "Justified — inferred (person, scope, window)",
              "not-justified": "Linked, not justified", "unlinked": "No approval found"}
STATUS_COLORS = {"removed": PAL["ok"], "late": PAL["late"], "missing": PAL["bad"]}


def _mini_stack(parts: Sequence[tuple[float, str, str]], width: float = 150, height: float = 10) -> str:
    """A one-line stacked bar (value, colour, tooltip)."""
    total = sum(v for v, _, _ in parts) or 1
    x, body = 0.0, [f'<rect x="0" y="0" width="{width}" height="{height}" rx="3" fill="{PAL["grid"]}"/>']
    for v, color, tip in parts:
        if v <= 0:
            continue
        w = max(width * v / total, 1.5)
        body.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{color}">'
                    f"<title>{esc(tip)}</title></rect>")
        x += w
    return _svg(width, height, "".join(body), "; ".join(t for _, _, t in parts), cls="mini")


def _pct_bar(p: float | None, width: float = 70) -> str:
    if p is None:
        return '<span class="na">n/a</span>'
    color = PAL["ok"] if p >= 95 else PAL["warn"] if p >= 50 else PAL["bad"]
    w = width * max(0.0, min(p, 100.0)) / 100
    bar = _svg(width, 8, f'<rect width="{width}" height="8" rx="4" fill="{PAL["grid"]}"/>'
                         f'<rect width="{w:.1f}" height="8" rx="4" fill="{color}"/>', f"{p:.1f}%", cls="mini")
    return f'<span class="pbar">{bar}<span class="pv">{p:.0f}%</span></span>'


def _grants_chart(by_system: dict[str, dict[str, int]], total: dict[str, int]) -> str:
    rows = [(f"{_label(s)[0]}", s, v) for s, v in by_system.items()]
    rows.append(("All systems", "", total))
    W, left, right, bar_h, gap, top = 860, 150, 70, 26, 14, 8
    H = top + len(rows) * (bar_h + gap) + 4
    mx = max((sum(v.values()) for _, _, v in rows), default=1) or 1
    span = W - left - right
    body = []
    for i, (name, sysid, v) in enumerate(rows):
        y = top + i * (bar_h + gap)
        is_total = not sysid
        body.append(_text(left - 12, y + bar_h / 2 + 4, name, anchor="end", cls="lbl" + (" strong" if is_total else "")))
        if sysid:
            body.append(_text(left - 12, y + bar_h / 2 + 16, _label(sysid)[1], anchor="end", cls="sub"))
        x = float(left)
        n = sum(v.values())
        body.append(f'<rect x="{left}" y="{y}" width="{span}" height="{bar_h}" rx="4" fill="{PAL["grid"]}"/>')
        for cat in GRANT_CATEGORIES:
            c = v.get(cat, 0)
            if not c:
                continue
            w = span * c / mx
            body.append(f'<g><rect x="{x:.1f}" y="{y}" width="{max(w, 2):.1f}" height="{bar_h}" fill="{CAT_COLORS[cat]}">'
                        f"<title>{esc(f'{name}: {c} grants — {CAT_LABELS[cat]}')}</title></rect>")
            if w > 30:
                fill = "#fff" if cat != "inferred" else PAL["ink"]
                body.append(_text(x + w / 2, y + bar_h / 2 + 4, _n(c), anchor="middle", fill=fill, cls="val"))
            body.append("</g>")
            x += w
        body.append(_text(x + 8, y + bar_h / 2 + 4, f"{_n(n)} grants", cls="lbl muted"))
        if is_total:
            body.append(f'<line x1="{left - 140}" x2="{W - 10}" y1="{y - gap / 2:.1f}" y2="{y - gap / 2:.1f}" '
                        f'stroke="{PAL["line"]}"/>')
    return _svg(W, H, "".join(body), "Grants by system and how each is justified")


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{esc(t)}</span>' for c, t in items) + "</div>"


def _latency_chart(latencies: list[dict[str, Any]], stats: dict[str, dict[str, Any]], sla: float) -> str:
    systems = list(stats)
    if not systems:
        return '<p class="empty">No removal was required in the period.</p>'
    vals = [float(r["latency_hours"]) for r in latencies if r["latency_hours"] is not None]
    lo = min([-24.0, *vals])
    lo = math.floor(lo / 24) * 24
    hi = max([sla * 3, *vals])
    day_step = 1 if hi <= 24 * 12 else 2 if hi <= 24 * 24 else 7
    hi = math.ceil(hi / (24 * day_step)) * 24 * day_step
    W, left, right, top, row_h = 1000, 130, 190, 34, 60
    miss_w = 74
    x0, x1 = left, W - right - miss_w - 18
    H = top + row_h * len(systems) + 40
    # piecewise scale: before due 12%, inside the SLA 38%, beyond it the rest (so both clusters are readable)
    xa, xb = x0 + (x1 - x0) * 0.12, x0 + (x1 - x0) * 0.50

    def X(h: float) -> float:
        if h <= 0:
            return x0 + (h - lo) / (0 - lo) * (xa - x0) if lo < 0 else xa
        if h <= sla:
            return xa + h / sla * (xb - xa)
        return xb + (h - sla) / max(hi - sla, 1e-9) * (x1 - xb)

    body = []
    y_top, y_bot = top - 6, H - 34
    body.append(f'<rect x="{x0:.1f}" y="{y_top}" width="{xa - x0:.1f}" height="{y_bot - y_top}" fill="#f8fafc"/>')
    body.append(f'<rect x="{xa:.1f}" y="{y_top}" width="{xb - xa:.1f}" height="{y_bot - y_top}" fill="#f0fdf4"/>')
    body.append(f'<rect x="{xb:.1f}" y="{y_top}" width="{x1 - xb:.1f}" height="{y_bot - y_top}" fill="#fff7ed"/>')
    ticks = [(lo, f"{lo / 24:+.0f} d"), (0.0, "due")]
    ticks += [(h, f"{h:.0f} h") for h in (sla / 4, sla / 2, sla * 3 / 4)]
    ticks += [(float(sla), f"{sla:.0f} h")]
    d = 24.0 * day_step
    h = math.ceil((sla + 1) / d) * d
    while h <= hi + 1e-9:
        ticks.append((h, f"{h / 24:.0f} d"))
        h += d
    for h, lab in ticks:
        x = X(h)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_top}" y2="{y_bot}" stroke="{PAL["line"]}" '
                    f'stroke-width="{1 if h not in (0.0, float(sla)) else 0}"/>')
        body.append(_text(x, y_bot + 14, lab, anchor="middle", cls="tick"))
    body.append(_text((x0 + xa) / 2, top - 12, "before due", anchor="middle", cls="tick"))
    body.append(_text((xa + xb) / 2, top - 12, f"within {sla:.0f} h", anchor="middle", cls="tick", fill=PAL["ok"],
                      weight="600"))
    body.append(_text((xb + x1) / 2, top - 12, "late", anchor="middle", cls="tick", fill=PAL["late"], weight="600"))
    body.append(f'<line x1="{xa:.1f}" x2="{xa:.1f}" y1="{y_top}" y2="{y_bot}" stroke="{PAL["faint"]}"/>')
    body.append(f'<line x1="{xb:.1f}" x2="{xb:.1f}" y1="{y_top - 4}" y2="{y_bot}" stroke="{PAL["bad"]}" '
                f'stroke-dasharray="5 4" stroke-width="1.6"/>')
    body.append(_text(xb + 5, y_top + 10, f"{sla:.0f} h SLA", cls="tick", fill=PAL["bad"], weight="600"))
    mx0 = x1 + 18
    body.append(f'<rect x="{mx0:.1f}" y="{y_top}" width="{miss_w}" height="{y_bot - y_top}" rx="6" fill="#fef2f2"/>')
    body.append(_text(mx0 + miss_w / 2, top - 12, "not removed", anchor="middle", cls="tick", fill=PAL["bad"],
                      weight="600"))
    body.append(_text((x0 + x1) / 2, H - 2, "time from the trigger (termination, end date, contract end, expiry) "
                      "to the last removal — scale changes at due and at the SLA", anchor="middle", cls="sub"))
    for i, system in enumerate(systems):
        cy = top + i * row_h + row_h / 2
        st = stats[system]
        name, inst = _label(system)
        body.append(_text(left - 14, cy + 1, name, anchor="end", cls="lbl strong"))
        body.append(_text(left - 14, cy + 15, inst, anchor="end", cls="sub"))
        rows = [r for r in latencies if r["system"] == system]
        lat = sorted(float(r["latency_hours"]) for r in rows if r["latency_hours"] is not None)
        if len(lat) >= 3:
            q1, q2, q3 = (_quantile(lat, q) for q in (0.25, 0.5, 0.75))
            body.append(f'<rect x="{X(q1):.1f}" y="{cy - 13:.1f}" width="{max(X(q3) - X(q1), 2):.1f}" height="26" '
                        f'rx="3" fill="none" stroke="{PAL["faint"]}" stroke-width="1.2"/>')
            body.append(f'<line x1="{X(q2):.1f}" x2="{X(q2):.1f}" y1="{cy - 13:.1f}" y2="{cy + 13:.1f}" '
                        f'stroke="{PAL["ink"]}" stroke-width="2"><title>median {esc(_dur(q2))}</title></line>')
        for r in rows:
            key = f"{r['trigger_record_id']}|{r['person_id']}|{r['system']}|{r['trigger_kind']}"
            dy = _jitter(key, 15)
            tip = (f"{r['person_id']} — {r['trigger_kind']} {r['trigger_record_id']}, due {_t(r['due_at'])}: "
                   f"{r['status']}" + (f", {_dur(r['latency_hours'])}" if r["latency_hours"] is not None else
                                       f", {r['accesses'] - r['removed']} of {r['accesses']} accesses still held"))
            if r["latency_hours"] is None:
                x = mx0 + miss_w / 2 + _jitter(key + "x", miss_w / 2 - 10)
                body.append(f'<circle cx="{x:.1f}" cy="{cy + dy:.1f}" r="4.5" fill="#fff" stroke="{PAL["bad"]}" '
                            f'stroke-width="2"><title>{esc(tip)}</title></circle>')
            else:
                color = STATUS_COLORS.get(r["status"], PAL["ok"])
                body.append(f'<circle cx="{X(float(r["latency_hours"])):.1f}" cy="{cy + dy:.1f}" r="4" fill="{color}" '
                            f'fill-opacity="0.8" stroke="#fff" stroke-width="0.8"><title>{esc(tip)}</title></circle>')
        tx = W - right + 16
        body.append(_text(tx, cy - 6, f"{_pct_s(st['within_sla_pct'], 0)} within SLA", cls="lbl strong"))
        body.append(_text(tx, cy + 10, f"{st['required']} required · {st['late']} late · {st['missing']} missing",
                          cls="sub"))
    return _svg(W, H + 6, "".join(body), "Removal latency per system against the SLA")


def _pass_chart(controls: list[dict[str, Any]]) -> str:
    rows = [c for c in controls if c.get("pass_rate") is not None or c.get("status") == "error"]
    rows.sort(key=lambda c: (c.get("status") != "error", c.get("pass_rate") or 0, c["control_id"]))
    if not rows:
        return '<p class="empty">No completed control run has a tested population yet.</p>'
    W, left, right, bar_h, gap, top = 1030, 400, 170, 16, 9, 6
    H = top + len(rows) * (bar_h + gap)
    span = W - left - right
    body = []
    for i, c in enumerate(rows):
        y = top + i * (bar_h + gap)
        title = c.get("title") or c["control_id"]
        body.append(_text(left - 10, y + bar_h - 3, title[:58] + ("…" if len(title) > 58 else ""), anchor="end",
                          cls="lbl"))
        body.append(f'<rect x="{left}" y="{y}" width="{span}" height="{bar_h}" rx="3" fill="{PAL["grid"]}"/>')
        if c.get("status") == "error":
            body.append(_text(left + 6, y + bar_h - 3, f"error: {c.get('error_message') or ''}"[:90], fill=PAL["bad"],
                              cls="lbl"))
            continue
        p = c["pass_rate"]
        color = PAL["ok"] if p >= 99.5 else PAL["warn"] if p >= 90 else PAL["bad"]
        tip = f"{title}: {p:.1f}% pass ({c['ok']} ok, {c['alarm']} alarm)"
        body.append(f'<rect x="{left}" y="{y}" width="{span * p / 100:.1f}" height="{bar_h}" rx="3" fill="{color}">'
                    f"<title>{esc(tip)}</title></rect>")
        body.append(_text(left + span + 8, y + bar_h - 3, f"{p:.1f}%  ·  {_n(c['alarm'])} alarm / {_n(c['ok'] + c['alarm'])}",
                          cls="lbl muted"))
    return _svg(W, H, "".join(body), "Pass rate of each control, latest run")


def _history_chart(history: list[dict[str, Any]]) -> str:
    pts = [(i, a["pass_rate"], a) for i, a in enumerate(history) if a.get("pass_rate") is not None]
    if len(pts) < 2:
        return ""
    W, H, left, right, top, bottom = 900, 190, 50, 20, 16, 36
    lo = max(0.0, math.floor(min(p for _, p, _ in pts) / 10) * 10 - 10)

    def X(i: int) -> float:
        return left + i * (W - left - right) / max(len(history) - 1, 1)

    def Y(p: float) -> float:
        return top + (100 - p) / (100 - lo) * (H - top - bottom)

    body = []
    for g in range(int(lo), 101, 10):
        body.append(f'<line x1="{left}" x2="{W - right}" y1="{Y(g):.1f}" y2="{Y(g):.1f}" stroke="{PAL["grid"]}"/>')
        body.append(_text(left - 8, Y(g) + 4, f"{g}%", anchor="end", cls="tick"))
    path = " ".join(f"{'M' if k == 0 else 'L'}{X(i):.1f},{Y(p):.1f}" for k, (i, p, _) in enumerate(pts))
    body.append(f'<path d="{path}" fill="none" stroke="{PAL["info"]}" stroke-width="2.5"/>')
    for i, p, a in pts:
        tip = f"assessment as of {_t(a.get('as_of'))}: {p:.1f}% pass, {a['alarm']} alarms"
        body.append(f'<circle cx="{X(i):.1f}" cy="{Y(p):.1f}" r="4.5" fill="#fff" stroke="{PAL["info"]}" stroke-width="2">'
                    f"<title>{esc(tip)}</title></circle>")
        anchor = "start" if i == 0 else "end" if i == len(history) - 1 else "middle"
        body.append(_text(X(i), H - 18, f"assessment {i + 1}", anchor=anchor, cls="tick"))
        body.append(_text(X(i), H - 5, f"data as of {_t(a.get('as_of'), day=True)}", anchor=anchor, cls="sub"))
    return _svg(W, H, "".join(body), "Overall pass rate per assessment")


# ---------------------------------------------------------------- timelines

# ---------------------------------------------------------------- HTML

CSS = """
:root{--ink:#0f172a;--muted:#64748b;--faint:#94a3b8;--line:#e2e8f0;--bg:#f1f5f9;--card:#fff;--ok:#16a34a;
--warn:#d97706;--bad:#dc2626;--info:#2563eb;--violet:#7c3aed}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;font:14px/1.5 "Inter","Segoe UI","Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif;
color:var(--ink);-webkit-font-smoothing:antialiased}
code,.mono{font-family:"JetBrains Mono","SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
header.top{background:linear-gradient(120deg,#0b1224 0%,#172554 60%,#1e1b4b 100%);color:#e2e8f0;padding:28px 0 84px}
.wrap{max-width:1200px;margin:0 auto;padding:0 28px}
.brand{display:flex;align-items:center;gap:10px;font-weight:600;letter-spacing:.02em;color:#c7d2fe;font-size:13px}
.brand svg{display:block}
h1{margin:14px 0 4px;font-size:30px;line-height:1.2;color:#fff;font-weight:700;letter-spacing:-.01em}
.subtitle{color:#a5b4fc;font-size:15px}
.meta{display:flex;flex-wrap:wrap;gap:10px 28px;margin-top:20px;font-size:13px}
.meta div span{display:block;color:#94a3b8;font-size:11px;text-transform:uppercase;letter-spacing:.08em}
.meta div b{color:#f8fafc;font-weight:600}
.seal{margin-top:18px;display:flex;gap:14px;align-items:center;background:rgba(255,255,255,.06);
border:1px solid rgba(255,255,255,.12);border-radius:12px;padding:12px 16px;font-size:13px;flex-wrap:wrap}
.seal .badge{font-weight:600}
.seal code{color:#c7d2fe;word-break:break-all}
.badge{display:inline-flex;align-items:center;gap:6px;border-radius:999px;padding:2px 10px;font-size:12px;
font-weight:600;white-space:nowrap}
.b-ok{background:#dcfce7;color:#166534}.b-bad{background:#fee2e2;color:#991b1b}.b-warn{background:#fef3c7;color:#92400e}
.b-na{background:#e2e8f0;color:#475569}.b-info{background:#dbeafe;color:#1e40af}.b-violet{background:#ede9fe;color:#5b21b6}
main.wrap{margin-top:-60px}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:16px}
.kpi{background:var(--card);border-radius:14px;padding:18px 20px;box-shadow:0 1px 2px rgba(15,23,42,.06),
0 8px 24px rgba(15,23,42,.06);border:1px solid var(--line)}
.kpi .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.06em;font-weight:600}
.kpi .v{font-size:30px;font-weight:700;margin:6px 0 2px;letter-spacing:-.02em}
.kpi .d{color:var(--muted);font-size:12.5px}
.kpi.ok .v{color:var(--ok)}.kpi.bad .v{color:var(--bad)}.kpi.warn .v{color:var(--warn)}
nav.toc{display:flex;gap:6px;flex-wrap:wrap;margin:22px 0 6px}
nav.toc a{color:#334155;text-decoration:none;font-size:13px;padding:6px 12px;border-radius:999px;background:#fff;
border:1px solid var(--line)}
section.card{background:var(--card);border:1px solid var(--line);border-radius:16px;padding:26px 28px;margin:18px 0;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
section.card>h2{margin:0 0 2px;font-size:20px;letter-spacing:-.01em;display:flex;align-items:center;gap:10px}
section.card>h2 .num{display:inline-grid;place-items:center;width:26px;height:26px;border-radius:8px;background:#eef2ff;
color:#4338ca;font-size:13px}
.lead{color:var(--muted);margin:0 0 18px;max-width:900px}
h3{font-size:15px;margin:24px 0 10px}
.grid2{display:grid;grid-template-columns:3fr 2fr;gap:20px}
.grid2 code{white-space:nowrap}.grid2 .badge{margin:1px 0}
.stats{display:flex;gap:12px;flex-wrap:wrap;margin:4px 0 16px}
.stat{border:1px solid var(--line);border-radius:12px;padding:10px 14px;min-width:140px}
.stat b{display:block;font-size:22px;letter-spacing:-.02em}.stat span{color:var(--muted);font-size:12px}
.stat.bad b{color:var(--bad)}.stat.ok b{color:var(--ok)}.stat.warn b{color:var(--warn)}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;font-weight:600;color:#475569;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;
border-bottom:1px solid var(--line);padding:8px 10px;background:#f8fafc;white-space:nowrap}
td{border-bottom:1px solid #f1f5f9;padding:7px 10px;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.nw{white-space:nowrap;font-variant-numeric:tabular-nums}td.id code{word-break:break-all;font-size:11px;color:#475569}
td.why{font-size:12px;color:#475569;max-width:260px}
table.fixed{table-layout:fixed}table.fixed td{overflow-wrap:anywhere}table.fixed th{white-space:normal}
td.req .chips{margin-top:6px}td.ctl code{font-size:11px}.absent{color:var(--faint)}
tr.total td{font-weight:600;border-top:2px solid var(--line);background:#fafafa}
.tbl{overflow-x:auto;border:1px solid var(--line);border-radius:12px}
.tbl table{margin:0}.tbl tr:last-child td{border-bottom:0}
.muted{color:var(--muted)}.small{font-size:12px}
.ok-t{color:var(--ok);font-weight:600}.bad-t{color:var(--bad);font-weight:600}.warn-t{color:var(--warn);font-weight:600}
.pbar{display:inline-flex;align-items:center;gap:6px}.pv{font-size:11.5px;color:#475569;min-width:30px;
font-variant-numeric:tabular-nums}
.na{color:var(--faint);font-size:12px}
svg.chart{max-width:100%;height:auto;display:block}
svg.mini,svg.icon{display:inline-block;vertical-align:middle}
svg text{font-family:"Inter","Segoe UI","Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif}
svg .lbl{font-size:12.5px;fill:#334155}svg .strong{font-weight:600;fill:#0f172a}svg .muted{fill:#64748b}
svg .sub{font-size:10.5px;fill:#94a3b8}svg .tick{font-size:11px;fill:#64748b}svg .val{font-size:11.5px;font-weight:600}
svg .tlabel{font-size:11px;font-weight:700}
svg .cnt{font-size:10px;font-weight:700;fill:#334155}svg .grp{font-size:9.5px;font-weight:700;letter-spacing:.12em}
.legend{display:flex;flex-wrap:wrap;gap:8px 18px;margin:10px 0 4px;font-size:12.5px;color:#475569}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px}
.tl-legend{padding:10px 12px;background:#f8fafc;border-radius:10px;border:1px solid var(--line)}
.empty{color:var(--muted);background:#f8fafc;border:1px dashed #cbd5e1;border-radius:12px;padding:16px 18px}
.na-box{display:flex;gap:12px;align-items:flex-start;color:#334155;background:#f8fafc;border:1px dashed #cbd5e1;
border-radius:12px;padding:16px 18px}
.callout{border-left:4px solid var(--warn);background:#fffbeb;border-radius:8px;padding:12px 16px;margin:16px 0;
font-size:13px}
.callout b{color:#92400e}
.callout code{background:#fff;border:1px solid #fde68a;border-radius:4px;padding:1px 5px;color:#7c2d12}
.person{border:1px solid var(--line);border-radius:14px;padding:18px 18px 12px;margin:16px 0}
.person h3{margin:0;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.person .facts{color:var(--muted);font-size:12.5px;margin:4px 0 10px}
details{margin:8px 0}
summary{cursor:pointer;color:#3730a3;font-weight:600;font-size:13px}
.finding{border:1px solid var(--line);border-radius:12px;padding:12px 16px;margin:10px 0}
.finding .hd{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.finding .res{font-weight:600}
.chain{list-style:none;margin:10px 0 2px;padding:0 0 0 18px;border-left:2px solid var(--line)}
.chain li{position:relative;margin:0 0 9px;padding-left:4px}
.chain li:before{content:"";position:absolute;left:-26px;top:4px;width:12px;height:12px;border-radius:50%;
border:2px solid #fff;box-shadow:0 0 0 1px var(--line);background:var(--faint)}
.chain li.governance:before{background:var(--info)}.chain li.approval:before{background:var(--ok)}
.chain li.hr:before{background:var(--violet)}.chain li.enforcement:before{background:#0ea5e9}
.chain li.removal:before{background:var(--ink)}
.chain li.rejected:before{background:var(--bad)}.chain li.held:before{background:#fff;box-shadow:0 0 0 2px var(--bad)}
.chain .w{font-weight:600}.chain .m{color:var(--muted);font-size:12px}
.chips{display:flex;gap:4px;flex-wrap:wrap}
.chip{font-size:11px;border-radius:6px;padding:1px 6px;background:#f1f5f9;color:#334155;border:1px solid var(--line);
white-space:nowrap}
footer{color:var(--muted);font-size:12px;padding:20px 0 40px}
@media (max-width:900px){.kpis{grid-template-columns:1fr 1fr}.grid2{grid-template-columns:1fr}}
@media print{header.top{padding-bottom:30px}main.wrap{margin-top:0}section.card{break-inside:avoid-page}}
"""

LOGO = ('<svg width="22" height="22" viewBox="0 0 24 24" fill="none" aria-hidden="true">'
        '<path d="M12 2 3 6v6c0 5 3.8 9.3 9 10 5.2-.7 9-5 9-10V6z" fill="#6366f1"/>'
        '<path d="m8 12 3 3 5-6" stroke="#fff" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>'
        "</svg>")


def _badge(text: Any, kind: str) -> str:
    return f'<span class="badge b-{kind}">{esc(text)}</span>'


def _tbl(headers: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]], *, total: Sequence[Any] | None = None,
         raw: bool = False, limit: int | None = TABLE_ROWS, count: int | None = None,
         widths: Sequence[str] | None = None) -> str:
    """A table; cells are escaped unless ``raw`` (then each cell is already HTML built from escaped parts)."""
    head = "".join(f'<th class="{c}">{esc(h)}</th>' for h, c in headers)
    body = []
    rows = list(rows)
    for r in rows[:limit] if limit else rows:
        body.append("<tr>" + "".join(f'<td class="{c}">{cell if raw else esc(cell)}</td>'
                                     for (_, c), cell in zip(headers, r, strict=True)) + "</tr>")
    if total is not None:
        body.append('<tr class="total">' + "".join(f'<td class="{c}">{cell if raw else esc(cell)}</td>'
                                                   for (_, c), cell in zip(headers, total, strict=True)) + "</tr>")
    more = ""
    n = count if count is not None else len(rows)
    if limit and n > limit:
        more = f'<p class="muted small">Showing {limit} of {_n(n)}; report.json has every row.</p>'
    cols = ""
    if widths:
        cols = "<colgroup>" + "".join(f'<col style="width:{esc(w)}">' for w in widths) + "</colgroup>"
    cls = ' class="fixed"' if widths else ""
    return (f'<div class="tbl"><table{cls}>{cols}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f"</div>{more}")


def _na(what: str, why: str) -> str:
    return (f'<div class="na-box">{_badge(NOT_YET, "na")}<div><b>{esc(what)}</b> is {NOT_YET}: '
            f"{esc(why)}.</div></div>")


def _section(sid: str, num: int, title: str, lead: str, body: str) -> str:
    return (f'<section class="card" id="{sid}"><h2><span class="num">{num}</span>{esc(title)}</h2>'
            f'<p class="lead">{esc(lead)}</p>{body}</section>')


def _ids(*vals: Any) -> str:
    return " ".join(f"<code>{esc(v)}</code>" for v in vals if v)


def render_html(data: dict[str, Any]) -> str:
    meta, led = data["meta"], data["ledger"]
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
             "img-src data:; base-uri 'none'; form-action 'none'\">",
             '<meta name="referrer" content="no-referrer">',
             f"<title>{esc(meta['company'])} — identity governance evidence report</title>",
             f"<style>{CSS}</style></head><body>"]
    parts.append(_header(meta, led))
    parts.append('<main class="wrap">')
    parts.append(_kpis(data))
    parts.append('<nav class="toc">' + "".join(
        f'<a href="#{sid}">{esc(t)}</a>' for sid, t in (
            ("intake", "Evidence intake"), ("linking", "Approval → execution"), ("removals", "Removals"),
            ("controls", "Controls & findings"), ("traceability", "Traceability"), ("timelines", "Lifecycles"))) + "</nav>")
    parts.append(_intake_html(data["intake"]))
    parts.append(_linking_html(data["linking"]))
    parts.append(_removals_html(data["removals"]))
    parts.append(_controls_html(data["controls"]))
    parts.append(_traceability_html(data["traceability"]))
    parts.append(_timelines_html(data["timelines"], meta, data))
    parts.append('<footer class="wrap">Generated by accessproof from the evidence store. Every value from a log or '
                 "record is shown as text. All times UTC. The machine-readable twin of this page is "
                 "<code>report.json</code>.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _header(meta: dict[str, Any], led: dict[str, Any]) -> str:
    if not led.get("available"):
        seal = (f'{_badge("Ledger " + NOT_YET, "na")}<span>{esc(led.get("reason"))}; the numbers below come from the '
                "store as it is.</span>")
    else:
        cp = led.get("checkpoint")
        if not cp:
            seal = (f'{_badge("Ledger: no checkpoint", "warn")}<span>{_n(led["entries"])} records sealed, '
                    f'{esc(led.get("signature"))}.</span>')
        else:
            kind = "ok" if led.get("signature_ok") else "bad"
            cover = ("covers every sealed record" if cp["covers_all_entries"]
                     else f"{_n(led['entries'] - cp['size'])} records sealed after it")
            seal = (f'{_badge(("✓ " if led.get("signature_ok") else "✗ ") + str(led.get("signature")), kind)}'
                    f'<span>Latest checkpoint: <b>{_n(cp["size"])}</b> records, {esc(cover)}, signed '
                    f'{esc(_t(cp["created"]))} UTC</span><span>root <code>{esc(cp["root"])}</code></span>')
            if led.get("raw_unsealed"):
                unsealed = f"{_n(led['raw_unsealed'])} records not sealed"
                seal += f'{_badge(unsealed, "warn")}<span>of {_n(led["raw_records"])} raw records in the store</span>'
    period = f"{_t(meta['period_start'], day=True)} → {_t(meta['period_end'], day=True)}"
    return f"""<header class="top"><div class="wrap">
<div class="brand">{LOGO}<span>accessproof · evidence report</span></div>
<h1>{esc(meta['company'])}</h1>
<div class="subtitle">Identity governance: what was approved, what was done, and what was removed</div>
<div class="meta">
<div><span>Period</span><b>{esc(period)}</b> <span style="display:inline;text-transform:none;letter-spacing:0">({esc(_n(meta['period_days']))} days)</span></div>
<div><span>Generated at</span><b data-metric="generated_at">{esc(_t(meta['generated_at']))} UTC</b></div>
<div><span>People in HR</span><b>{esc(_n(meta['people']))}</b></div>
<div><span>Basis</span><b>latest event in the data, not the clock</b></div>
</div>
<div class="seal" id="ledger">{seal}</div>
</div></header>"""


def _kpi(key: str, label: str, value: str, detail: str, kind: str = "", raw_value: Any = None) -> str:
    dv = f' data-value="{esc(raw_value)}"' if raw_value is not None else ""
    return (f'<div class="kpi {kind}"><div class="k">{esc(label)}</div>'
            f'<div class="v" data-metric="{esc(key)}"{dv}>{esc(value)}</div><div class="d">{esc(detail)}</div></div>')


def _kpis(data: dict[str, Any]) -> str:
    it, lk, rm, ct = data["intake"], data["linking"], data["removals"], data["controls"]
    t = it["totals"]
    out = [_kpi("accepted", "Records ingested", _n(t["accepted"]),
                f"{_n(t['read'])} read · {_n(t['duplicate'])} duplicate · {_n(t['quarantined'])} quarantined",
                raw_value=t["accepted"])]
    if lk.get("available"):
        g = lk["grants"]
        just = lk["grants_total"]["explicit"] + lk["grants_total"]["inferred"]
        p = _pct(just, g)
        out.append(_kpi("justified_pct", "Grants with an approval", _pct_s(p), f"{_n(just)} of {_n(g)} grants · "
                        f"{_n(g - just)} without", "ok" if p is not None and p >= 99 else "warn", raw_value=just))
    else:
        out.append(_kpi("justified_pct", "Grants with an approval", "—", NOT_YET))
    if rm.get("available"):
        req = sum(s["required"] for s in rm["per_system"].values())
        on = sum(s["on_time"] for s in rm["per_system"].values())
        p = _pct(on, req)
        out.append(_kpi("removals_on_time", f"Removals within {rm['sla_hours']:.0f} h", _pct_s(p),
                        f"{_n(on)} of {_n(req)} removals on time · {_n(rm['by_status'].get('missing', 0))} accesses never removed",
                        "ok" if p is not None and p >= 99 else "bad", raw_value=on))
    else:
        out.append(_kpi("removals_on_time", "Removals within SLA", "—", NOT_YET))
    if ct.get("available"):
        out.append(_kpi("open_findings", "Open findings", _n(ct["open_findings"]),
                        f"across {len(ct['controls'])} controls", "bad" if ct["open_findings"] else "ok",
                        raw_value=ct["open_findings"]))
    else:
        out.append(_kpi("open_findings", "Open findings", "—", f"controls {NOT_YET}"))
    return '<div class="kpis">' + "".join(out) + "</div>"


def _intake_html(it: dict[str, Any]) -> str:
    rows = []
    for f in it["feeds"]:
        bar = _mini_stack([(f["accepted"], PAL["info"], f"{f['accepted']} accepted"),
                           (f["duplicate"], PAL["faint"], f"{f['duplicate']} duplicate"),
                           (f["quarantined"], PAL["bad"], f"{f['quarantined']} quarantined")], 120, 9)
        ok = ('<span class="ok-t">✓ all</span>' if f["accounted"] else '<span class="bad-t">✗ gap</span>')
        rows.append((esc(f["feed"]), f"<code>{esc(f['source_type'])}</code>", esc(_n(f["files"])), esc(_n(f["read"])),
                     esc(_n(f["accepted"])), esc(_n(f["duplicate"])), esc(_n(f["quarantined"])), bar, ok))
    t = it["totals"]
    heads = (("Feed", ""), ("Format", ""), ("Files", "num"), ("Read", "num"), ("Accepted", "num"),
             ("Duplicate", "num"), ("Quarantined", "num"), ("", ""), ("Accounted for", ""))
    total = ("All feeds", "", esc(_n(t["files"])), f'<span data-metric="read">{esc(_n(t["read"]))}</span>',
             f'<span data-metric="intake_accepted">{esc(_n(t["accepted"]))}</span>', esc(_n(t["duplicate"])),
             f'<span data-metric="quarantined">{esc(_n(t["quarantined"]))}</span>', "",
             '<span class="ok-t">✓ read = accepted + duplicate + quarantined</span>' if t["accounted"]
             else '<span class="bad-t">✗ records unaccounted for</span>')
    feeds = _tbl(heads, rows, total=total, raw=True, limit=None) if rows else \
        '<p class="empty">No ingest summary was passed to the report.</p>'
    st = it["store"]
    store_line = (f'<p class="muted small">In the store now: {_n(st.get("raw_records"))} raw records kept byte for byte, '
                  f'{_n(st.get("events"))} events, {_n(st.get("workflow_records"))} governance records, '
                  f'{_n(st.get("persons"))} HR records, {_n(st.get("quarantine"))} quarantined.</p>')
    q_rows = []
    for q in it["quality"]:
        name, inst = _label(q["source"])
        q_rows.append((f'<b>{esc(name)}</b> <span class="muted small">{esc(inst)}</span>',
                       _badge(q["source_type"], "violet" if q["source_type"] in ("workflow", "person") else "info"),
                       esc(_n(q["events"])), esc(f"{_t(q['first_event'], day=True)} → {_t(q['last_event'], day=True)}"),
                       *(_pct_bar(q[c]) for c in ("time_pct", "actor_pct", "target_pct", "approval_ref_pct",
                                                  "mapped_pct")),
                       f'<span class="{"bad-t" if q["id_conflicts"] else "muted"}">{esc(_n(q["id_conflicts"]))}</span>'))
    quality = _tbl((("Source", "nw"), ("Kind", ""), ("Records", "num"), ("Span", "nw small"), ("Time", ""), ("Actor", ""),
                    ("Target / subject", ""), ("Approval ref", ""), ("Mapped action", ""), ("Id conflicts", "num")),
                   q_rows, raw=True, limit=None)
    flagged = ""
    if it["flagged_content"]:
        items = "".join(
            f'<li>{esc(f["where"])} · <code>{esc(f["field"])}</code> · {esc(f["kind"])}: <code>{esc(f["value"])}</code> '
            f'<span class="muted">({esc(_n(f["records"]))} record(s), e.g. {_ids(f["example_id"])})</span></li>'
            for f in it["flagged_content"][:12])
        flagged = (f'<div class="callout" id="flagged"><b>Hostile-looking content in the evidence.</b> '
                   f'{len(it["flagged_content"])} value(s) carry markup or spreadsheet formulas. They are kept '
                   f"verbatim in the store and shown here as text only; nothing in them is executed.<ul>{items}</ul></div>")
    reasons = ""
    if it["quarantine_reasons"]:
        reasons = "<h3>Why records were quarantined</h3>" + _tbl(
            (("Format", ""), ("Reason", ""), ("Records", "num")),
            [(r["source_type"], r["reason"], _n(r["records"])) for r in it["quarantine_reasons"]])
    body = (f"{feeds}{store_line}{reasons}{flagged}<h3>Evidence quality by source</h3>"
            '<p class="muted small">How often the fields an assessor relies on are present. Governance and HR '
            "records have no approval reference or action mapping (n/a).</p>" + quality)
    return _section("intake", 1, "Evidence intake",
                    "Every record read from every export is accounted for: accepted into the store, recognised as a "
                    "duplicate of one already held, or quarantined with a reason.", body)


def _linking_html(lk: dict[str, Any]) -> str:
    if not lk.get("available"):
        return _section("linking", 2, "Approval → execution", "Each grant joined to the decision behind it.",
                        _na("Linking", lk.get("reason", "")))
    gt = lk["grants_total"]
    n_unlinked = len(lk["unlinked_grants"])
    stats = (f'<div class="stats"><div class="stat"><b data-metric="grants">{esc(_n(lk["grants"]))}</b><span>grants of '
             f'access in the logs</span></div>'
             f'<div class="stat ok"><b>{esc(_n(gt["explicit"]))}</b><span>justified, explicit</span></div>'
             f'<div class="stat ok"><b>{esc(_n(gt["inferred"]))}</b><span>justified, inferred</span></div>'
             f'<div class="stat {"bad" if n_unlinked else "ok"}"><b data-metric="unlinked_grants">{esc(_n(n_unlinked))}'
             f'</b><span>grants without a valid approval</span></div>'
             f'<div class="stat {"bad" if lk["never_executed"] else "ok"}"><b data-metric="never_executed">'
             f'{esc(_n(len(lk["never_executed"])))}</b><span>approved, never executed</span></div></div>')
    chart = _grants_chart(lk["grants_by_system"], gt) + _legend([(CAT_COLORS[c], CAT_LABELS[c]) for c in GRANT_CATEGORIES])
    rules = ('<div class="grid2"><div><h3>Grants</h3>' + _rules_table(lk["by_rule"], "grant") +
             '</div><div><h3>Removals</h3>' + _rules_table(lk["by_rule"], "remove") + "</div></div>")
    un_rows = [(esc(_t(r["time"])), esc(_label(r["system"])[0]), esc(r["actor"] or "—"), esc(r["target"] or "—"),
                esc(r["entitlement"] or "—"), _badge(r["reason_code"], "bad" if r["reason_code"] == "no-approval-found"
                                                     else "warn"),
                esc(_why(r)), _ids(r["event_id"]))
               for r in lk["unlinked_grants"]]
    unlinked = _tbl((("Time", "nw"), ("System", ""), ("Actor", ""), ("Target", ""), ("Entitlement", ""),
                     ("Finding", ""), ("Why", "why"), ("Event id", "id")), un_rows, raw=True) if un_rows else \
        '<p class="empty">Every grant in the period is justified by an approved record.</p>'
    ne_rows = [(esc(r["record_id"]), esc(_label(r["system"])[0]), esc(r["subject"] or "—"), esc(r["scope"] or "—"),
                esc(_t(r["decision_time"])), esc(r["reason"]))
               for r in lk["never_executed"]]
    never = _tbl((("Record", ""), ("System", ""), ("Subject", ""), ("Scope", ""), ("Approved", "nw"), ("Why", "why")),
                 ne_rows, raw=True) if ne_rows else \
        (f'<p class="empty">Every approved request was executed inside its window'
         f'{" (" + _n(lk["awaiting_execution"]) + " still inside it)" if lk["awaiting_execution"] else ""}.</p>')
    body = (stats + chart + '<h3>Links by basis and rule</h3><p class="muted small">Explicit: the event cites the '
            "record (ticket number in the event, or the session name of the provisioning role). Inferred: same person, "
            "same entitlement, inside the window after the decision; HR rules link birthright and leaver events to the "
            "HR event. Counts are events.</p>" + rules + f"<h3>Grants without a valid approval ({_n(n_unlinked)})</h3>" + unlinked +
            f"<h3>Approved requests never executed ({_n(len(lk['never_executed']))})</h3>" + never)
    return _section("linking", 2, "Approval → execution",
                    "Every grant of access in the identity systems joined to the governance decision that allowed it, "
                    "and every approved request to the change that carried it out.", body)


def _removals_html(rm: dict[str, Any]) -> str:
    if not rm.get("available"):
        return _section("removals", 3, "Removals", "Access removed when it had to be.", _na("Removals",
                                                                                        rm.get("reason", "")))
    bs = rm["by_status"]
    ps = rm["per_system"]
    req, on = sum(v["required"] for v in ps.values()), sum(v["on_time"] for v in ps.values())
    late, miss = sum(v["late"] for v in ps.values()), sum(v["missing"] for v in ps.values())
    stats = (f'<div class="stats"><div class="stat"><b data-metric="removals_required">{esc(_n(req))}</b>'
             f'<span>removals due (person × system)</span></div>'
             f'<div class="stat ok"><b data-metric="removals_within_sla">{esc(_n(on))}</b><span>done within '
             f'{rm["sla_hours"]:.0f} h</span></div><div class="stat warn"><b data-metric="removals_late">{esc(_n(late))}'
             f'</b><span>done late</span></div><div class="stat bad"><b data-metric="removals_missing">{esc(_n(miss))}'
             f'</b><span>not done: access still held</span></div><div class="stat"><b data-metric="required_accesses">'
             f'{esc(_n(rm["required_accesses"]))}</b><span>accesses covered ({esc(_n(bs.get("late", 0)))} late, '
             f'{esc(_n(bs.get("missing", 0)))} missing)</span></div></div>')
    chart = _latency_chart(rm["latencies"], rm["per_system"], rm["sla_hours"]) + _legend(
        [(PAL["ok"], "fully removed within SLA"), (PAL["late"], "removed late"), (PAL["bad"], "still held (missing)"),
         (PAL["faint"], "box: quartiles, line: median")])
    per = _tbl((("System", ""), ("Required", "num"), ("Within SLA", "num"), ("Late", "num"), ("Missing", "num"),
                ("Median", "num"), ("90th pct", "num"), ("Slowest", "num"), ("Within SLA", "")),
               [(f"<b>{esc(_label(s)[0])}</b> <span class='muted small'>{esc(_label(s)[1])}</span>",
                 esc(_n(v["required"])), esc(_n(v["on_time"])), esc(_n(v["late"])), esc(_n(v["missing"])),
                 esc(_dur(v["median_hours"])), esc(_dur(v["p90_hours"])), esc(_dur(v["max_hours"])),
                 _pct_bar(v["within_sla_pct"], 90)) for s, v in rm["per_system"].items()], raw=True, limit=None)
    groups = _late_groups(rm["late_and_missing"])
    rows = [(_badge(g["status"], "bad" if g["status"] == "missing" else "warn"),
             f"{esc(g['person'] or g['person_id'])}<br><span class='muted small'>{esc(g['person_id'])}</span>",
             f"{esc(g['trigger_kind'])}<br>{_ids(g['trigger_record_id'])}", esc(_label(g["system"])[0]),
             esc(g["account"] or "—"), esc(", ".join(g["accesses"])), esc(_t(g["due_at"])),
             esc(_t(g["removed_at"])) if g["removed_at"] else '<span class="bad-t">still held</span>',
             esc(_dur(g["latency_hours"])), "<br>".join(_ids(i) for i in g["removal_event_ids"][:3])
             + (f'<br><span class="muted small">+{len(g["removal_event_ids"]) - 3} more</span>'
                if len(g["removal_event_ids"]) > 3 else ""))
            for g in groups]
    table = _tbl((("Status", ""), ("Person", ""), ("Trigger", ""), ("System", ""), ("Account", ""), ("Access", ""),
                  ("Due", "nw"), ("Removed", "nw"), ("Latency", "num"), ("Removal event", "id")), rows, raw=True) \
        if rows else '<p class="empty">Every access that had to be removed was removed within the SLA.</p>'
    body = (stats + chart + "<h3>Per system</h3>" + per +
            f"<h3>Late and missing removals ({_n(len(rm['late_and_missing']))} accesses of {_n(len(groups))} "
            "person-system pairs)</h3>" + table)
    return _section("removals", 3, "Removals",
                    f"When someone leaves, a contract or an approved end date passes, or an exception expires, every "
                    f"access it covered must be removed within {rm['sla_hours']:.0f} hours. Each dot is one person's "
                    "access in one system: the time from the trigger to the last removal.", body)


def _why(r: dict[str, Any]) -> str:
    import re

    if r.get("candidates"):
        return "linked to " + re.sub(r" \([^)]*\)", "", str(r["candidates"])) + ", which does not justify it"
    return str(r.get("reason") or "")


def _rules_table(by_rule: list[dict[str, Any]], direction: str) -> str:
    piv: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in by_rule:
        if r["direction"] == direction:
            piv[(r["basis"], r["rule"])][r["status"]] += int(r["events"])
    if not piv:
        return '<p class="empty">None.</p>'
    rows = []
    for (basis, rule), st in sorted(piv.items(), key=lambda kv: (kv[0][0], -sum(kv[1].values()), kv[0][1])):
        other = " ".join(_badge(f"{k} {v}", "warn") for k, v in sorted(st.items()) if k != "justified")
        rows.append((_badge(basis, "info" if basis == "explicit" else "violet"), f"<code>{esc(rule)}</code>",
                     esc(_n(st.get("justified", 0))), other or '<span class="muted">—</span>'))
    return _tbl((("Basis", ""), ("Rule", ""), ("Justified", "num"), ("Not justified", "")), rows, raw=True, limit=None)


def _late_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Late and missing removals, one row per (status, person, trigger, system) with the accesses it covers."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["status"], r["person_id"], r["trigger_kind"], r["trigger_record_id"], r["system"])
        g = out.setdefault(key, {**{k: r[k] for k in ("status", "person_id", "person", "trigger_kind",
                                                       "trigger_record_id", "system", "account", "due_at")},
                                 "accesses": [], "removed_at": None, "latency_hours": None, "removal_event_ids": []})
        access = "whole account" if r["entitlement_type"] == "account" else (r["entitlement"] or r["entitlement_type"])
        if access not in g["accesses"]:
            g["accesses"].append(access)
        if r["removed_at"] and (g["removed_at"] is None or str(r["removed_at"]) > str(g["removed_at"])):
            g["removed_at"] = r["removed_at"]
        if r["latency_hours"] is not None:
            g["latency_hours"] = max(g["latency_hours"] or r["latency_hours"], r["latency_hours"])
        if r["removal_event_id"] and r["removal_event_id"] not in g["removal_event_ids"]:
            g["removal_event_ids"].append(r["removal_event_id"])
    return list(out.values())


def _controls_html(ct: dict[str, Any]) -> str:
    lead = ("Each control is a query over the linked evidence; every alarm becomes a finding that carries its chain "
            "of evidence — the governance record, the events that enforced it, and the removal.")
    if not ct.get("available"):
        return _section("controls", 4, "Controls and findings", lead, _na("Control testing", ct.get("reason", "")))
    ctl = ct["controls"]
    alarms = sum(int(c.get("alarm") or 0) for c in ctl)
    tested = sum(int(c.get("ok") or 0) + int(c.get("alarm") or 0) for c in ctl)
    states = Counter()
    for c in ctl:
        states.update(c.get("findings") or {})
    stats = (f'<div class="stats"><div class="stat"><b data-metric="controls_run">{esc(_n(len(ctl)))}</b>'
             f'<span>controls tested</span></div><div class="stat"><b>{esc(_n(tested))}</b><span>resources tested</span>'
             f'</div><div class="stat ok"><b>{esc(_pct_s(_pct(tested - alarms, tested)))}</b><span>overall pass rate'
             f'</span></div><div class="stat bad"><b data-metric="findings_open">{esc(_n(states.get("open", 0)))}</b>'
             f'<span>open findings</span></div><div class="stat warn"><b>{esc(_n(states.get("excepted", 0)))}</b>'
             f'<span>excepted (approved exception)</span></div><div class="stat"><b>{esc(_n(states.get("resolved", 0)))}'
             f'</b><span>resolved</span></div></div>')
    hist = _history_chart(ct["assessments"])
    history = (f"<h3>Pass rate over {len(ct['assessments'])} assessments</h3>{hist}" if hist else
               f'<p class="muted small">{len(ct["assessments"])} assessment(s) so far; the trend appears from the second '
               "one on.</p>")
    by_ctl = _group([f for f in ct["findings"] if "chain" in f], "control_id")
    blocks = []
    sev = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    for c in sorted(ctl, key=lambda c: (sev.get(c.get("severity") or "", 9),
                                        -int((c.get("findings") or {}).get("open", 0)), c["control_id"])):
        fs = by_ctl.get(c["control_id"], [])
        if not fs:
            continue
        total = sum((c.get("findings") or {}).values())
        items = "".join(_finding_html(f) for f in fs)
        more = (f'<p class="muted small">{_n(total - len(fs))} more finding(s) of this control are in report.json.</p>'
                if total > len(fs) else "")
        title = c.get("title") or c["control_id"]
        blocks.append(f'<details{" open" if len(blocks) < 2 else ""}><summary>{_badge(c.get("severity"), "na")} '
                      f'{esc(title)} — '
                      f'{esc(_n((c.get("findings") or {}).get("open", 0)))} open'
                      f' <code>{esc(c["control_id"])}</code></summary>{items}{more}</details>')
    findings = "".join(blocks) or '<p class="empty">No control has raised a finding.</p>'
    body = (stats + "<h3>Pass rate by control (latest run)</h3>" + _pass_chart(ctl) + history +
            "<h3>Findings and their evidence chains</h3>" + findings)
    return _section("controls", 4, "Controls and findings", lead, body)


def _finding_html(f: dict[str, Any]) -> str:
    kind = {"open": "bad", "excepted": "warn", "resolved": "ok"}.get(f.get("state") or "", "na")
    sev = {"critical": "bad", "high": "bad", "medium": "warn", "low": "info"}.get(f.get("severity") or "", "na")
    chain = []
    for node in f.get("chain", [])[:CHAIN_NODES]:
        meta = [f"{_t(node.get('time'))} UTC", _label(node.get("system"))[0]]
        if node.get("actor"):
            meta.append(f"by {node['actor']}")
        if node.get("basis"):
            meta.append(f"link: {node['basis']}" if node.get("type") == "enforcement" else node["basis"])
        if node.get("cites"):
            meta.append(f"cites {node['cites']}")
        chain.append(f'<li class="{esc(node.get("type"))}"><div class="w">{esc(node.get("what"))}</div>'
                     f'<div class="m">{esc(" · ".join(meta))} · {_ids(node.get("id"))}</div></li>')
    extra = len(f.get("chain", [])) - CHAIN_NODES
    if extra > 0:
        chain.append(f'<li><div class="m">{extra} more evidence record(s) in report.json</div></li>')
    if not chain:
        chain.append('<li><div class="m">evidence ids: ' + (_ids(*(f.get("evidence_ids") or [])[:8]) or "none")
                     + "</div></li>")
    exc = f' · excepted by {_ids(f["exception_id"])}' if f.get("exception_id") else ""
    return (f'<div class="finding"><div class="hd">{_badge(f.get("state"), kind)}{_badge(f.get("severity"), sev)}'
            f'<span class="res">{esc(f.get("resource"))}</span></div><div class="small">{esc(f.get("reason"))}</div>'
            f'<div class="muted small">first seen {esc(_t(f.get("first_seen")))} · last seen '
            f'{esc(_t(f.get("last_seen")))}{exc}</div><ol class="chain">{"".join(chain)}</ol></div>')


def _headline(text: str, limit: int = 150) -> str:
    """The first clause of a requirement (the full text is in the cell's tooltip and in report.json)."""
    import re

    m = re.search(r"[:.;](\s|$)| — ", text)
    head = text[: m.start()] if m and m.start() > 20 else text
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


def _traceability_html(tr: dict[str, Any]) -> str:
    lead = ("From each requirement to the control that tests it, the governance workflow and the identity systems it "
            "reads, who owns it, and where it stands.")
    if not tr.get("available"):
        return _section("traceability", 5, "Traceability matrix", lead, _na("The traceability matrix", tr.get("reason", "")))
    rows = []
    for r in tr["rows"]:
        by_fw: dict[str, list[str]] = defaultdict(list)
        for ref in r["frameworks"]:
            fw, _, req = ref.partition(":")
            by_fw[fw].append(req)
        chips = '<div class="chips">' + "".join(
            f'<span class="chip" title="{esc(", ".join(v))}"><b>{esc(FRAMEWORK_NAMES.get(k, k))}</b> '
            f'{esc(", ".join(v[:3]) + (f" +{len(v) - 3}" if len(v) > 3 else ""))}</span>'
            for k, v in sorted(by_fw.items())) + "</div>"
        if r["status"] == "not run":
            result = _badge("not run", "na")
        elif r["status"] == "error":
            result = _badge("error", "bad")
        else:
            result = _pct_bar(r["pass_rate"], 56) + f'<div class="muted small">{esc(_n(r["alarm"]))} alarm of ' \
                f'{esc(_n(r["population"]))}</div>'
        present = set(tr.get("present_sources") or [])

        def names(xs: list[str], present: set[str] = present) -> str:
            return ", ".join(esc(x) if x in present or not present else f'<span class="absent">{esc(x)}</span>'
                             for x in xs) or "—"

        sources = (f'<div class="small"><span class="muted">workflow:</span> {names(r["workflow_sources"])}</div>'
                   f'<div class="small"><span class="muted">evidence:</span> {names(r["evidence_sources"])}</div>')
        exc = esc(_n(r["excepted_findings"])) + ("<br>" + _ids(*r["exceptions"][:3]) if r["exceptions"] else "")
        full = r["requirement"] or "—"
        rows.append((f'<span title="{esc(full)}">{esc(_headline(full))}</span>{chips}',
                     f"<b>{esc(r['title'] or r['control_id'])}</b><br><code>{esc(r['control_id'])}</code>",
                     sources, f'<span class="small">{esc(r["owner"] or "—")}</span>', result,
                     f'<span class="{"bad-t" if r["open_findings"] else "muted"}">{esc(_n(r["open_findings"]))}</span>',
                     exc))
    table = _tbl((("Requirement", "req"), ("Control", "ctl"), ("Workflow → evidence sources", "src"), ("Owner", ""),
                  ("Latest result", ""), ("Open findings", "num"), ("Excepted", "num")),
                 rows, raw=True, limit=None, widths=("29%", "19%", "17%", "10%", "11%", "6%", "8%"))
    table += ('<p class="muted small">Sources in grey are read by the control but have no data in this store. '
              "Hover a requirement for its full text.</p>")
    return _section("traceability", 5, "Traceability matrix", lead, table)


def _timelines_html(tls: dict[str, Any], meta: dict[str, Any], data: dict[str, Any]) -> str:
    lead = ("A few people's access lives across systems, drawn from the evidence: governance lanes (HR, ServiceNow, "
            "QMS) above, identity systems below. Hover a marker for its record ids.")
    if not tls.get("available"):
        return _section("timelines", 6, "Lifecycle timelines", lead, _na("Timelines", tls.get("reason", "")))
    if not tls["people"]:
        return _section("timelines", 6, "Lifecycle timelines", lead,
                        '<p class="empty">No person with a lifecycle to show.</p>')
    start = _as_dt(meta["period_start"])
    end = _as_dt(meta["period_end"])
    start = datetime(start.year, start.month, start.day, tzinfo=UTC)
    gov = {q["source"] for q in data["intake"]["quality"] if q["source_type"] in ("workflow", "person")}
    blocks = [_legend_svg()]
    for tl in tls["people"]:
        p = tl["person"]
        facts = [p.get("person_id"), p.get("worker_type"), p.get("title"), p.get("business_unit"),
                 f"hired {_t(p.get('hired'), day=True)}" if p.get("hired") else None,
                 f"terminated {_t(p.get('terminated'), day=True)}" if p.get("terminated") else None,
                 f"supplier {p['supplier_id']}" if p.get("supplier_id") else None]
        sc = tl["stage_counts"]
        summary = (f"{sc.get('provisioning', 0)} grants · {sc.get('deprovisioning', 0)} removals · "
                   f"{sc.get('request', 0)} requests · {sc.get('approval', 0)} approvals"
                   + (f" · {len(tl['missing'])} accesses never removed" if tl["missing"] else ""))
        steps = [s for s in tl["steps"] if s["stage"] != "use" or True]
        rows = [(esc(_t(s["time"])), esc(_label(s.get("source"))[0]), _badge(s["stage"], _stage_badge(s)),
                 esc(s["what"]), esc(s.get("actor") or s.get("requester") or "—"),
                 esc(s.get("link_basis") or ", ".join(f"{r.get('trigger_kind')} ({r.get('status')})"
                                                      for r in s.get("required_by") or []) or "—"),
                 _ids((s.get("evidence") or {}).get("event_id") or (s.get("evidence") or {}).get("record_id")))
                for s in steps]
        table = _tbl((("Time", ""), ("System", ""), ("Stage", ""), ("What", ""), ("Actor", ""), ("Link", ""),
                      ("Evidence id", "")), rows, raw=True, limit=None)
        blocks.append(f'<div class="person" data-person="{esc(p.get("person_id"))}"><h3>{esc(p.get("display_name") or p.get("person_id"))}'
                      f'{_badge(tl["label"], "violet")}</h3><div class="facts">{esc(" · ".join(x for x in facts if x))}'
                      f'<br>{esc(summary)}</div>{_timeline_svg(tl, start, end, gov)}'
                      f"<details><summary>Every step with its evidence ({_n(len(steps))})</summary>{table}</details></div>")
    return _section("timelines", 6, "Lifecycle timelines", lead, "".join(blocks))


def _stage_badge(s: dict[str, Any]) -> str:
    if s["stage"] == "provisioning":
        return "bad" if s.get("link_basis") == "unlinked" else "ok"
    if s["stage"] == "deprovisioning":
        return "warn" if any(r.get("status") == "late" for r in s.get("required_by") or []) else "na"
    return {"hr": "violet", "approval": "ok", "request": "info", "exception": "warn"}.get(s["stage"], "na")


# ---------------------------------------------------------------- entry point


def write_report(store: Store, result: DemoResult | None, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/report.json``; returns the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect(store, result)
    page = render_html(data)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps(data, default=_jsonable, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path
