"""The audit workpaper: each sampled item's chain request → approval → execution → removal, and its HTML.

``item_chain(store, raw_ids)`` starts from the raw records that evidence an item and follows what linking
found (``links``: the governance records behind each grant or removal, explicit or inferred, with the rule;
``removal_links``: the trigger that required a removal, when it was due, the latency and its status), one
hop out, so a sampled grant shows its request and approvals, a sampled leaver the removals it triggered
and those that never happened. Every step keeps the raw id of its evidence, which the package proves.

``render_index`` / ``render_item`` write self-contained pages (inline CSS, no script, a CSP that forbids
any) with Jinja2 autoescape: log content (display names, justifications, vendor fields) is
attacker-controlled and only ever appears escaped.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from accessproof.linking import sql as S
from accessproof.store.base import Store

#: the columns of the chain summary, in the order an auditor reads it
STAGES = ("request", "approval", "trigger", "execution", "removal")
STAGE_LABELS = {"request": "Request", "approval": "Approval", "trigger": "Trigger (HR, contract, end date)",
                "execution": "Execution (provisioning)", "removal": "Removal", "activity": "Other activity"}
_ORDER = {s: i for i, s in enumerate((*STAGES, "activity"))}
_REQUEST_KINDS = ("access_request", "change_record", "exception", "recertification_decision", "supplier")
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime | date) else v


def _in(store: Store, sql: str, ids: set[str] | list[str]) -> list[dict[str, Any]]:
    """Rows of ``sql`` whose ``?`` is bound to the list of ids (none when there are no ids)."""
    return store.query_dicts(sql, [sorted(ids)]) if ids else []


def _approvers(text: Any) -> str | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return str(text)
    return ", ".join(str(v) for v in value) if isinstance(value, list) else (str(value) if value else None)


def present_tables(store: Store) -> set[str]:
    """The tables the store holds (linking's are there only once ``accessproof link`` ran)."""
    return {r[0] for r in store.query("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = current_schema()")}


def _expand(store: Store, raw_ids: set[str], wf: str, tables: set[str]
            ) -> tuple[set[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The raw ids one hop out through linking, the link rows and the removal rows that concern them."""
    found = set(raw_ids)
    if "links" not in tables:
        return found, [], []
    seed = {r["event_raw_id"] for r in _in(
        store, "SELECT DISTINCT event_raw_id FROM links WHERE record_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", raw_ids)}
    events = seed | raw_ids
    link_rows = _in(store, "SELECT * FROM links WHERE event_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", events)
    found |= {r["event_raw_id"] for r in link_rows} | {r["record_raw_id"] for r in link_rows}
    requests = _in(store, f"SELECT system, record_id FROM {wf} WHERE raw_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) "
                          f"AND kind IN {S.in_list(_REQUEST_KINDS)}", found)
    for r in _in(store, f"SELECT raw_id, system, parent_id FROM {wf} WHERE kind = 'approval' "
                        "AND parent_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", {r["record_id"] for r in requests}):
        if any(q["system"] == r["system"] and q["record_id"] == r["parent_id"] for q in requests):
            found.add(r["raw_id"])
    removal_rows: list[dict[str, Any]] = []
    if "removal_links" in tables:
        removal_rows = store.query_dicts(
            "SELECT * FROM removal_links WHERE trigger_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) "
            "OR removal_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY due_at, system, account_id, entitlement",
            [sorted(found), sorted(found)])
        found |= {r["trigger_raw_id"] for r in removal_rows} | {r["removal_raw_id"] for r in removal_rows
                                                                 if r["removal_raw_id"]}
    if "access_intervals" in tables:
        found |= {r["removal_raw_id"] for r in _in(
            store, "SELECT removal_raw_id FROM access_intervals WHERE grant_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) "
                   "AND removal_raw_id IS NOT NULL", found)}
    return found, link_rows, removal_rows


def _record_step(r: dict[str, Any], sampled: set[str]) -> dict[str, Any]:
    kind = r["kind"]
    if kind == "approval":
        return _step("approval", r["decided"] or r["opened"],
                     f"{r['decision'] or r['status'] or 'pending'} — approval of {r['parent_id']}", r,
                     actor=_approvers(r["approvers_json"]), sampled=sampled, decision=r["decision"] or r["status"])
    if kind == "hr_event":
        return _step("trigger", r["effective"] or r["opened"], f"HR {r['event_type'] or 'event'} {r['record_id']}",
                     r, actor=r["requester"], sampled=sampled, entered=iso(r["opened"]))
    what = f"{kind.replace('_', ' ')} {r['record_id']}" + (f": {r['scope']}" if r["scope"] else "")
    return _step("request", r["opened"] or r["decided"] or r["effective"], what, r, actor=r["requester"],
                 sampled=sampled, status=r["status"], decided=iso(r["decided"]), expires=iso(r["expires"]))


def _step(stage: str, when: Any, what: str, row: dict[str, Any], *, actor: Any, sampled: set[str],
          **details: Any) -> dict[str, Any]:
    raw_id = row.get("raw_id")
    return {"stage": stage, "time": iso(when), "what": what, "system": row.get("system") or row.get("source"),
            "actor": actor, "id": row.get("record_id") or row.get("event_id"), "raw_id": raw_id,
            "sampled": raw_id in sampled, "subject": row.get("subject") or row.get("target_name"),
            "details": {k: v for k, v in details.items() if v not in (None, "")}}


def _event_step(e: dict[str, Any], links: list[dict[str, Any]], removals: list[dict[str, Any]],
                sampled: set[str]) -> dict[str, Any]:
    direction = e["direction"]
    stage = "execution" if direction == "grant" else "removal" if direction == "remove" else "activity"
    what = (e["vendor_action"] or e["action"] or "event") + (f": {e['entitlement']}" if e["entitlement"] else "")
    mine = [r for r in links if r["event_raw_id"] == e["raw_id"] and r["role"] == "request"]
    details: dict[str, Any] = {"action": e["action"], "outcome": e["outcome"], "cites": e["approval_ref"]}
    if stage == "execution" or mine:
        details["link"] = "; ".join(f"{r['basis']} {r['rule']} → {r['record_id']} ({r['status']}, "
                                    f"{r['delta_hours']} h after decision)" for r in mine) or "unlinked: no approval found"
    required = [r for r in removals if r["removal_raw_id"] == e["raw_id"]]
    if required:
        details["required_by"] = "; ".join(
            f"{r['trigger_kind']} {r['trigger_record_id']} due {iso(r['due_at'])}: {r['status']}, "
            f"{r['latency_hours']} h (SLA {r['sla_hours']} h)" for r in required)
    step = _step(stage, e["time"], what, e, actor=e["actor_name"], sampled=sampled, **details)
    step["basis"] = mine[0]["basis"] if mine else ("unlinked" if stage == "execution" else None)
    step["status"] = (mine[0]["status"] if mine else None) if stage == "execution" else (
        required[0]["status"] if required else None)
    return step


def _missing_removal(r: dict[str, Any]) -> dict[str, Any]:
    what = (f"removal of {r['entitlement'] or r['entitlement_type']} ({r['account_name'] or r['account_id']}) "
            f"required by {r['trigger_kind']} {r['trigger_record_id']}: none found")
    step = _step("removal", r["due_at"], what, {"system": r["system"]}, actor=None, sampled=set(),
                 due=iso(r["due_at"]), sla_hours=r["sla_hours"])
    step["status"] = "missing"
    return step


def _person(store: Store, subject: str | None, person_ids: list[str], tables: set[str]) -> dict[str, Any] | None:
    if "persons_current" not in tables:
        return None
    keys = [k for k in [subject, *person_ids] if k]
    for k in keys:
        rows = store.query_dicts("SELECT person_id, display_name, email, worker_type, title, terminated "
                                 "FROM persons_current WHERE person_id = ? OR lower(email) = lower(?)", [k, k])
        if rows:
            return {**rows[0], "terminated": iso(rows[0]["terminated"])}
    return None


def item_chain(store: Store, raw_ids: list[str], subject: str | None = None, tables: set[str] | None = None
               ) -> dict[str, Any]:
    """The chain of one item: ``steps`` in time order (stage, time, what, system, actor, id, raw_id, sampled,
    details, basis, status), ``by_stage`` (what each stage holds), every ``raw_id`` it rests on and the
    ``person`` it is about. ``tables``: ``present_tables(store)``, when many chains are built."""
    tables = present_tables(store) if tables is None else tables
    sampled = set(raw_ids)
    wf = "wf_current" if "wf_current" in tables else "workflow_records"
    found, link_rows, removal_rows = _expand(store, sampled, wf, tables)
    records = _in(store, f"SELECT * FROM {wf} WHERE raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", found)
    access = "LEFT JOIN access_events x ON x.event_id = e.event_id AND x.raw_id = e.raw_id" if (
        "access_events" in tables) else ("LEFT JOIN (SELECT NULL AS event_id, NULL AS raw_id, NULL AS direction, "
                                         "NULL AS person_id) x ON false")
    events = _in(store, f"""
        SELECT e.event_id, e.raw_id, e.time, e.source, e.action, e.vendor_action, e.actor_name, e.target_name,
               coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.outcome, e.approval_ref,
               x.direction, x.person_id
        FROM events e {access} WHERE e.raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))""", found)
    steps = [_record_step(r, sampled) for r in records]
    steps += [_event_step(e, link_rows, removal_rows, sampled) for e in events]
    steps += [_missing_removal(r) for r in removal_rows if r["status"] == "missing"]
    steps.sort(key=lambda s: (s["time"] is None, str(s["time"] or ""), _ORDER[s["stage"]], s["what"]))
    person_ids = sorted({e["person_id"] for e in events if e["person_id"]} |
                        {r["person_id"] for r in removal_rows if r["person_id"]})
    by_stage = {stage: [s for s in steps if s["stage"] == stage] for stage in STAGES}
    return {"steps": steps, "by_stage": by_stage, "raw_ids": sorted(found - {None}),
            "person": _person(store, subject, person_ids, tables)}


def chain_summary(chain: dict[str, Any]) -> dict[str, str]:
    """One line per stage (ids, times, statuses), for the items table and spreadsheet."""
    out = {}
    for stage, steps in chain["by_stage"].items():
        parts = []
        for s in steps:
            status = s.get("status") or s["details"].get("decision") or s["details"].get("status")
            parts.append(" ".join(str(x) for x in (s["id"] or "", s["time"] or "", f"[{status}]" if status else "")
                                  if x).strip())
        out[stage] = "; ".join(parts) or "none found"
    return out


def render_index(context: dict[str, Any]) -> str:
    return _env.get_template("workpaper_index.html").render(**context, labels=STAGE_LABELS, stages=STAGES)


def render_item(context: dict[str, Any]) -> str:
    return _env.get_template("workpaper_item.html").render(**context, labels=STAGE_LABELS, stages=STAGES)
