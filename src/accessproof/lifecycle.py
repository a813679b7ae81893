"""A finding's evidence chain and a person's lifecycle timeline: read from the store, drawn as inline SVG.

Shared by the demo report (``demo.report``: one self-contained HTML page) and the dashboard (``web``: the
finding and person pages). ``evidence_chains`` reads through ``Store.query``, so it runs on DuckDB and on
PostgreSQL alike (id lists are bound as ``VARCHAR[]``). Every value read from the store is
attacker-controlled and goes through ``esc`` (``html.escape(..., quote=True)``) before it enters the SVG, in
text and attributes alike.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from accessproof.audit.matrix import is_governance
from accessproof.linking.sql import table_exists
from accessproof.store.base import Store

#: ``x IN {IN_LIST}`` with a Python list bound to the placeholder: the same on DuckDB and PostgreSQL
#: (PostgreSQL cannot type a bare ``unnest(?)``)
IN_LIST = "(SELECT unnest(CAST(? AS VARCHAR[])))"

__all__ = ["IN_LIST", "PAL", "STAGE_STYLE", "as_dt", "clean_rows", "esc", "evidence_chains", "fmt_hours",
           "fmt_time", "group_by", "svg", "svg_text", "system_label", "timeline_legend_svg", "timeline_svg"]


# ---------------------------------------------------------------- small helpers


def esc(value: Any) -> str:
    """Text for HTML or SVG (content and attribute values alike)."""
    return html.escape("" if value is None else str(value), quote=True)


def as_dt(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    try:
        d = datetime.fromisoformat(str(v))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def fmt_time(v: Any, *, day: bool = False) -> str:
    d = as_dt(v)
    if d is None:
        return "—"
    d = d.astimezone(UTC)
    return d.strftime("%Y-%m-%d") if day else d.strftime("%Y-%m-%d %H:%M")


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "—"
    if abs(hours) >= 48:
        return f"{hours / 24:.1f} d"
    return f"{hours:.1f} h"


def clean_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if isinstance(v, datetime | date) else v) for k, v in r.items()} for r in rows]


def system_label(system: str | None) -> tuple[str, str]:
    """(vendor name, instance) for a system id such as ``okta:acme`` or ``aws:111122223333``."""
    if not system:
        return ("unknown", "")
    vendor, _, inst = str(system).partition(":")
    names = {"hr": "HR", "servicenow": "ServiceNow", "qms": "QMS", "okta": "Okta", "aws": "AWS",
             "github": "GitHub", "entra": "Entra ID", "jira": "Jira", "cloudtrail": "AWS CloudTrail",
             "workday": "Workday", "csv": "CSV"}
    return (names.get(vendor.lower(), vendor), inst)


def group_by(rows: Iterable[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


# ---------------------------------------------------------------- a finding's evidence chain


def evidence_chains(store: Store, findings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Evidence chain of each finding: governance records → enforcement events → removals, in time order."""
    ids = sorted({str(i) for f in findings for i in (f.get("evidence_ids") or []) if i is not None})
    if not ids:
        return {}
    wf = store.query_dicts(f"""
        SELECT record_id, raw_id, system, kind, subject, scope, requester, approvers_json, status, decision,
               event_type, CASE WHEN kind = 'hr_event' THEN coalesce(effective, opened)
                                WHEN kind = 'supplier' THEN coalesce(contract_end, effective, opened)
                                ELSE coalesce(opened, decided, effective, completed) END AS time, parent_id, expires
        FROM wf_current WHERE record_id IN {IN_LIST} OR raw_id IN {IN_LIST}""", [ids, ids]) \
        if table_exists(store, "wf_current") else []
    parents = sorted({w["record_id"] for w in wf if w["kind"] != "approval"})
    approvals = store.query_dicts(f"""
        SELECT record_id, raw_id, system, kind, subject, scope, requester, approvers_json, status, decision,
               event_type, coalesce(decided, opened) AS time, parent_id, expires
        FROM wf_current WHERE kind = 'approval' AND parent_id IN {IN_LIST}""", [parents]) if parents else []
    ev = store.query_dicts(f"""
        SELECT event_id, raw_id, time, source, action, vendor_action, actor_name, coalesce(target_name, target_id)
               AS target, coalesce(entitlement_name, entitlement_id) AS entitlement, approval_ref
        FROM events WHERE event_id IN {IN_LIST} OR raw_id IN {IN_LIST}""", [ids, ids])
    links: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if table_exists(store, "links") and ev:
        for row in store.query_dicts(f"""
            SELECT event_id, basis, rule, record_id, status FROM links
            WHERE role = 'request' AND event_id IN {IN_LIST} ORDER BY record_id""",
                                     [[e["event_id"] for e in ev]]):
            links[row["event_id"]].append(row)
    removals: dict[str, dict[str, Any]] = {}
    if table_exists(store, "removal_links") and ev:
        for row in store.query_dicts(f"""
            SELECT removal_event_id, trigger_kind, trigger_record_id, latency_hours, status FROM removal_links
            WHERE removal_event_id IN {IN_LIST} ORDER BY trigger_record_id""", [[e["event_id"] for e in ev]]):
            removals.setdefault(row["removal_event_id"], row)
    person_ids = sorted({*ids, *(str(f["person_id"]) for f in findings if f.get("person_id"))})
    people = store.query_dicts(f"""
        SELECT person_id, system, display_name, worker_type, hired, terminated FROM persons_current
        WHERE person_id IN {IN_LIST}""", [person_ids]) if table_exists(store, "persons_current") else []
    held: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    pairs = sorted({f"{f['person_id']}|{f['system']}" for f in findings if f.get("person_id") and f.get("system")})
    if pairs and table_exists(store, "removal_links"):
        for row in store.query_dicts(f"""
            SELECT person_id, system, trigger_kind, trigger_record_id, due_at, entitlement_type, entitlement
            FROM removal_links WHERE status = 'missing' AND person_id || '|' || system IN {IN_LIST}
            ORDER BY due_at, entitlement""", [pairs]):
            held[(row["person_id"], row["system"])].append(row)
    from accessproof.model import REMOVING_ACTIONS

    removing = {str(a) for a in REMOVING_ACTIONS}
    nodes_by_key: dict[str, dict[str, Any]] = {}
    raw_of: dict[str, str] = {}
    for w in [*wf, *approvals]:
        rejected = w["kind"] == "approval" and (w["decision"] or "").lower() == "rejected"
        node = {"type": ("rejected" if rejected else "approval") if w["kind"] == "approval"
                else ("hr" if w["kind"] == "hr_event" else "governance"),
                "time": w["time"], "system": w["system"], "kind": w["kind"], "id": w["record_id"],
                "raw_id": w["raw_id"],
                "what": _wf_what(w), "actor": _approvers(w) if w["kind"] == "approval" else w["requester"],
                "state": (w["decision"] or w["status"]), "parent": w["parent_id"]}
        nodes_by_key[f"wf:{w['raw_id']}"] = node
        if w["kind"] != "approval":
            raw_of[w["record_id"]] = w["raw_id"]
    for e in ev:
        is_removal = e["action"] in removing
        lk = links.get(e["event_id"], [])
        node = {"type": "removal" if is_removal else "enforcement", "time": e["time"], "system": e["source"],
                "id": e["event_id"], "raw_id": e["raw_id"],
                "what": f"{e['vendor_action'] or e['action']}" + (f": {e['entitlement']}" if e["entitlement"] else "")
                        + (f" → {e['target']}" if e["target"] else ""),
                "actor": e["actor_name"], "cites": e["approval_ref"],
                "basis": (f"{lk[0]['basis']} ({lk[0]['rule']}) → {lk[0]['record_id']}, {lk[0]['status']}" if lk
                          else ("unlinked" if not is_removal else None))}
        if is_removal and e["event_id"] in removals:
            r = removals[e["event_id"]]
            node["basis"] = (f"required by {r['trigger_kind']} {r['trigger_record_id']}; "
                             f"{fmt_hours(r['latency_hours'])} after due, {r['status']}")
        nodes_by_key[f"ev:{e['event_id']}:{e['raw_id']}"] = node
    people_by_id = {p["person_id"]: p for p in people}
    out: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        fid = {str(i) for i in (f.get("evidence_ids") or [])}
        chain = []
        for key, node in nodes_by_key.items():
            parent = node.get("parent")
            hit = (node["id"] in fid or node.get("raw_id") in fid
                   or (node["type"] in ("approval", "rejected") and (parent in fid or raw_of.get(parent) in fid)))
            if hit:
                chain.append((key, node))
        p = people_by_id.get(str(f.get("person_id"))) or next(
            (people_by_id[i] for i in sorted(fid) if i in people_by_id), None)
        if p is not None:
            chain.append((f"p:{p['person_id']}", {
                "type": "hr", "time": p["terminated"] or p["hired"], "system": p["system"], "id": p["person_id"],
                "what": f"HR record: {p['display_name']} ({p['worker_type']}), hired {fmt_time(p['hired'], day=True)}"
                        + (f", terminated {fmt_time(p['terminated'], day=True)}" if p["terminated"] else ""),
                "actor": None}))
        for row in held.get((f.get("person_id"), f.get("system")), [])[:1]:
            rows = held[(f["person_id"], f["system"])]
            ents = ", ".join(dict.fromkeys("whole account" if r["entitlement_type"] == "account"
                                           else str(r["entitlement"]) for r in rows))
            chain.append(("held", {"type": "held", "time": row["due_at"], "system": row["system"],
                                   "id": row["trigger_record_id"],
                                   "what": f"not removed: {ents} still held after {row['trigger_kind']} was due",
                                   "actor": None, "basis": f"due {fmt_time(row['due_at'])} UTC, no removal in the logs"}))
        chain.sort(key=lambda kn: (as_dt(kn[1]["time"]) or datetime.max.replace(tzinfo=UTC),
                                   {"hr": 0, "governance": 1, "approval": 2, "rejected": 2}.get(kn[1]["type"], 3), kn[0]))
        out[f["finding_id"]] = clean_rows(n for _, n in chain)
    return out


def _wf_what(w: dict[str, Any]) -> str:
    kind = (w["kind"] or "record").replace("_", " ")
    if w["kind"] == "hr_event":
        return f"HR {w['event_type'] or 'event'} of {w['subject']}"
    if w["kind"] == "approval":
        return f"approval of {w['parent_id']}: {w['decision'] or w['status'] or 'pending'}"
    if w["kind"] == "supplier":
        return f"supplier register {w['record_id']}: {w['subject']}, contract end"
    tail = f": {w['scope']}" if w.get("scope") else ""
    sub = f" for {w['subject']}" if w.get("subject") else ""
    return f"{kind}{sub}{tail}"


def _approvers(w: dict[str, Any]) -> str | None:
    try:
        a = json.loads(w.get("approvers_json") or "[]")
    except ValueError:
        return w.get("approvers_json")
    return ", ".join(str(x) for x in a) if isinstance(a, list) else str(a)


# ---------------------------------------------------------------- SVG drawing


PAL = {
    "ink": "#0f172a", "muted": "#64748b", "faint": "#94a3b8", "line": "#e2e8f0", "grid": "#eef2f7",
    "ok": "#16a34a", "warn": "#f59e0b", "late": "#ea580c", "bad": "#dc2626", "info": "#2563eb",
    "info2": "#93c5fd", "violet": "#7c3aed", "teal": "#0d9488", "band": "#e0e7ff",
}


def svg(w: float, h: float, body: str, label: str, cls: str = "chart") -> str:
    return (f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'width="{w:.0f}" height="{h:.0f}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>{body}</svg>")


def svg_text(x: float, y: float, s: Any, *, cls: str = "", anchor: str = "start", fill: str | None = None,
          size: float | None = None, weight: str | None = None) -> str:
    attrs = [f'x="{x:.1f}"', f'y="{y:.1f}"']
    if anchor != "start":
        attrs.append(f'text-anchor="{anchor}"')
    if cls:
        attrs.append(f'class="{cls}"')
    if fill:
        attrs.append(f'style="fill:{fill}"')
    if size:
        attrs.append(f'font-size="{size}"')
    if weight:
        attrs.append(f'font-weight="{weight}"')
    return f"<text {' '.join(attrs)}>{esc(s)}</text>"


# ---------------------------------------------------------------- a person's lifecycle timeline


STAGE_STYLE = {  # stage -> (shape, colour, legend)
    "hr": ("diamond", PAL["violet"], "HR event"),
    "request": ("square-open", PAL["info"], "Request / change record"),
    "approval": ("square", PAL["ok"], "Approval (red: rejected)"),
    "exception": ("triangle", PAL["warn"], "QMS exception"),
    "provisioning": ("circle", PAL["ok"], "Grant (green: justified, amber: not justified, red: unlinked)"),
    "change": ("circle-open", PAL["faint"], "Change"),
    "recertification": ("hexagon", PAL["violet"], "Access review decision"),
    "suspension": ("bar", PAL["warn"], "Suspension"),
    "deprovisioning": ("x", PAL["ink"], "Removal (red: late)"),
    "trigger": ("flag", PAL["bad"], "Removal due (trigger)"),
}


def _marker(shape: str, x: float, y: float, color: str, r: float = 6.0) -> str:
    if shape == "diamond":
        return (f'<path d="M{x:.1f},{y - r - 1:.1f} L{x + r + 1:.1f},{y:.1f} L{x:.1f},{y + r + 1:.1f} '
                f'L{x - r - 1:.1f},{y:.1f} Z" fill="{color}" stroke="#fff" stroke-width="1"/>')
    if shape in ("square", "square-open"):
        fill = color if shape == "square" else "#fff"
        return (f'<rect x="{x - r + 0.5:.1f}" y="{y - r + 0.5:.1f}" width="{2 * r - 1:.1f}" height="{2 * r - 1:.1f}" '
                f'rx="2" fill="{fill}" stroke="{color}" stroke-width="2"/>')
    if shape == "triangle":
        return (f'<path d="M{x:.1f},{y - r - 1:.1f} L{x + r + 1:.1f},{y + r:.1f} L{x - r - 1:.1f},{y + r:.1f} Z" '
                f'fill="{color}" stroke="#fff" stroke-width="1"/>')
    if shape in ("circle", "circle-open"):
        fill = color if shape == "circle" else "#fff"
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="{color if fill == "#fff" else "#fff"}" stroke-width="{2 if fill == "#fff" else 1.2}"/>'
    if shape == "hexagon":
        pts = " ".join(f"{x + r * math.cos(math.pi / 3 * k):.1f},{y + r * math.sin(math.pi / 3 * k):.1f}" for k in range(6))
        return f'<polygon points="{pts}" fill="#fff" stroke="{color}" stroke-width="2"/>'
    if shape == "bar":
        return f'<rect x="{x - 2:.1f}" y="{y - r - 2:.1f}" width="4" height="{2 * r + 4:.1f}" rx="1.5" fill="{color}"/>'
    if shape == "x":
        d = r - 0.5
        return (f'<path d="M{x - d:.1f},{y - d:.1f} L{x + d:.1f},{y + d:.1f} M{x + d:.1f},{y - d:.1f} L{x - d:.1f},{y + d:.1f}" '
                f'stroke="{color}" stroke-width="3" stroke-linecap="round"/>')
    if shape == "flag":
        return (f'<path d="M{x:.1f},{y + r + 2:.1f} L{x:.1f},{y - r - 3:.1f} L{x + r + 3:.1f},{y - r + 0.5:.1f} '
                f'L{x:.1f},{y - 1:.1f}" fill="{color}" stroke="{color}" stroke-width="1.6" stroke-linejoin="round"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}"/>'


def timeline_legend_svg() -> str:
    items = []
    for stage, (shape, color, text) in STAGE_STYLE.items():
        if stage == "change":
            continue
        items.append(f'<span>{svg(18, 18, _marker(shape, 9, 9, color, 5.5), text, cls="icon")}{esc(text)}</span>')
    band = f'<rect x="1" y="5" width="22" height="8" rx="3" fill="{PAL["band"]}"/>'
    use = f'<line x1="2" y1="9" x2="22" y2="9" stroke="{PAL["teal"]}" stroke-width="3" stroke-opacity=".55"/>'
    link = f'<path d="M2,14 C8,14 14,4 22,4" fill="none" stroke="{PAL["info"]}" stroke-width="1.4"/>'
    miss = f'<line x1="2" y1="9" x2="22" y2="9" stroke="{PAL["bad"]}" stroke-width="2" stroke-dasharray="4 3"/>'
    for body, text in ((band, "Access held (account)"), (use, "Sign-ins (first → last)"),
                       (link, "Approval → execution (dashed: inferred)"), (miss, "Still held after due")):
        items.append(f'<span>{svg(24, 18, body, text, cls="icon")}{esc(text)}</span>')
    return '<div class="legend tl-legend">' + "".join(items) + "</div>"


def timeline_svg(tl: dict[str, Any], start: datetime, end: datetime, gov: set[str]) -> str:
    steps = tl["steps"]
    lanes_seen: list[str] = []
    for s in steps:
        if s.get("source") and s["source"] not in lanes_seen:
            lanes_seen.append(s["source"])
    for t in tl["triggers"]:
        if t.get("trigger_system") and t["trigger_system"] not in lanes_seen:
            lanes_seen.append(t["trigger_system"])
    for i in tl["intervals"]:
        if i["system"] not in lanes_seen:
            lanes_seen.append(i["system"])

    def is_gov(lane: str) -> bool:
        return lane in gov or is_governance(lane, gov)

    order = {"hr": 0, "servicenow": 1, "jira": 2, "qms": 3}
    lanes = sorted(lanes_seen, key=lambda s: (0 if is_gov(s) else 1, order.get(s.split(":")[0], 9), s))
    if not lanes:
        return '<p class="empty">No lifecycle step recorded for this person.</p>'
    W, gutter, early, right, top, lane_h = 1060, 150, 44, 16, 30, 46
    x0, x1 = gutter + early, W - right
    H = top + lane_h * len(lanes) + 10
    span = (end - start).total_seconds() or 1.0

    def X(v: Any) -> float | None:
        d = as_dt(v)
        if d is None:
            return None
        if d < start:
            return gutter + early / 2
        return x0 + min((d - start).total_seconds(), span) / span * (x1 - x0)

    def Y(lane: str) -> float:
        return top + lanes.index(lane) * lane_h + lane_h / 2

    bg, fg, links_svg, labels = [], [], [], []
    split = next((i for i, ln in enumerate(lanes) if not is_gov(ln)), len(lanes))
    for i, lane in enumerate(lanes):
        y = top + i * lane_h
        bg.append(f'<rect x="{gutter}" y="{y}" width="{x1 - gutter}" height="{lane_h}" '
                  f'fill="{"#f8fafc" if i % 2 else "#ffffff"}"/>')
        name, inst = system_label(lane)
        labels.append(svg_text(gutter - 12, y + lane_h / 2 + (0 if inst else 4), name, anchor="end", cls="lbl strong"))
        if inst:
            labels.append(svg_text(gutter - 12, y + lane_h / 2 + 13, inst[:22], anchor="end", cls="sub"))
    for a, b, text, short, color in ((0, split, "GOVERNANCE", "GOV", PAL["violet"]),
                                     (split, len(lanes), "IDENTITY", "IAM", PAL["info"])):
        if b > a:
            ya, yb = top + a * lane_h + 4, top + b * lane_h - 4
            labels.append(f'<rect x="4" y="{ya}" width="3" height="{yb - ya}" rx="1.5" fill="{color}" '
                          'fill-opacity=".55"/>')
            labels.append(f'<text transform="translate(18,{(ya + yb) / 2:.1f}) rotate(-90)" text-anchor="middle" '
                          f'class="grp" style="fill:{color}">{esc(text if yb - ya > 70 else short)}</text>')
    if 0 < split < len(lanes):
        ys = top + split * lane_h
        bg.append(f'<line x1="{gutter}" x2="{x1}" y1="{ys}" y2="{ys}" stroke="{PAL["faint"]}" stroke-dasharray="3 3"/>')
    # time axis: months (weeks when short)
    bg.append(f'<rect x="{gutter}" y="{top}" width="{early}" height="{lane_h * len(lanes)}" fill="url(#hatch)"/>')
    bg.append(svg_text(gutter + early / 2, top - 10, "earlier", anchor="middle", cls="tick"))
    tick = datetime(start.year, start.month, 1, tzinfo=UTC)
    weekly = span < 50 * 86400
    while tick <= end:
        if tick >= start:
            x = X(tick)
            bg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{H - 10}" stroke="{PAL["line"]}"/>')
            if x1 - x > 140:
                bg.append(svg_text(x + 4, top - 10, tick.strftime("%b %Y") if tick.day == 1 else tick.strftime("%d %b"),
                                cls="tick"))
        if weekly:
            tick += timedelta(days=7)
        else:
            tick = datetime(tick.year + (tick.month == 12), tick.month % 12 + 1, 1, tzinfo=UTC)
    bg.append(f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="{top - 4}" y2="{H - 10}" stroke="{PAL["faint"]}"/>')
    bg.append(svg_text(x1, top - 10, f"{end.strftime('%d %b')} · data end", anchor="end", cls="tick"))
    # access held: one band per lane from the first grant to the last removal (open: to the end)
    spans: dict[str, list[float]] = {}
    for iv in tl["intervals"]:
        if iv["system"] not in lanes:
            continue
        a = X(iv["granted_at"]) if iv["granted_at"] else gutter + 2
        b = X(iv["removed_at"]) if iv["removed_at"] else x1
        cur = spans.setdefault(iv["system"], [a, b])
        cur[0], cur[1] = min(cur[0], a), max(cur[1], b)
    for lane, (a, b) in spans.items():
        y = Y(lane)
        bg.append(f'<rect x="{a:.1f}" y="{y - 10:.1f}" width="{max(b - a, 2):.1f}" height="20" rx="6" '
                  f'fill="{PAL["band"]}" fill-opacity="0.75"/>')
    # sign-ins: first → last per account
    use: dict[tuple, list[tuple[float, dict]]] = defaultdict(list)
    for s in steps:
        if s["stage"] == "use" and s.get("source") in lanes:
            x = X(s["time"])
            if x is not None:
                use[(s["source"], s.get("account"))].append((x, s))
    for (lane, account), pts in sorted(use.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        xs = [p[0] for p in pts]
        n = pts[0][1].get("sign_ins")
        y = Y(lane) + 15
        tip = f"{n} sign-ins of {account}, {fmt_time(pts[0][1]['time'])} → {fmt_time(pts[-1][1]['time'])}"
        bg.append(f'<g><line x1="{min(xs):.1f}" x2="{max(max(xs), min(xs) + 2):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                  f'stroke="{PAL["teal"]}" stroke-width="3" stroke-opacity=".6" stroke-linecap="round"/>'
                  f"<title>{esc(tip)}</title></g>")
    # markers: one item per step, merged where the same kind of step falls on the same spot
    items: list[dict[str, Any]] = []
    for s in steps:
        lane = s.get("source")
        if s["stage"] == "use" or lane not in lanes:
            continue
        x = X(s["time"])
        if x is None:
            continue
        shape, color, _ = STAGE_STYLE.get(s["stage"], ("circle-open", PAL["faint"], ""))
        label = ""
        if s["stage"] == "approval" and (s.get("decision") or "").lower() == "rejected":
            color = PAL["bad"]
        if s["stage"] == "provisioning":
            basis = s.get("link_basis")
            statuses = {lk.get("status") for lk in s.get("links") or []}
            color = PAL["bad"] if basis == "unlinked" else PAL["ok"] if "justified" in statuses else PAL["warn"]
        if s["stage"] == "deprovisioning":
            req = s.get("required_by") or []
            if any(r.get("status") == "late" for r in req):
                color = PAL["bad"]
                lat = max(float(r.get("latency_hours") or 0) for r in req)
                label = f"{fmt_hours(lat)} late"
        ev = s.get("evidence") or {}
        tip = f"{fmt_time(s['time'])} · {s['what']}"
        if s.get("actor"):
            tip += f" · by {s['actor']}"
        if s.get("link_basis"):
            tip += f" · link: {s['link_basis']}"
            if s.get("links"):
                lk = s["links"][0]
                tip += f" ({lk.get('rule')} → {lk.get('record_id')}, {lk.get('status')})"
        for r in s.get("required_by") or []:
            tip += f" · required by {r.get('trigger_kind')} {r.get('trigger_record_id')} ({r.get('status')})"
        tip += f" · {ev.get('event_id') or ev.get('record_id') or ''}"
        keys = []
        if s["stage"] in ("request", "hr", "exception") and ev.get("record_id"):
            keys.append(("rec", ev["record_id"]))
        if s["stage"] == "approval" and s.get("request"):
            keys.append(("dec", s["request"]))  # the decision, not the request, is what execution follows
        if ev.get("event_id"):
            keys.append(("ev", ev["event_id"]))
        items.append({"lane": lane, "x": x, "shape": shape, "color": color, "tip": tip, "label": label,
                      "keys": keys, "step": s})
    for t in tl["triggers"]:  # removal due: triggers with no step of their own (contract end, end date)
        lane = t.get("trigger_system")
        if lane not in lanes or (t["trigger_kind"] == "termination"
                                 and any(("rec", t["trigger_record_id"]) in it["keys"] for it in items)):
            continue
        x = X(t["due_at"])
        if x is None:
            continue
        items.append({"lane": lane, "x": x, "shape": "flag", "color": PAL["bad"], "label": "",
                      "tip": f"{fmt_time(t['due_at'])} · removal due: {t['trigger_kind']} {t['trigger_record_id']}",
                      "keys": [("rec", t["trigger_record_id"])], "step": None})
    clusters: list[dict[str, Any]] = []
    for it in sorted(items, key=lambda i: (lanes.index(i["lane"]), i["shape"], i["color"], i["x"])):
        c = clusters[-1] if clusters else None
        if c and c["lane"] == it["lane"] and c["shape"] == it["shape"] and c["color"] == it["color"] \
                and it["x"] - c["x0"] < 7:
            c["items"].append(it)
            c["x"] = (c["x0"] + it["x"]) / 2
        else:
            clusters.append({"lane": it["lane"], "shape": it["shape"], "color": it["color"], "x0": it["x"],
                             "x": it["x"], "items": [it]})
    placed: dict[str, list[tuple[float, int]]] = defaultdict(list)
    offsets = (0, -11, 11, -22, 22)
    pos: dict[tuple[str, str], tuple[float, float]] = {}
    prio = {"flag": 0, "diamond": 0, "square-open": 1, "square": 2, "triangle": 2, "circle": 3, "x": 4}
    for c in sorted(clusters, key=lambda c: (c["x"], prio.get(c["shape"], 5))):
        used = {lvl for px, lvl in placed[c["lane"]] if abs(px - c["x"]) < 10}
        lvl = next((k for k in range(len(offsets)) if k not in used), 0)
        placed[c["lane"]].append((c["x"], lvl))
        x, y = c["x"], Y(c["lane"]) + offsets[lvl] - 1
        n = len(c["items"])
        tips = [i["tip"] for i in c["items"][:10]] + ([f"… and {n - 10} more"] if n > 10 else [])
        fg.append(f"<g>{_marker(c['shape'], x, y, c['color'])}<title>{esc(chr(10).join(tips))}</title></g>")
        if n > 1:
            fg.append(svg_text(x + 8, y - 5, f"×{n}", cls="cnt"))
        label = next((i["label"] for i in c["items"] if i["label"]), "")
        if label:
            right_side = x < x1 - 90
            fg.append(svg_text(x + 9 if right_side else x - 9, y + (14 if lvl % 2 else -8), label, cls="tlabel",
                            fill=PAL["bad"], anchor="start" if right_side else "end"))
        for i in c["items"]:
            for k in i["keys"]:
                if k[0] == "dec" or k not in pos:
                    pos[k if k[0] != "dec" else ("rec", k[1])] = (x, y)
    # connectors: decision → grant, trigger → removal (deduplicated where markers merged)
    drawn: set[tuple] = set()
    for s in steps:
        ev = s.get("evidence") or {}
        end_pos = pos.get(("ev", ev.get("event_id") or ""))
        if not end_pos:
            continue
        for lk in (s.get("links") or [])[:1]:
            start_pos = pos.get(("rec", lk.get("record_id") or ""))
            key = (start_pos, end_pos, lk.get("basis"))
            if start_pos and key not in drawn:
                drawn.add(key)
                links_svg.append(_curve(start_pos, end_pos, PAL["info"], dashed=lk.get("basis") == "inferred"))
        for r in (s.get("required_by") or [])[:1]:
            start_pos = pos.get(("rec", r.get("trigger_record_id") or ""))
            key = (start_pos, end_pos, "removal")
            if start_pos and key not in drawn:
                drawn.add(key)
                links_svg.append(_curve(start_pos, end_pos, PAL["bad"] if r.get("status") == "late" else PAL["faint"],
                                        dashed=False))
    # still held after it was due
    for lane, rows in sorted(group_by(tl["missing"], "system").items()):
        if lane not in lanes:
            continue
        a = X(min(r["due_at"] for r in rows))
        if a is None:
            continue
        y = Y(lane) - 1
        ents = ", ".join(sorted({str(r["entitlement"] or r["entitlement_type"]) for r in rows}))
        tip = f"not removed: {len(rows)} access(es) still held since {fmt_time(min(r['due_at'] for r in rows))}: {ents}"
        fg.append(f'<g><line x1="{a:.1f}" x2="{x1 - 6:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{PAL["bad"]}" '
                  f'stroke-width="2.2" stroke-dasharray="5 4"/><circle cx="{x1 - 6:.1f}" cy="{y:.1f}" r="4.5" '
                  f'fill="#fff" stroke="{PAL["bad"]}" stroke-width="2"/><title>{esc(tip)}</title></g>')
        fg.append(svg_text(x1 - 14, y - 8, f"still held: {len(rows)}", anchor="end", cls="tlabel", fill=PAL["bad"]))
    defs = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f8fafc"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{PAL["line"]}" stroke-width="2"/></pattern></defs>')
    body = defs + "".join(bg) + "".join(labels) + '<g class="links">' + "".join(links_svg) + "</g>" + "".join(fg)
    name = (tl["person"].get("display_name") or tl["person"].get("person_id") or "")
    return svg(W, H, body, f"Access lifecycle of {name} across systems", cls="chart timeline")


def _curve(a: tuple[float, float], b: tuple[float, float], color: str, *, dashed: bool) -> str:
    (xa, ya), (xb, yb) = a, b
    if abs(xa - xb) < 1 and abs(ya - yb) < 1:
        return ""
    my = (ya + yb) / 2
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<path d="M{xa:.1f},{ya:.1f} C{xa:.1f},{my:.1f} {xb:.1f},{my:.1f} {xb:.1f},{yb:.1f}" fill="none" '
            f'stroke="{color}" stroke-width="1.3" stroke-opacity=".75"{dash}/>')
