"""Accuracy of the catalogue against the demo simulator's ground truth (``ground_truth.json``).

``score(store_or_findings, ground_truth_path)`` compares each control's alarms (the latest completed run of
each control in the store, or rows given directly) with the failures the simulator injected, by class.

Mapping of control ids to ground-truth classes, and how an alarm is matched to an injected failure:

==================================  =========================================  =====================================
control                             ground-truth class(es)                     matched on
==================================  =========================================  =====================================
access_without_approval             provisioning_without_approval              grant event id
access_before_approval              provisioning_before_approval               grant event id
access_after_rejection              provisioning_after_rejection               grant event id
scope_beyond_approval               scope_beyond_approval                      grant event id
approver_is_executor                approver_is_executor                       grant event id
requester_is_approver               requester_is_approver                      request id (RITM)
approver_training_expired           approver_training_expired                  approval record id (sys_id)
revocation_late                     late_revocation                            person, system, trigger kind
revocation_missing                  missing_revocation                         person, system, trigger kind
time_bound_access_not_removed       late_revocation + missing_revocation       person, system
                                    whose trigger is end_date
exception_expired_access_remains    exception_expired_access_remains           exception id, person
supplier_access_after_contract_end  supplier_access_after_contract_end         person
shared_account                      shared_account                             system, account (id or name)
orphan_account                      orphan_account + shared_account            system, account (id or name)
                                    (shared supplier accounts belong to no
                                    person: ``also_classes``)
ownerless_service_account           ownerless_service_account                  system, account (id or name)
==================================  =========================================  =====================================

Units: ``tp`` and ``fn`` count injected failures (found / not found); ``fp`` counts alarms that match no
injected failure; ``precision`` = alarms matching a failure / all alarms (a failure may raise several
alarms, e.g. one per system), ``recall`` = tp / (tp + fn). Controls without a mapping are not scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Key = tuple

_TRIGGER = {"termination": "termination", "end_date": "end-date", "end-date": "end-date",
            "contract_end": "contract-end", "exception_expiry": "exception-expiry"}


def _event_keys(f: dict) -> set[Key]:
    return {(e,) for e in f.get("event_ids") or []}


def _finding_event(r: dict) -> set[Key]:
    return {(r["event_id"],)} if r.get("event_id") else set()


def _account_keys(f: dict) -> set[Key]:
    src = f.get("source")
    return {(src, str(x).lower()) for x in (f.get("account"), f.get("account_id")) if x}


def _finding_account(r: dict) -> set[Key]:
    return {(r.get("system"), str(x).lower()) for x in (r.get("account_id"), r.get("account_name")) if x}


def _revocation_gt(f: dict) -> set[Key]:
    return {(f.get("person_id"), f.get("source"), _TRIGGER.get(f.get("trigger") or "", f.get("trigger")))}


def _revocation_finding(r: dict) -> set[Key]:
    return {(r.get("person_id"), r.get("system"), r.get("trigger_kind"))}


#: control id -> (ground-truth classes, filter on a failure, key of a failure, key of an alarm)
MAPPING: dict[str, tuple[tuple[str, ...], Callable[[dict], bool] | None, Callable[[dict], set[Key]],
                         Callable[[dict], set[Key]]]] = {
    "access_without_approval": (("provisioning_without_approval",), None, _event_keys, _finding_event),
    "access_before_approval": (("provisioning_before_approval",), None, _event_keys, _finding_event),
    "access_after_rejection": (("provisioning_after_rejection",), None, _event_keys, _finding_event),
    "scope_beyond_approval": (("scope_beyond_approval",), None, _event_keys, _finding_event),
    "approver_is_executor": (("approver_is_executor",), None, _event_keys, _finding_event),
    "requester_is_approver": (("requester_is_approver",), None, lambda f: {(f.get("ritm"),)},
                              lambda r: {(r.get("record_id"),)}),
    "approver_training_expired": (("approver_training_expired",), None, lambda f: {(f.get("approval_sys_id"),)},
                                  lambda r: {(r.get("approval_id"),)}),
    "revocation_late": (("late_revocation",), None, _revocation_gt, _revocation_finding),
    "revocation_missing": (("missing_revocation",), None, _revocation_gt, _revocation_finding),
    "time_bound_access_not_removed": (("late_revocation", "missing_revocation"),
                                      lambda f: f.get("trigger") == "end_date",
                                      lambda f: {(f.get("person_id"), f.get("source"))},
                                      lambda r: {(r.get("person_id"), r.get("system"))}),
    "exception_expired_access_remains": (("exception_expired_access_remains",), None,
                                         lambda f: {(f.get("exception_id"), f.get("person_id"))},
                                         lambda r: {(r.get("exception_id"), r.get("person_id"))}),
    "supplier_access_after_contract_end": (("supplier_access_after_contract_end",), None,
                                           lambda f: {(f.get("person_id"),)}, lambda r: {(r.get("person_id"),)}),
    "shared_account": (("shared_account",), None, _account_keys, _finding_account),
    "orphan_account": (("orphan_account", "shared_account"), None, _account_keys, _finding_account),
    "ownerless_service_account": (("ownerless_service_account",), None, _account_keys, _finding_account),
}


def alarms_from_store(store: Any) -> list[dict[str, Any]]:
    """Alarm rows of the latest completed run of each control, flattened (dimensions merged in)."""
    from accessproof.controls.findings import latest_runs, run_results

    out = []
    for run in latest_runs(store):
        for r in run_results(store, run["run_id"], status="alarm"):
            out.append(flatten(r))
    return out


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """A result or finding row with its dimensions merged into the top level."""
    flat = dict(row.get("dimensions") or {})
    for k, v in row.items():
        if k != "dimensions" and (v is not None or k not in flat):
            flat[k] = v
    return flat


def score(store_or_findings: Any, ground_truth_path: str | Path) -> dict[str, dict[str, Any]]:
    """``{control_id: {precision, recall, tp, fp, fn, alarms, injected, missed, false_alarms}}`` for every
    mapped control present in the results. ``store_or_findings``: a store (latest runs are read) or an
    iterable of rows with ``control_id`` (control results or findings; dimensions may be nested)."""
    truth = json.loads(Path(ground_truth_path).read_text(encoding="utf-8"))
    if hasattr(store_or_findings, "query_dicts"):
        rows = alarms_from_store(store_or_findings)
    else:
        rows = [flatten(r) for r in _iter(store_or_findings)
                if (r.get("status") in (None, "alarm")) and r.get("state", "open") in ("open", "excepted")]
    by_control: dict[str, list[dict]] = {}
    for r in rows:
        by_control.setdefault(r["control_id"], []).append(r)
    present = set(by_control)
    if hasattr(store_or_findings, "query_dicts"):
        from accessproof.controls.findings import latest_runs

        present |= {r["control_id"] for r in latest_runs(store_or_findings)}
    out: dict[str, dict[str, Any]] = {}
    for cid, (classes, keep, gt_key, f_key) in MAPPING.items():
        if cid not in present:
            continue
        failures = [f for f in truth["failures"] if f["class"] in classes and (keep is None or keep(f))]
        alarms = by_control.get(cid, [])
        alarm_keys = [f_key(a) for a in alarms]
        found_keys = set().union(*alarm_keys) if alarm_keys else set()
        gt_keys = [gt_key(f) for f in failures]
        all_gt = set().union(*gt_keys) if gt_keys else set()
        tp = sum(1 for k in gt_keys if k & found_keys)
        fn = len(failures) - tp
        matched_alarms = sum(1 for k in alarm_keys if k & all_gt)
        fp = len(alarms) - matched_alarms
        out[cid] = {
            "precision": round(matched_alarms / len(alarms), 4) if alarms else (1.0 if not failures else 0.0),
            "recall": round(tp / len(failures), 4) if failures else 1.0,
            "tp": tp, "fp": fp, "fn": fn, "alarms": len(alarms), "injected": len(failures),
            "classes": list(classes),
            "missed": [f["id"] for f, k in zip(failures, gt_keys, strict=True) if not k & found_keys],
            "false_alarms": [a.get("resource") for a, k in zip(alarms, alarm_keys, strict=True) if not k & all_gt],
        }
    return out


def _iter(x: Any) -> Iterable[dict[str, Any]]:
    return list(x)
