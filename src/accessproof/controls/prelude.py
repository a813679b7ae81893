"""Shared views the controls join: built once per assessment from the canonical, identity and linking tables.

Every name starts with ``ctl_``; a control in a user's ``--controls-dir`` may use them too.

* ``ctl_person_handles`` — (handle, person_id) for every handle (email, employee id, username; lower-cased,
  plus-tags stripped) that names exactly one person;
* ``ctl_manager_chain`` — (person_id, ancestor_id, depth): the HR management chain, transitively;
* ``ctl_approvals`` — one row per approver of a governance record that can justify access: ServiceNow
  approval records (``parent_id``) and records that carry their approvers themselves (QMS changes and
  exceptions), with the request, its subject, requester and the people behind each;
* ``ctl_training`` — training attestations with the trainee's person;
* ``ctl_suppliers`` — the supplier register with the owner's person;
* ``ctl_exceptions`` — QMS exceptions with subject person, scope, validity, owner, compensating control;
* ``ctl_activity`` (view) — successful events by an account acting (sign-ins, API calls, git traffic);
* ``ctl_entitlements`` — every entitlement seen (granted, removed or held) per system;
* ``ctl_entitlement_policy`` / ``ctl_request_policy`` — the access-policy entry governing each entitlement
  and each request (most specific entry wins); ``ctl_policy_owners`` — the people policy owners name.
"""

from __future__ import annotations

from accessproof.controls.policy import ENT_COLUMNS
from accessproof.identity.resolve import actor_account_sql
from accessproof.linking import sql as S
from accessproof.linking.config import Config, as_config
from accessproof.store.base import Store

_TAIL = "lower(reverse(split_part(reverse({x}), '/', 1)))"
#: the policy entry's columns beside a request's: its scope is ``policy_scope`` (one name, one column)
_POLICY_COLUMNS = ", ".join("p.scope AS policy_scope" if c == "scope" else f"p.{c}" for c, _ in ENT_COLUMNS)


def tail(expr: str) -> str:
    return _TAIL.format(x=expr)


def ensure_linked(store: Store, config: Config | str | dict | None = None) -> None:
    """Run identity resolution and linking when the store has not been linked yet."""
    needed = ("accounts", "links", "unlinked_grants", "access_intervals", "removal_links", "wf_requests")
    if not all(S.table_exists(store, t) for t in needed):
        from accessproof.linking.link import link_all

        link_all(store, config)


def build_prelude(store: Store, config: Config | str | dict | None = None) -> None:
    cfg = as_config(config)
    S.replace_table(store, "ctl_person_handles", """
      SELECT handle, min(person_id) AS person_id FROM (
        SELECT k_low AS handle, person_id FROM person_keys WHERE k_low IS NOT NULL
        UNION SELECT k_norm, person_id FROM person_keys WHERE k_norm IS NOT NULL
        UNION SELECT lower(person_id), person_id FROM persons_current
      ) h GROUP BY handle HAVING count(DISTINCT person_id) = 1
    """)
    S.replace_table(store, "ctl_manager_chain", """
      WITH RECURSIVE chain(person_id, ancestor_id, depth) AS (
        SELECT person_id, manager_id, 1 FROM persons_current WHERE manager_id IS NOT NULL
        UNION ALL
        SELECT c.person_id, p.manager_id, c.depth + 1
        FROM chain c JOIN persons_current p ON p.person_id = c.ancestor_id
        WHERE p.manager_id IS NOT NULL AND c.depth < 20
      )
      SELECT person_id, ancestor_id, min(depth) AS depth FROM chain GROUP BY person_id, ancestor_id
    """)
    _handle = "lower(trim({x}))"
    S.replace_table(store, "ctl_approvals", f"""
      WITH own AS (
        SELECT a.raw_id AS approval_raw_id, a.record_id AS approval_id, a.system, a.parent_id AS request_id,
               j.approver, lower(coalesce(a.decision, a.status)) AS decision, coalesce(a.decided, a.opened) AS decided
        FROM wf_current a
        JOIN (SELECT raw_id, {S.json_list('approvers_json')} AS approver FROM wf_current
              WHERE kind = 'approval' AND approvers_json IS NOT NULL) j ON j.raw_id = a.raw_id
        WHERE a.kind = 'approval' AND a.parent_id IS NOT NULL
      ), inline AS (
        SELECT w.raw_id, w.record_id, w.system, w.record_id AS request_id, j.approver,
               CASE WHEN r.approval_state = 'approved' THEN 'approved'
                    WHEN r.approval_state = 'rejected' THEN 'rejected' ELSE 'pending' END,
               coalesce(w.decided, w.effective, w.opened)
        FROM wf_current w
        JOIN wf_requests r ON r.raw_id = w.raw_id
        JOIN (SELECT raw_id, {S.json_list('approvers_json')} AS approver FROM wf_current
              WHERE kind <> 'approval' AND approvers_json IS NOT NULL) j ON j.raw_id = w.raw_id
        WHERE NOT EXISTS (SELECT 1 FROM wf_current a WHERE a.kind = 'approval' AND a.system = w.system
                          AND a.parent_id = w.record_id)
      ), x AS (SELECT * FROM own UNION ALL SELECT * FROM inline)
      SELECT x.approval_raw_id, x.approval_id, x.system, x.request_id, r.raw_id AS request_raw_id,
             r.kind AS request_kind, r.scope, r.subject, r.person_id AS subject_person_id, w.requester,
             rq.person_id AS requester_person_id, x.approver, ap.person_id AS approver_person_id, x.decision,
             x.decided, r.approval_state AS request_state, r.environment
      FROM x
      JOIN (SELECT q.*, c.environment FROM wf_requests q JOIN wf_current c ON c.raw_id = q.raw_id) r
        ON r.system = x.system AND r.record_id = x.request_id
      JOIN wf_current w ON w.raw_id = r.raw_id
      LEFT JOIN ctl_person_handles ap ON ap.handle = {_handle.format(x='x.approver')}
      LEFT JOIN ctl_person_handles rq ON rq.handle = {_handle.format(x='w.requester')}
    """)
    S.replace_table(store, "ctl_training", """
      SELECT s.person_id, lower(trim(w.course)) AS course, w.course AS course_name, w.completed, w.valid_until,
             w.status, w.record_id, w.raw_id
      FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
      WHERE w.kind = 'training_attestation' AND w.course IS NOT NULL AND s.person_id IS NOT NULL
    """)
    S.replace_table(store, "ctl_suppliers", f"""
      SELECT w.record_id AS supplier_id, w.subject AS supplier_name, lower(w.qualification_status) AS qualification,
             w.contract_start, w.contract_end, w.next_review, w.owner, o.person_id AS owner_person_id,
             w.record_id, w.raw_id
      FROM wf_current w LEFT JOIN ctl_person_handles o ON o.handle = {_handle.format(x='w.owner')}
      WHERE w.kind = 'supplier'
    """)
    S.replace_table(store, "ctl_exceptions", """
      SELECT r.raw_id, r.record_id, r.system, r.subject, r.person_id, r.scope, r.approval_state,
             coalesce(r.effective, r.decided, r.opened) AS valid_from, r.expires, w.owner, w.compensating_control,
             w.status
      FROM wf_requests r JOIN wf_current w ON w.raw_id = r.raw_id
      WHERE r.kind = 'exception'
    """)
    actor = actor_account_sql(cfg, "e")
    store.execute("DROP VIEW IF EXISTS ctl_activity")
    store.execute(f"""
      CREATE VIEW ctl_activity AS
      SELECT e.source AS system, {actor} AS account_id, e.time, e.src_ip, e.user_agent, e.event_id, e.raw_id,
             e.action, e.vendor_action, e.source_type
      FROM events e
      WHERE e.time IS NOT NULL AND coalesce(e.outcome, '') <> 'failure'
        AND coalesce(e.actor_id, e.actor_name) IS NOT NULL
    """)
    S.replace_table(store, "ctl_entitlements", """
      SELECT system, entitlement_type, entitlement_key, max(entitlement) AS entitlement,
             max(entitlement_id) AS entitlement_id
      FROM (
        SELECT system, entitlement_type, entitlement_key, entitlement, entitlement_id FROM access_intervals
        UNION ALL
        SELECT system, entitlement_type, entitlement_key, coalesce(entitlement_name, entitlement_id),
               entitlement_id FROM access_events
      ) x WHERE entitlement_type <> 'account'
      GROUP BY system, entitlement_type, entitlement_key
    """)
    if not S.table_exists(store, "policy_entitlements"):
        from accessproof.controls.policy import load_policy, load_policy_tables

        load_policy_tables(store, load_policy())
    S.replace_table(store, "ctl_entitlement_policy", f"""
      SELECT * FROM (
        SELECT c.system, c.entitlement_type, c.entitlement_key, c.entitlement, c.entitlement_id, p.*,
               row_number() OVER (PARTITION BY c.system, c.entitlement_type, c.entitlement_key
                                  ORDER BY p.specific DESC, length(p.name_like) DESC, p.entry_id) AS pick
        FROM ctl_entitlements c
        JOIN policy_entitlements p ON c.system LIKE p.system_prefix || '%'
          AND (p.etype IS NULL OR p.etype = c.entitlement_type)
          AND (lower(c.entitlement) LIKE p.name_like OR lower(c.entitlement_id) LIKE p.name_like
               OR {tail('c.entitlement')} LIKE p.name_like OR {tail('c.entitlement_id')} LIKE p.name_like)
      ) x WHERE pick = 1
    """)
    S.replace_table(store, "ctl_request_policy", f"""
      SELECT * FROM (
        SELECT r.raw_id AS request_raw_id, r.record_id, r.system AS record_system, r.scope, {_POLICY_COLUMNS},
               row_number() OVER (PARTITION BY r.raw_id
                                  ORDER BY m.how, p.specific DESC, length(p.name_like) DESC, p.entry_id) AS pick
        FROM wf_requests r
        JOIN (
          SELECT r.raw_id, p.entry_id, 0 AS how FROM wf_requests r
          JOIN policy_entitlements p ON p.scope = lower(trim(r.scope))
          UNION ALL
          SELECT t.raw_id, p.entry_id, 1 FROM wf_scope_targets t
          JOIN policy_entitlements p ON (p.system_prefix || ':') LIKE t.systems
            AND (t.etype IS NULL OR p.etype IS NULL OR t.etype = p.etype)
            AND (t.ent LIKE p.name_like OR {tail('t.ent')} LIKE p.name_like)
          WHERE t.rule <> 'scope-equals' AND t.ent IS NOT NULL
        ) m ON m.raw_id = r.raw_id
        JOIN policy_entitlements p ON p.entry_id = m.entry_id
      ) x WHERE pick = 1
    """)
    S.replace_table(store, "ctl_policy_owners", f"""
      WITH o AS (
        SELECT entry_id, 'system_owner' AS role, system_owner AS handle FROM policy_entitlements
          WHERE system_owner IS NOT NULL
        UNION ALL SELECT entry_id, 'business_owner', business_owner FROM policy_entitlements
          WHERE business_owner IS NOT NULL
        UNION ALL SELECT 'service:' || system_prefix || ':' || account, 'service_owner', owner
          FROM policy_service_owners
      ), t AS (
        SELECT o.entry_id, o.role, count(DISTINCT p.person_id) AS people, min(p.person_id) AS person_id
        FROM o JOIN persons_current p ON lower(o.handle) LIKE 'title:%'
          AND lower(p.title) = lower(trim(substr(o.handle, 7)))
          AND p.terminated IS NULL
        GROUP BY o.entry_id, o.role
      )
      SELECT o.entry_id, o.role, o.handle,
             CASE WHEN lower(o.handle) LIKE 'title:%' THEN (CASE WHEN t.people = 1 THEN t.person_id END)
                  ELSE h.person_id END AS person_id,
             CASE WHEN lower(o.handle) LIKE 'title:%' THEN coalesce(t.people, 0)
                  WHEN h.person_id IS NOT NULL THEN 1 ELSE 0 END AS people
      FROM o
      LEFT JOIN t ON t.entry_id = o.entry_id AND t.role = o.role
      LEFT JOIN ctl_person_handles h ON h.handle = {_handle.format(x='o.handle')}
    """)


PRELUDE_TABLES = ("ctl_person_handles", "ctl_manager_chain", "ctl_approvals", "ctl_training", "ctl_suppliers",
                  "ctl_exceptions", "ctl_entitlements", "ctl_entitlement_policy", "ctl_request_policy",
                  "ctl_policy_owners")
