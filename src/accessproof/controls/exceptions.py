"""Governance exceptions: an approved QMS exception suppresses the findings inside its scope, until it expires.

An alarm is *excepted* only when a governance record says so: a workflow record of kind ``exception`` that

* is approved (its approvals, or its status, per linking's ``approved_statuses``);
* is in force at the assessment's ``as_of``: effective (else decided) at or before it, and expiring after it
  — an exception without an expiry never suppresses anything (that exception is itself a finding of
  ``exception_incomplete``);
* is about the same person as the finding (the exception's subject resolved to a person), and
* covers the finding's entitlement: the finding's governance ``scope`` equals the exception's scope, or the
  finding's system and entitlement are what the exception's scope names in the enforcement systems
  (linking's scope rules, ``wf_scope_targets``).

Findings without a person or without an entitlement are never excepted, and controls marked
``exceptable: false`` (those testing exceptions themselves) are never suppressed. After the expiry the
finding is open again; access that outlived its exception is a finding of its own
(``exception_expired_access_remains``).
"""

from __future__ import annotations

from datetime import datetime

from accessproof.store.base import Store

_TAIL = "lower(reverse(split_part(reverse(r.entitlement), '/', 1)))"


def temp_table(store: Store, name: str, select_sql: str, params: list | None = None) -> None:
    store.execute(f"DROP TABLE IF EXISTS {name}")
    store.execute(f"CREATE TEMP TABLE {name} AS {select_sql}", params)


def match_exceptions(store: Store, run_id: str, as_of: datetime) -> None:
    """Build ``_ctl_exc`` (finding_id, exception_id, expires): the exception in force that covers each
    alarm of the run (the one expiring last when several do)."""
    temp_table(store, "_ctl_exc", f"""
      SELECT finding_id, exception_id, expires FROM (
        SELECT r.finding_id, x.record_id AS exception_id, x.expires,
               row_number() OVER (PARTITION BY r.finding_id ORDER BY x.expires DESC, x.record_id) AS pick
        FROM control_results r
        JOIN ctl_exceptions x ON x.person_id = r.person_id
        LEFT JOIN wf_scope_targets t ON t.raw_id = x.raw_id AND t.rule <> 'scope-equals'
        WHERE r.run_id = ? AND r.status = 'alarm' AND r.person_id IS NOT NULL
          AND x.approval_state = 'approved' AND x.expires IS NOT NULL
          AND x.valid_from <= CAST(? AS TIMESTAMPTZ) AND x.expires > CAST(? AS TIMESTAMPTZ)
          AND (
            (r.scope IS NOT NULL AND lower(trim(r.scope)) = lower(trim(x.scope)))
            OR (r.entitlement IS NOT NULL AND r.system IS NOT NULL AND t.raw_id IS NOT NULL
                AND r.system LIKE t.systems
                AND ((t.ent IS NULL AND t.etype = r.entitlement_type)
                     OR (t.ent IS NOT NULL
                         AND (t.etype IS NULL OR r.entitlement_type IS NULL OR t.etype = r.entitlement_type)
                         AND (t.ent = lower(r.entitlement) OR t.ent = lower(r.entitlement_id) OR t.ent = {_TAIL}
                              OR (t.mode = 'contains'
                                  AND strpos(t.ent, lower(coalesce(r.entitlement_id, r.entitlement))) > 0)))))
          )
      ) m WHERE pick = 1
    """, [run_id, as_of, as_of])


def exceptions_in_force(store: Store, as_of: datetime) -> list[dict]:
    """Approved exceptions in force at ``as_of``, with subject person, scope and expiry."""
    return store.query_dicts("""
      SELECT record_id, subject, person_id, scope, valid_from, expires, owner, compensating_control
      FROM ctl_exceptions
      WHERE approval_state = 'approved' AND expires IS NOT NULL
        AND valid_from <= CAST(? AS TIMESTAMPTZ) AND expires > CAST(? AS TIMESTAMPTZ)
      ORDER BY expires, record_id""", [as_of, as_of])
