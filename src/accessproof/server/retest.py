"""Event-driven control testing: between full runs, what was just ingested re-tests what it can change.

An ingested grant, removal, HR event or governance record changes what some controls say about one
subject (a person, or an account no person owns yet). ``after_ingest`` queues the delivery (table
``retest_queue``, so a restart loses nothing); ``process_queue`` re-links the store once (identity,
links, removals: linking is set-based and rebuilds in about a second on the demo), finds whom the queued
records are about and which controls they can affect (``AFFECTS``), and re-runs each of those controls
restricted to those subjects:

* the control's query runs as in a full assessment, and only the rows about the subjects are kept
  (``person_id``, or ``system`` + ``account_id`` for accounts without a person);
* the findings update is the engine's own (``controls.findings.update_findings``: open, refresh, except,
  resolve, reopen), and findings about anyone else keep their state exactly (a subject re-test must not
  resolve someone else's finding because their row was filtered out);
* the run is recorded with status ``retest`` (its assessment id starts with ``retest-``), so the latest
  *full* run of a control stays what reports and the matrix show; runs are sealed like any other;
* findings that opened or closed are written to the outbox as ``finding.opened`` / ``finding.resolved``
  CloudEvents in the same transaction as the findings themselves.

Exceptions that now expire within 14 days of the data's "now" are announced (``exception.expiring``, once
each) after every pass. In the server (``scheduler.start``) a background job does the processing, so a webhook only pays for the
queue insert; without a server ``after_ingest`` processes at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from accessproof.controls import findings as F
from accessproof.controls.engine import (
    Assessment,
    Control,
    data_times,
    load_catalogue,
    parameter_values,
    run_query,
)
from accessproof.server import db
from accessproof.server.changes import (
    FindingChange,
    expiring_exception_events,
    finding_changes,
    finding_events,
    finding_states,
)
from accessproof.server.outbox import emit
from accessproof.store.base import Store

_GRANT_APPROVAL = ("access_without_approval", "access_before_approval", "access_after_rejection",
                   "scope_beyond_approval", "approver_is_executor")
_HELD_ACCESS = ("sod_conflict", "access_beyond_max_duration", "access_conditions_not_met",
                "privileged_access_outside_emergency", "supplier_access_after_contract_end",
                "supplier_not_qualified", "time_bound_access_not_removed", "exception_expired_access_remains",
                "recert_revoke_not_enforced", "revocation_missing", "orphan_account")
_REMOVAL = ("revocation_late", "revocation_missing", "credential_not_revoked_at_offboarding",
            "time_bound_access_not_removed", "recert_revoke_not_enforced", "exception_expired_access_remains",
            "supplier_access_after_contract_end", "sod_conflict", "access_beyond_max_duration", "orphan_account",
            "credential_not_rotated")
_APPROVAL_SIDE = (*_GRANT_APPROVAL, "requester_is_approver", "approver_not_authorised", "approver_training_expired",
                  "privileged_access_outside_emergency", "time_bound_access_not_removed",
                  "access_beyond_max_duration")
_PERSON = ("revocation_late", "revocation_missing", "credential_not_revoked_at_offboarding", "orphan_account",
           "access_conditions_not_met", "supplier_access_after_contract_end", "supplier_not_qualified",
           "access_without_approval", "requester_is_approver", "approver_not_authorised")

#: what an ingested record is (access event direction, governance record kind, ``person`` for an HR
#: worker row) → the controls it can change for its subject. ``*``: every control (an exception can
#: except or expose a finding of any exceptable control).
AFFECTS: dict[str, tuple[str, ...]] = {
    "grant": (*_GRANT_APPROVAL, *_HELD_ACCESS, "credential_not_rotated", "dormant_account"),
    "remove": _REMOVAL,
    "hr_event": _PERSON,
    "person": _PERSON,
    "access_request": _APPROVAL_SIDE,
    "approval": _APPROVAL_SIDE,
    "change_record": _APPROVAL_SIDE,
    "recertification_decision": ("recert_revoke_not_enforced", "recertification_overdue"),
    "exception": ("*",),
    "training_attestation": ("approver_training_expired", "access_conditions_not_met"),
    "supplier": ("supplier_not_qualified", "supplier_access_after_contract_end"),
    "subject": ("*",),  # a subject named by the caller, without a record to say what changed
}

KEEP_QUEUE_DAYS = 30

#: store key → function that wakes the server's background re-tester (see ``register``)
_wakers: dict[str, Callable[[], None]] = {}


def _key(store: Store) -> str:
    return str(Path(store.dir).resolve())


def register(store: Store, wake: Callable[[], None] | None) -> None:
    """Let a background job process this store's queue (``wake`` is called after each queued delivery);
    ``None`` unregisters, and ``after_ingest`` processes at once again."""
    if wake is None:
        _wakers.pop(_key(store), None)
    else:
        _wakers[_key(store)] = wake


# ---------------------------------------------------------------- queue

def enqueue(store: Store, run_id: str | None, subjects: Iterable[str] = (), reason: str = "ingest") -> int:
    """Queue an ingest run (its records say whom to re-test) and any subjects named besides."""
    db.ensure_tables(store)
    now = datetime.now(UTC)
    rows = [(run_id, None)] if run_id else []
    rows += [(run_id, str(s)) for s in dict.fromkeys(subjects) if s]
    with db.transaction(store):
        for rid, subject in rows:
            store.execute("INSERT INTO retest_queue VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)",
                          [uuid.uuid4().hex, rid, subject, reason, now])
    return len(rows)


def after_ingest(store: Store, summary: Any, subjects: Iterable[str] = ()) -> list[FindingChange] | None:
    """What the API's webhook handler calls after each delivery (with the store held).

    Queues the run; in the server the background re-tester is woken and this returns None at once,
    elsewhere the queue is processed now and the finding changes are returned."""
    run_id = getattr(summary, "run_id", None) or (summary.get("run_id") if isinstance(summary, dict) else None)
    accepted = getattr(summary, "accepted", None)
    if accepted is None and isinstance(summary, dict):
        accepted = summary.get("accepted")
    if accepted == 0:  # duplicates and quarantined records change nothing
        return []
    if not enqueue(store, run_id, subjects, reason=f"ingest:{getattr(summary, 'source_type', '') or 'records'}"):
        return []
    wake = _wakers.get(_key(store))
    if wake is not None:
        wake()
        return None
    return process_queue(store).changes


def pending(store: Store) -> int:
    if not db.ensure_tables(store):
        return 0
    return int(store.query("SELECT count(*) FROM retest_queue WHERE done IS NULL")[0][0])


# ---------------------------------------------------------------- subjects and controls

@dataclass
class Scope:
    """Whom to re-test, per control: persons, and (system, account id) pairs of accounts."""

    persons: dict[str, set[str]] = field(default_factory=dict)
    accounts: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def add(self, controls: Iterable[str], person: str | None, account: tuple[str, str] | None) -> None:
        for c in controls:
            if person:
                self.persons.setdefault(c, set()).add(person)
            if account and account[0] and account[1]:
                self.accounts.setdefault(c, set()).add(account)

    @property
    def controls(self) -> list[str]:
        return sorted(set(self.persons) | set(self.accounts))


def _in(values: list[str]) -> tuple[str, list[str]]:
    vals = values or [""]
    return ", ".join("?" * len(vals)), vals


def scope_of(store: Store, run_ids: list[str], subjects: list[str], catalogue: dict[str, Control],
             controls: Iterable[str] | None = None) -> Scope:
    """Whom the queued runs' records and the named subjects are about, and which controls to re-test for
    each (``controls`` overrides ``AFFECTS`` for named subjects). Run after linking: new accounts must
    be resolved to their persons first."""
    everything = sorted(catalogue)

    def expand(kind: str) -> list[str]:
        names = AFFECTS.get(kind, ())
        return everything if "*" in names else [c for c in names if c in catalogue]

    scope = Scope()
    if run_ids:
        marks, params = _in(run_ids)
        rows = store.query(f"""
          SELECT ae.direction, ae.person_id, ae.system, ae.account_id FROM access_events ae
            JOIN raw_records r ON r.raw_id = ae.raw_id WHERE r.run_id IN ({marks})
          UNION ALL
          SELECT ws.kind, ws.person_id, NULL, NULL FROM workflow_subjects ws
            JOIN raw_records r ON r.raw_id = ws.raw_id WHERE r.run_id IN ({marks}) AND ws.person_id IS NOT NULL
          UNION ALL
          SELECT 'supplier', p.person_id, NULL, NULL FROM wf_current w
            JOIN raw_records r ON r.raw_id = w.raw_id
            JOIN persons_current p ON p.supplier_id = w.record_id
            WHERE r.run_id IN ({marks}) AND w.kind = 'supplier'
          UNION ALL
          SELECT 'person', p.person_id, NULL, NULL FROM persons p
            JOIN raw_records r ON r.raw_id = p.raw_id WHERE r.run_id IN ({marks})""", params * 4)
        for kind, person, system, account in rows:
            scope.add(expand(str(kind)), person, (system, account) if account else None)
    if subjects:
        # a subject named besides the records (a webhook names whom it delivered about) adds only people and
        # accounts the records did not already bring, each with every control it could concern
        wanted = list(controls) if controls is not None else expand("subject")
        seen_p = {p for ps in scope.persons.values() for p in ps}
        seen_a = {a for accts in scope.accounts.values() for a in accts}
        marks, params = _in([s.strip().lower() for s in subjects])
        for (person,) in store.query(f"SELECT person_id FROM ctl_person_handles WHERE handle IN ({marks})", params):
            if person not in seen_p:
                scope.add(wanted, person, None)
        for system, account, person in store.query(
                f"SELECT system, account_id, person_id FROM accounts WHERE lower(account_id) IN ({marks}) "
                f"OR lower(name) IN ({marks})", params * 2):
            if (system, account) not in seen_a and (person is None or person not in seen_p):
                scope.add(wanted, person, (system, account))
    return scope


# ---------------------------------------------------------------- re-testing

@dataclass
class RetestResult:
    """One pass: the queue rows it took, the runs it made, the finding changes it announced."""

    queued: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    changes: list[FindingChange] = field(default_factory=list)
    seconds: float = 0.0
    #: seconds per step: link (identity, links, removals, shared views), controls (runs and events), seal
    steps: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def process_queue(store: Store, *, config: Any = None, policy: Any = None,
                  catalogue: dict[str, Control] | None = None, exception_days: int = 14) -> RetestResult:
    """Re-test everything queued: re-link once, then each affected control for its subjects; then announce
    exceptions expiring within ``exception_days`` of the data's new "now" (each once)."""
    t0 = time.perf_counter()
    result = RetestResult()
    if not pending(store):
        return result
    rows = store.query("SELECT queue_id, ingest_run_id, subject, reason FROM retest_queue WHERE done IS NULL "
                       "ORDER BY queued")
    result.queued = len(rows)
    run_ids = sorted({r[1] for r in rows if r[1] and r[2] is None})
    subjects = sorted({r[2] for r in rows if r[2]})
    reason = ",".join(sorted({r[3] for r in rows if r[3]})) or "ingest"
    try:
        catalogue = catalogue if catalogue is not None else load_catalogue()
        _prepare(store, config, policy)
        result.steps["link"] = time.perf_counter() - t0
        scope = scope_of(store, run_ids, subjects, catalogue)
        result.runs, result.changes = retest(store, scope, catalogue, reason=reason, steps=result.steps)
        emit(store, expiring_exception_events(store, exception_days))
    except Exception as e:  # the queue rows say what failed; the next full assessment covers their subjects
        result.error = (str(e).splitlines() or [type(e).__name__])[0][:500]
    marks, ids = _in([r[0] for r in rows])
    now = datetime.now(UTC)
    store.execute(f"UPDATE retest_queue SET done = ?, changes = ?, error = ? WHERE queue_id IN ({marks})",
                  [now, len(result.changes), result.error, *ids])
    # the queue is bookkeeping (the runs themselves are sealed): a month of it is kept
    store.execute("DELETE FROM retest_queue WHERE done < ?", [now - timedelta(days=KEEP_QUEUE_DAYS)])
    result.seconds = time.perf_counter() - t0
    return result


def retest_subject(store: Store, subject: str, reason: str, *, controls: Iterable[str] | None = None,
                   relink: bool = True, config: Any = None, policy: Any = None) -> list[FindingChange]:
    """Re-test one subject (a person id, email, username, or account id/name) now: the controls named,
    else every control. Returns the findings that opened or closed (also written to the outbox)."""
    catalogue = load_catalogue()
    unknown = sorted(set(controls or ()) - set(catalogue))
    if unknown:
        raise ValueError(f"no control named {', '.join(unknown)}")
    _prepare(store, config, policy, relink=relink)
    scope = scope_of(store, [], [subject], catalogue, controls)
    if not scope.controls:
        raise ValueError(f"{subject!r} names no person or account in this store")
    return retest(store, scope, catalogue, reason=reason)[1]


def _prepare(store: Store, config: Any, policy: Any, *, relink: bool = True) -> None:
    """Re-link, then the policy tables and shared views a control query joins (as ``assess`` does)."""
    from accessproof.controls.policy import as_policy, load_policy_tables
    from accessproof.controls.prelude import build_prelude, ensure_linked
    from accessproof.linking.link import link_all

    if relink:
        link_all(store, config)
    else:
        ensure_linked(store, config)
    with db.transaction(store):
        load_policy_tables(store, as_policy(policy))
        build_prelude(store, config)
        F.ensure_tables(store)


def retest(store: Store, scope: Scope, catalogue: dict[str, Control], *, reason: str,
           params: dict[str, Any] | None = None, steps: dict[str, float] | None = None
           ) -> tuple[list[dict[str, Any]], list[FindingChange]]:
    """Run each control of ``scope`` restricted to its subjects; seal the runs; return (runs, changes)."""
    from accessproof.controls.policy import as_policy
    from accessproof.evidence import seal_control_runs

    if not scope.controls:
        return [], []
    period_start, as_of = data_times(store)
    as_of = as_of or datetime.now(UTC)
    builtins = {"as_of": as_of, "period_start": period_start or as_of}
    assessment = Assessment(assessment_id="retest-" + uuid.uuid4().hex[:12], as_of=as_of,
                            policy_digest=as_policy(None).digest)
    runs: list[dict[str, Any]] = []
    changes: list[FindingChange] = []
    t = time.perf_counter()
    for cid in scope.controls:
        control = catalogue[cid]
        values = parameter_values(control, params, builtins)
        run = F.new_run(assessment, control, values)
        changes += _retest_control(store, control, run, values, scope.persons.get(cid, set()),
                                   scope.accounts.get(cid, set()), reason)
        runs.append(run)
    t2 = time.perf_counter()
    seal_control_runs(store, runs)
    if steps is not None:
        steps.update(controls=t2 - t, seal=time.perf_counter() - t2)
    return runs, changes


def _retest_control(store: Store, control: Control, run: dict[str, Any], values: dict[str, Any],
                    persons: set[str], accounts: set[tuple[str, str]], reason: str) -> list[FindingChange]:
    """One control for some subjects, in one transaction with its outgoing events."""
    before = finding_states(store, [control.id])
    _subjects_table(store, "_rt_persons", ("person_id",), [(p,) for p in sorted(persons)])
    _subjects_table(store, "_rt_accounts", ("system", "account_id"), sorted(accounts))
    changes: list[FindingChange] = []
    store.execute("BEGIN TRANSACTION")
    try:
        run["query_seconds"] = round(run_query(store, control, values), 4)
        cols = {r[0] for r in store.query("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = '_ctl_out'")}
        F.temp_table(store, "_rt_rows", f"SELECT * FROM _ctl_out f WHERE {_about('f', cols)}")
        # findings about anyone else: their state is put back after the engine's update
        F.temp_table(store, "_rt_keep", f"""
          SELECT finding_id, state, resolved_at, last_run_id, exception_id, exception_expires FROM findings f
          WHERE control_id = ? AND state <> 'resolved' AND NOT {_about('f', {'person_id', 'system', 'account_id'})}
        """, [control.id])
        F.record_results(store, control, run, table="_rt_rows")
        F.update_findings(store, control, run)
        store.execute("""
          UPDATE findings SET state = k.state, resolved_at = k.resolved_at, last_run_id = k.last_run_id,
                              exception_id = k.exception_id, exception_expires = k.exception_expires
          FROM _rt_keep k WHERE findings.finding_id = k.finding_id""")
        run["status"] = "completed"
        store.execute("DROP TABLE IF EXISTS _ctl_out")
        F.finish_run(store, run)
        store.execute("UPDATE control_runs SET status = 'retest' WHERE run_id = ?", [run["run_id"]])
        run["status"] = "retest"
        changes = finding_changes(store, before, [run["run_id"]])
        emit(store, finding_events(store, changes, trigger=f"retest:{reason}"))
        store.execute("COMMIT")
    except Exception as e:
        store.execute("ROLLBACK")
        run["status"] = "error"
        run["error_message"] = (str(e).splitlines() or [type(e).__name__])[0][:500]
        run["error"] = 1
        run.setdefault("_t0", datetime.now(UTC))
        F.finish_run(store, run)
        changes = []
    for t in ("_rt_rows", "_rt_keep", "_rt_persons", "_rt_accounts", "_ctl_out"):
        store.execute(f"DROP TABLE IF EXISTS {t}")
    return changes


def _subjects_table(store: Store, name: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in columns)
    F.temp_table(store, name, f"SELECT {cols} WHERE false")
    one = "(" + ", ".join("?" * len(columns)) + ")"
    for i in range(0, len(rows), 500):
        part = rows[i:i + 500]
        store.execute(f"INSERT INTO {name} VALUES {', '.join([one] * len(part))}", [v for r in part for v in r])


def _about(alias: str, cols: set[str]) -> str:
    """SQL: the row (or finding) is about one of the subjects in ``_rt_persons`` / ``_rt_accounts``."""
    parts = []
    if "person_id" in cols:
        parts.append(f"CAST({alias}.person_id AS VARCHAR) IN (SELECT person_id FROM _rt_persons)")
    if {"system", "account_id"} <= cols:
        parts.append(f"EXISTS (SELECT 1 FROM _rt_accounts a WHERE a.system = CAST({alias}.system AS VARCHAR) "
                     f"AND a.account_id = CAST({alias}.account_id AS VARCHAR))")
    return "coalesce(" + " OR ".join(parts) + ", false)" if parts else "false"
