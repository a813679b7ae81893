"""Evidence for the finding, person and search pages: chains, raw records as ingested, inclusion proofs.

A finding's chain is the one the demo report draws (``lifecycle.evidence_chains`` builds it from the finding's evidence
ids: governance record → approval → enforcement events → removal, with the link basis); here each link
also gets its raw record as it was ingested and an RFC 9162 inclusion proof against the latest signed
checkpoint, checked on the server before it is shown (``ledger.merkle.verify_inclusion``).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from accessproof.lifecycle import IN_LIST, evidence_chains, timeline_legend_svg
from accessproof.lifecycle import timeline_svg as draw_timeline
from accessproof.store.base import Store
from accessproof.web.data import table_exists, utc

RAW_PREVIEW_BYTES = 16_000


def finding(store: Store, finding_id: str) -> dict[str, Any] | None:
    if not table_exists(store, "findings"):
        return None
    rows = store.query_dicts("SELECT * FROM findings WHERE finding_id = ?", [finding_id])
    if not rows:
        return None
    f = rows[0]
    for k in ("evidence_ids_json", "dimensions_json"):
        v = f.pop(k)
        try:
            f[k.removesuffix("_json")] = json.loads(v) if v else ([] if k.startswith("evidence") else {})
        except ValueError:
            f[k.removesuffix("_json")] = [] if k.startswith("evidence") else {}
    return f


def chain(store: Store, f: dict[str, Any]) -> list[dict[str, Any]]:
    """The finding's evidence chain in time order, each node with its raw record and inclusion proof."""
    nodes = evidence_chains(store, [f]).get(f["finding_id"], [])
    raws = raw_records(store, [n["raw_id"] for n in nodes if n.get("raw_id")])
    proofs = inclusion_proofs(store, [n["raw_id"] for n in nodes if n.get("raw_id")])
    for n in nodes:
        n["raw"] = raws.get(n.get("raw_id"))
        n["proof"] = proofs.get(n.get("raw_id"))
        n["stage"] = {"governance": "Governance record", "approval": "Approval", "rejected": "Rejection",
                      "hr": "HR record", "enforcement": "Enforcement event", "removal": "Removal",
                      "held": "Still held"}.get(n["type"], n["type"])
    return nodes


def raw_records(store: Store, raw_ids: list[str]) -> dict[str, dict[str, Any]]:
    """raw id -> the record as ingested: source, file, position, sha256 and the bytes as text."""
    ids = sorted({i for i in raw_ids if i})
    if not ids:
        return {}
    out = {}
    for r in store.query_dicts(f"""
        SELECT raw_id, source_type, source, file, position, sha256, record_type, record_time, data
        FROM raw_records WHERE raw_id IN {IN_LIST}""", [ids]):
        data = bytes(r.pop("data") or b"")
        r["size"] = len(data)
        r["text"] = _pretty(data[:RAW_PREVIEW_BYTES])
        r["truncated"] = len(data) > RAW_PREVIEW_BYTES
        out[r["raw_id"]] = r
    return out


def _pretty(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def inclusion_proofs(store: Store, raw_ids: list[str]) -> dict[str, dict[str, Any]]:
    """raw id -> its ledger index, the audit path to the latest checkpoint and whether it verified."""
    ids = sorted({i for i in raw_ids if i})
    if not ids or not table_exists(store, "ledger_entries") or getattr(store, "dir", None) is None:
        return {}
    from accessproof.ledger import open_ledger
    from accessproof.ledger.ledger import LedgerError
    from accessproof.ledger.merkle import ProofError, leaf_hash, verify_inclusion

    ledger = open_ledger(store.dir, getattr(store, "con", None))
    cp = ledger.latest_checkpoint()
    out: dict[str, dict[str, Any]] = {}
    for raw_id in ids:
        found = ledger.find(raw_id, "raw")
        if not found:
            out[raw_id] = {"sealed": False, "status": "not sealed in the ledger"}
            continue
        index = found[0]
        p: dict[str, Any] = {"sealed": True, "index": index}
        if cp is None or index >= cp.size:
            out[raw_id] = {**p, "status": "sealed; no signed checkpoint covers it yet", "verified": False}
            continue
        try:
            entry = ledger.entry(index)
            path = ledger.inclusion_proof(index, cp.size)
            verify_inclusion(index, cp.size, leaf_hash(entry), path, cp.root)
            p.update(verified=True, status=f"included in the tree of size {cp.size} (signed checkpoint)")
        except (LedgerError, ProofError) as e:
            p.update(verified=False, status=f"proof failed: {e}")
            path, entry = [], b""
        p.update(tree_size=cp.size, root=base64.b64encode(cp.root).decode(),
                 leaf_hash=leaf_hash(entry).hex() if entry else None, entry=entry.decode("utf-8", "replace"),
                 path=[base64.b64encode(h).decode() for h in path], checkpoint=cp.note)
        out[raw_id] = p
    return out


def covering_exception(store: Store, f: dict[str, Any]) -> dict[str, Any] | None:
    """The governance exception that excepts this finding (or excepted it until it expired)."""
    if not f.get("exception_id") or not table_exists(store, "ctl_exceptions"):
        return None
    rows = store.query_dicts("""
        SELECT record_id, raw_id, system, subject, person_id, scope, approval_state, valid_from, expires, owner,
               compensating_control, status
        FROM ctl_exceptions WHERE record_id = ? ORDER BY expires DESC LIMIT 1""", [f["exception_id"]])
    return rows[0] if rows else None


# ---------------------------------------------------------------- people


def find_people(store: Store, q: str | None, limit: int = 60) -> list[dict[str, Any]]:
    """People matching a name, email or id (substring), with their open findings count."""
    if not table_exists(store, "persons_current"):
        return []
    params: list[Any] = []
    where = ""
    if q:
        where = "WHERE p.person_id ILIKE ? OR p.display_name ILIKE ? OR p.email ILIKE ?"
        params = [f"%{q}%"] * 3
    findings = table_exists(store, "findings")
    count = ("(SELECT count(*) FROM findings f WHERE f.person_id = p.person_id AND f.state = 'open')"
             if findings else "0")
    return store.query_dicts(f"""
        SELECT p.person_id, p.display_name, p.email, p.worker_type, p.business_unit, p.title, p.hired,
               p.terminated, {count} AS open_findings
        FROM persons_current p {where}
        ORDER BY open_findings DESC, p.display_name, p.person_id LIMIT ?""", [*params, limit])


def person(store: Store, person_id: str, at: datetime | None) -> dict[str, Any] | None:
    """A person's record, lifecycle steps, access now and at ``at``, accounts with their resolution basis."""
    if not table_exists(store, "persons_current"):
        return None
    rows = store.query_dicts("SELECT * FROM persons_current WHERE person_id = ?", [person_id])
    if not rows:
        return None
    from accessproof.identity.resolve import list_identities
    from accessproof.linking.access import access_at
    from accessproof.linking.link import removal_links
    from accessproof.linking.timeline import timeline

    steps = timeline(store, person_id)
    end = utc(store.query("SELECT max(time) FROM events")[0][0])
    removals = removal_links(store, person=person_id)
    intervals = store.query_dicts("""
        SELECT system, account_id, account_name, entitlement_type, entitlement, granted_at, removed_at, start_known
        FROM access_intervals WHERE person_id = ? ORDER BY system, granted_at NULLS FIRST, entitlement""",
                                  [person_id]) if table_exists(store, "access_intervals") else []
    triggers = {(r["trigger_kind"], r["trigger_record_id"]): r for r in removals}
    stages: dict[str, int] = {}
    for s in steps:
        stages[s["stage"]] = stages.get(s["stage"], 0) + 1
    findings = []
    if table_exists(store, "findings"):
        from accessproof.controls import list_findings

        findings = list_findings(store, person=person_id)
    return {
        "person": rows[0], "steps": steps, "end": end, "intervals": intervals,
        "triggers": [{"trigger_kind": k, "trigger_record_id": rid, "trigger_system": r["trigger_system"],
                      "due_at": r["due_at"]} for (k, rid), r in triggers.items()],
        "missing": [r for r in removals if r["status"] == "missing"],
        "current": access_at(store, end, person_id) if end else [],
        "at": at, "at_access": access_at(store, at, person_id) if at else None,
        "accounts": list_identities(store, person=person_id), "stage_counts": stages, "findings": findings,
    }


def timeline_svg(store: Store, p: dict[str, Any]) -> str:
    """The report's lifecycle graphic (governance lanes above identity systems), HTML-escaped inside."""
    from accessproof.audit.matrix import workflow_systems

    times = [utc(s["time"]) for s in p["steps"] if s.get("time")]
    times = [t for t in times if t is not None]
    start = utc(store.query("SELECT min(time) FROM events")[0][0]) or (min(times) if times else None)
    end = p["end"] or (max(times) if times else None)
    if start is None or end is None:
        return '<p class="empty">No dated lifecycle step for this person.</p>'
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    tl = {"steps": p["steps"], "intervals": p["intervals"], "triggers": p["triggers"], "missing": p["missing"],
          "person": p["person"]}
    return timeline_legend_svg() + draw_timeline(tl, start, end, workflow_systems(store))


# ---------------------------------------------------------------- evidence search


def search(store: Store, *, control: str | None, system: str | None, subject: str | None,
           since: datetime | None, until: datetime | None, limit: int = 200) -> dict[str, Any]:
    """Evidence by system, subject and date range (``queries.events``, as ``accessproof events``); with a
    control, only the records its findings cite (events, and the governance records behind them)."""
    from accessproof import queries

    if not control:
        cols, rows = queries.events(store, source=system, subject=subject, since=since, until=until, limit=limit)
        return {"events": [dict(zip(cols, r, strict=True)) for r in rows], "records": []}
    from accessproof.controls import list_findings

    ids = sorted({str(i) for f in list_findings(store, control=control, system=system)
                  for i in (f.get("evidence_ids") or [])})
    if not ids:
        return {"events": [], "records": []}
    cols, rows = queries.events(store, source=system, subject=subject, since=since, until=until, limit=0)
    at = cols.index("event_id")
    wanted = set(ids)
    events = [dict(zip(cols, r, strict=True)) for r in rows if r[at] in wanted][:limit]
    records = store.query_dicts(f"""
        SELECT record_id, raw_id, system, kind, subject, scope, status, decision,
               coalesce(decided, opened, effective) AS time
        FROM wf_current WHERE record_id IN {IN_LIST} OR raw_id IN {IN_LIST}
        ORDER BY time NULLS LAST, record_id""", [ids, ids]) if table_exists(store, "wf_current") else []
    return {"events": events, "records": records[:limit]}
