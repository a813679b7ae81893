"""A person's access lifecycle across systems, in time order, each step with its evidence.

Stages: ``hr`` (hire, transfer, leave, return, termination), ``request``, ``approval``, ``exception``,
``provisioning``, ``use`` (first and last sign-in per account), ``recertification``, ``change``,
``suspension``, ``deprovisioning``. Enforcement steps carry the link to the governance record behind them
(basis, rule, record id, status) and removals the trigger that required them. Every step names its source
and evidence ids (event id + raw id, or record id + raw id). The result is JSON-serialisable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from accessproof.linking import sql as S
from accessproof.model import Action
from accessproof.store.base import Store

_STAGE = {
    Action.ACCOUNT_CREATE: "provisioning", Action.ACCOUNT_ENABLE: "provisioning",
    Action.ENTITLEMENT_GRANT: "provisioning", Action.CREDENTIAL_CREATE: "provisioning",
    Action.PRIVILEGE_ELEVATE: "provisioning", Action.ROLE_CHANGE: "change",
    Action.CREDENTIAL_ROTATE: "change", Action.MFA_ENROLL: "change", Action.MFA_RESET: "change",
    Action.ACCOUNT_SUSPEND: "suspension",
    Action.ACCOUNT_DISABLE: "deprovisioning", Action.ACCOUNT_DELETE: "deprovisioning",
    Action.ENTITLEMENT_REVOKE: "deprovisioning", Action.CREDENTIAL_REVOKE: "deprovisioning",
}
_ORDER = {"hr": 0, "request": 1, "approval": 2, "exception": 3, "provisioning": 4, "change": 5, "use": 6,
          "recertification": 7, "suspension": 8, "deprovisioning": 9}


def _iso(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _person_id(store: Store, person: str) -> str | None:
    rows = store.query("SELECT person_id FROM persons_current WHERE person_id = ?", [person])
    if rows:
        return rows[0][0]
    from accessproof.identity.resolve import person_of

    found = person_of(store, person)
    return found["person_id"] if found else None


def timeline(store: Store, person: str) -> list[dict[str, Any]]:
    """Every lifecycle step of ``person`` (a person id, email, username or account name), oldest first."""
    if not S.table_exists(store, "links"):
        from accessproof.linking.link import link_all

        link_all(store)
    pid = _person_id(store, person)
    if pid is None:
        return []
    steps: list[dict[str, Any]] = []

    # ---- governance records about the person
    for r in store.query_dicts("""
        SELECT w.record_id, w.raw_id, w.system, w.kind, w.scope, w.status, w.decision, w.event_type, w.opened,
               w.decided, w.effective, w.expires, w.requester, w.approvers_json, s.basis
        FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
        WHERE s.person_id = ? AND w.kind <> 'approval'""", [pid]):
        ev = {"record_id": r["record_id"], "raw_id": r["raw_id"]}
        kind = r["kind"]
        if kind == "hr_event":
            steps.append(_step(r["effective"] or r["opened"], "hr", f"HR {r['event_type'] or 'event'}",
                               r["system"], ev, subject_basis=r["basis"], entered=_iso(r["opened"])))
        elif kind == "recertification_decision":
            steps.append(_step(r["decided"] or r["opened"], "recertification",
                               f"review decision {r['decision'] or r['status']}: {r['scope']}", r["system"], ev,
                               decision=r["decision"], scope=r["scope"]))
        elif kind == "exception":
            steps.append(_step(r["decided"] or r["effective"] or r["opened"], "exception",
                               f"exception {r['status']}: {r['scope']}", r["system"], ev, scope=r["scope"],
                               effective=_iso(r["effective"]), expires=_iso(r["expires"])))
            if r["expires"] is not None:
                steps.append(_step(r["expires"], "exception", f"exception expires: {r['scope']}", r["system"], ev,
                                   scope=r["scope"]))
        elif kind in ("access_request", "change_record"):
            steps.append(_step(r["opened"] or r["decided"], "request", f"{kind.replace('_', ' ')}: {r['scope']}",
                               r["system"], ev, scope=r["scope"], status=r["status"], requester=r["requester"],
                               subject_basis=r["basis"], end_date=_iso(r["expires"])))
        elif kind == "training_attestation":
            continue
        else:
            steps.append(_step(r["decided"] or r["opened"] or r["effective"], "request", f"{kind}: {r['scope']}",
                               r["system"], ev))
    for a in store.query_dicts("""
        SELECT a.record_id, a.raw_id, a.system, a.decision, a.decided, a.opened, a.approvers_json, a.parent_id,
               p.scope
        FROM wf_current a JOIN wf_current p ON p.system = a.system AND p.record_id = a.parent_id
        JOIN workflow_subjects s ON s.raw_id = p.raw_id
        WHERE a.kind = 'approval' AND s.person_id = ?""", [pid]):
        steps.append(_step(a["decided"] or a["opened"], "approval",
                           f"{a['decision'] or 'pending'} — {a['parent_id']}: {a['scope']}", a["system"],
                           {"record_id": a["record_id"], "raw_id": a["raw_id"]}, decision=a["decision"],
                           approvers=a["approvers_json"], request=a["parent_id"]))

    # ---- what the identity systems did to the person's accounts (not sign-ins)
    link_rows = store.query_dicts("""
        SELECT event_id, event_raw_id, basis, rule, record_id, record_raw_id, status, delta_hours
        FROM links WHERE person_id = ? AND role = 'request'""", [pid])
    by_event: dict[tuple, list[dict]] = {}
    for r in link_rows:
        by_event.setdefault((r["event_id"], r["event_raw_id"]), []).append(
            {k: _iso(r[k]) for k in ("basis", "rule", "record_id", "record_raw_id", "status", "delta_hours")})
    removal_rows = store.query_dicts("""
        SELECT removal_event_id, trigger_kind, trigger_record_id, trigger_raw_id, latency_hours, status
        FROM removal_links WHERE person_id = ? AND removal_event_id IS NOT NULL""", [pid])
    by_removal: dict[str, list[dict]] = {}
    for r in removal_rows:
        item = {k: _iso(r[k]) for k in ("trigger_kind", "trigger_record_id", "trigger_raw_id", "latency_hours",
                                         "status")}
        if item not in by_removal.setdefault(r["removal_event_id"], []):
            by_removal[r["removal_event_id"]].append(item)
    seen: set[tuple] = set()
    for e in store.query_dicts(f"""
        SELECT e.event_id, e.raw_id, e.time, e.source, e.source_type, e.action, e.vendor_action,
               coalesce(e.target_system, e.source) AS system, a.account_id, a.name AS account_name,
               e.entitlement_type, coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.approval_ref,
               e.actor_name, e.outcome
        FROM events e JOIN accounts a
          ON a.system = coalesce(e.target_system, e.source) AND a.account_id = coalesce(e.target_id, e.target_name)
        WHERE a.person_id = ? AND e.action IN {S.in_list(_STAGE)}
        UNION
        SELECT e.event_id, e.raw_id, e.time, e.source, e.source_type, e.action, e.vendor_action, x.system,
               x.account_id, x.account_name, x.entitlement_type, coalesce(e.entitlement_name, e.entitlement_id),
               e.approval_ref, e.actor_name, e.outcome
        FROM access_events x JOIN events e ON e.event_id = x.event_id AND e.raw_id = x.raw_id
        WHERE x.person_id = ?""", [pid, pid]):
        if (e["event_id"], e["raw_id"]) in seen:
            continue
        seen.add((e["event_id"], e["raw_id"]))
        stage = _STAGE.get(e["action"], "change")
        what = e["vendor_action"] or e["action"]
        if e["entitlement"]:
            what += f": {e['entitlement']}"
        extra: dict[str, Any] = {"action": e["action"], "account": e["account_name"] or e["account_id"],
                                 "actor": e["actor_name"], "outcome": e["outcome"]}
        if e["approval_ref"]:
            extra["cites"] = e["approval_ref"]
        if stage in ("provisioning", "change"):
            extra["links"] = by_event.get((e["event_id"], e["raw_id"]), [])
            extra["link_basis"] = extra["links"][0]["basis"] if extra["links"] else "unlinked"
        if stage in ("deprovisioning", "suspension"):
            extra["required_by"] = by_removal.get(e["event_id"], [])
        steps.append(_step(e["time"], stage, what, e["system"], {"event_id": e["event_id"], "raw_id": e["raw_id"]},
                           **extra))

    # ---- use: first and last successful sign-in per account
    for u in store.query_dicts("""
        WITH s AS (
          SELECT a.system, a.account_id, a.name, e.time, e.event_id, e.raw_id,
                 row_number() OVER (PARTITION BY a.system, a.account_id ORDER BY e.time, e.event_id) AS first_rn,
                 row_number() OVER (PARTITION BY a.system, a.account_id ORDER BY e.time DESC, e.event_id DESC)
                   AS last_rn,
                 count(*) OVER (PARTITION BY a.system, a.account_id) AS n
          FROM events e JOIN accounts a
            ON a.system = coalesce(e.target_system, e.source) AND a.account_id = coalesce(e.target_id, e.target_name)
          WHERE a.person_id = ? AND e.action = 'auth.success' AND e.time IS NOT NULL
        )
        SELECT * FROM s WHERE first_rn = 1 OR last_rn = 1""", [pid]):
        ev = {"event_id": u["event_id"], "raw_id": u["raw_id"]}
        labels = (["first sign-in"] if u["first_rn"] == 1 else []) + (["last sign-in"] if u["last_rn"] == 1 else [])
        steps.append(_step(u["time"], "use", " and ".join(labels), u["system"], ev,
                           account=u["name"] or u["account_id"], sign_ins=u["n"]))

    steps.sort(key=lambda s: (s["time"] is None, s["time"] or "", _ORDER.get(s["stage"], 99), s["what"]))
    for s in steps:
        s["person_id"] = pid
    return steps


def _step(when: Any, stage: str, what: str, source: str | None, evidence: dict, **details: Any) -> dict[str, Any]:
    out = {"time": _iso(when), "stage": stage, "what": what, "source": source, "evidence": evidence}
    out.update({k: _iso(v) for k, v in details.items() if v is not None})
    return out
