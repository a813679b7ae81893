"""Decision ↔ execution: every grant, change or removal of access linked to the governance records behind it.

Set-based SQL over the store. Tables built (rebuilt on every run):

* ``wf_current`` — one version of each governance record (the latest decided one);
* ``wf_requests`` — records that can justify access (``linking.justifying_kinds``), with the person they are
  about, their approval state (approved | rejected | pending) and decision time from their approvals;
* ``wf_scope_targets`` — what each record's scope names in the enforcement systems (scope rules);
* ``event_refs`` — decision ids each event carries (``linking.decision_refs``);
* ``links`` — (event, record) pairs: ``basis`` explicit (the event cites the record, or an approval of it)
  or inferred (same person, system and entitlement, inside the window after the decision), the ``rule``,
  ``delta_hours`` from decision to event, ``status`` (justified | granted-before-approval |
  granted-after-rejection | approval-pending | scope-mismatch) and the evidence ids of both sides;
  the approvals of a linked request are linked too (``role = 'approval'``);
* ``unlinked_grants`` — grants with no justified link, with the reason;
* ``unexecuted_approvals`` — approved requests with no linked event (``never-executed`` once the window
  has passed, else ``awaiting``);
* ``removal_links`` — each access that a trigger (termination, contract end, end date, recertification
  revoke, exception expiry) required to be removed, with the removal event and the latency in hours;
  ``missing_removals`` and ``removal_latency`` (per trigger and system) are views of it.
"""

from __future__ import annotations

import time
from typing import Any

from accessproof.identity.resolve import resolve_identities
from accessproof.linking import sql as S
from accessproof.linking.access import build_access_intervals
from accessproof.linking.base import build_access_events
from accessproof.linking.config import Config, ConfigError, as_config
from accessproof.sources.refs import DEFAULT_PATTERNS
from accessproof.store.base import Store

#: A scope target (``t``) names the entitlement of an access event (``e``): same type (or any), and the
#: name, the id, or the part of the name after its last "/" (GitHub teams are "org/team").
#: ``contains``: the scope text names the entitlement's id (or name) somewhere (a policy ARN in a sentence).
ENT_MATCH = """(t.etype IS NULL OR t.etype = e.entitlement_type)
        AND (t.ent IS NULL
             OR (t.mode = 'name' AND (t.ent = lower(e.entitlement_name) OR t.ent = lower(e.entitlement_id)
                                      OR t.ent = e.entitlement_tail))
             OR (t.mode = 'contains' AND strpos(t.ent, lower(coalesce(e.entitlement_id, e.entitlement_name))) > 0))"""
INTERVAL_MATCH = """(t.etype IS NULL OR t.etype = i.entitlement_type)
            AND (t.ent IS NULL
                 OR (t.mode = 'name' AND (t.ent = lower(i.entitlement) OR t.ent = lower(i.entitlement_id)
                                          OR t.ent = lower(reverse(split_part(reverse(i.entitlement), '/', 1)))))
                 OR (t.mode = 'contains' AND strpos(t.ent, lower(i.entitlement_id)) > 0))"""

#: Event columns a decision id may be searched in (besides ``approval_ref`` and attribute paths).
REF_COLUMNS = frozenset({"actor_name", "actor_id", "resource", "account_name", "entitlement_name"})

LINK_STATUSES = ("justified", "granted-before-approval", "granted-after-rejection", "approval-pending",
                 "scope-mismatch")


# ---------------------------------------------------------------- configuration tables

def load_linking_config(store: Store, cfg: Config) -> None:
    lk = cfg.linking
    rules: list[tuple] = []
    for r in lk.get("scope_rules") or []:
        try:
            prefix = str(r["prefix"]).strip()
            types = r.get("types") or [None]
        except (KeyError, TypeError):
            raise ConfigError(f"linking.scope_rules: each rule needs a prefix (got {r!r})") from None
        for t in types:
            mode = str(r.get("match") or "name")
            if mode not in ("name", "any", "contains"):
                raise ConfigError(f"linking.scope_rules: match must be name, any or contains (got {mode!r})")
            rules.append((str(r.get("rule") or prefix), prefix.lower(), len(prefix), str(r.get("systems") or "%"),
                          t, mode, bool(r.get("strip_suffix"))))
    S.load_table(store, "cfg_scope_rules",
                 (("rule", "VARCHAR"), ("prefix", "VARCHAR"), ("prefix_len", "INTEGER"), ("systems", "VARCHAR"),
                  ("etype", "VARCHAR"), ("mode", "VARCHAR"), ("strip_suffix", "BOOLEAN")), rules)
    entries: list[tuple] = []
    for m in lk.get("scope_map") or []:
        for t in m.get("types") or [None]:
            entries.append((str(m["scope"]).strip().lower(), str(m.get("systems") or "%"), t,
                            str(m["entitlement"]).strip().lower() if m.get("entitlement") else None))
    S.load_table(store, "cfg_scope_map", (("scope", "VARCHAR"), ("systems", "VARCHAR"), ("etype", "VARCHAR"),
                                          ("ent", "VARCHAR")), entries)
    kinds = list(lk.get("justifying_kinds") or [])
    S.load_table(store, "cfg_justifying_kinds", (("kind", "VARCHAR"), ("rank", "INTEGER")),
                 [(k, i + 1) for i, k in enumerate(kinds)])


def _removal_request_sql(lk: dict, alias: str = "w") -> str:
    rr = lk.get("removal_request") or {}
    conds = []
    for attr, values in (rr.get("attribute_values") or {}).items():
        conds.append(f"lower({S.json_text(f'{alias}.attributes_json', attr)}) IN {S.in_list(v.lower() for v in values)}")
    texts = [f"{alias}.scope", S.json_text(f"{alias}.attributes_json", "title"),
             S.json_text(f"{alias}.attributes_json", "short_description")]
    for p in rr.get("scope_prefixes") or []:
        p = str(p).lower().replace("'", "''")
        for t in texts:
            conds.append(f"substr(lower(coalesce({t}, '')), 1, {len(p)}) = '{p}'")
    return "coalesce(" + " OR ".join(conds) + ", false)" if conds else "false"


# ---------------------------------------------------------------- governance side

def build_requests(store: Store, cfg: Config, horizon: Any) -> None:
    lk = cfg.linking
    inf = lk.get("inferred") or {}
    window_days = float(inf.get("window_days", 14))
    before_hours = float(inf.get("before_hours", 0))
    approved = S.in_list(s.lower() for s in lk.get("approved_statuses") or [])
    rejected = S.in_list(s.lower() for s in lk.get("rejected_statuses") or [])
    S.replace_table(store, "wf_current", """
      SELECT * FROM (
        SELECT w.*, row_number() OVER (PARTITION BY system, record_id
                                       ORDER BY coalesce(decided, effective, opened, completed) DESC NULLS LAST,
                                                raw_id DESC) AS version_rank
        FROM workflow_records w
      ) x WHERE version_rank = 1
    """)
    S.replace_table(store, "wf_requests", f"""
      WITH ap AS (
        SELECT system, parent_id, count(*) AS approvals,
               sum(CASE WHEN decision = 'approved' THEN 1 ELSE 0 END) AS approved,
               sum(CASE WHEN decision = 'rejected' THEN 1 ELSE 0 END) AS rejected,
               sum(CASE WHEN decision IN ('requested', 'not_requested') OR decision IS NULL THEN 1 ELSE 0 END)
                 AS open_approvals,
               max(CASE WHEN decision = 'approved' THEN decided END) AS approved_at,
               min(CASE WHEN decision = 'rejected' THEN decided END) AS rejected_at
        FROM wf_current WHERE kind = 'approval' AND parent_id IS NOT NULL GROUP BY system, parent_id
      ), r AS (
        SELECT w.raw_id, w.record_id, w.system, w.kind, k.rank AS kind_rank, w.subject, w.scope, w.opened,
               w.decided, w.effective, w.expires, w.status, w.decision, s.person_id, s.basis AS subject_basis,
               coalesce(s.person_id, 'acct:' || lower(trim(w.subject))) AS subject_key,
               ap.approvals, ap.approved_at, ap.rejected_at,
               CASE WHEN ap.rejected > 0 OR lower(coalesce(w.decision, '')) = 'rejected'
                         OR (ap.approvals IS NULL AND lower(coalesce(w.status, '')) IN {rejected}) THEN 'rejected'
                    WHEN ap.approvals > 0 AND ap.approved > 0 AND ap.open_approvals = 0 THEN 'approved'
                    WHEN ap.approvals IS NULL AND (lower(coalesce(w.decision, '')) = 'approved'
                                                   OR lower(coalesce(w.status, '')) IN {approved}) THEN 'approved'
                    ELSE 'pending' END AS approval_state,
               {_removal_request_sql(lk)} AS is_removal
        FROM wf_current w
        JOIN cfg_justifying_kinds k ON k.kind = w.kind
        LEFT JOIN workflow_subjects s ON s.raw_id = w.raw_id
        LEFT JOIN ap ON ap.system = w.system AND ap.parent_id = w.record_id
      )
      SELECT r.*,
             CASE WHEN approval_state = 'approved' THEN coalesce(approved_at, decided, effective, opened)
                  WHEN approval_state = 'rejected' THEN coalesce(rejected_at, decided) END AS decision_time,
             coalesce(opened, decided, effective) - ? * INTERVAL '1 hour' AS window_start,
             coalesce(approved_at, decided, effective, opened) + ? * INTERVAL '1 hour' AS window_end
      FROM r
    """, [before_hours, window_days * 24])
    S.replace_table(store, "wf_scope_targets", """
      WITH p AS (
        SELECT r.raw_id, c.rule, c.systems, c.etype, c.mode,
               trim(substr(trim(r.scope), c.prefix_len + 1)) AS rest, c.strip_suffix
        FROM wf_requests r JOIN cfg_scope_rules c ON substr(lower(trim(r.scope)), 1, c.prefix_len) = c.prefix
      )
      SELECT raw_id, rule, systems, etype,
             CASE WHEN mode = 'any' THEN NULL
                  WHEN strip_suffix AND rest LIKE '% (%)' THEN lower(trim(substr(rest, 1, strpos(rest, ' (') - 1)))
                  ELSE lower(rest) END AS ent, mode
      FROM p
      UNION ALL
      SELECT r.raw_id, 'scope-map', m.systems, m.etype, m.ent, 'name'
      FROM wf_requests r JOIN cfg_scope_map m ON m.scope = lower(trim(r.scope))
    """ + ("""
      UNION ALL
      SELECT raw_id, 'scope-equals', '%', CAST(NULL AS VARCHAR), lower(trim(scope)), 'name'
      FROM wf_requests WHERE scope IS NOT NULL AND trim(scope) <> ''
    """ if cfg.linking.get("scope_equals", True) else ""))


# ---------------------------------------------------------------- decision refs on events

def build_event_refs(store: Store, cfg: Config) -> None:
    lk = cfg.linking
    patterns = list(lk.get("patterns") or []) or list(DEFAULT_PATTERNS)
    rx = "|".join(f"(?:{p})" for p in patterns).replace("'", "''")
    parts = []
    for spec in lk.get("decision_refs") or []:
        st = str(spec.get("source_type") or "*")
        fld = str(spec.get("field") or "")
        cond = "" if st == "*" else f" AND source_type = '{st.replace(chr(39), '')}'"
        if fld == "approval_ref":
            parts.append(f"""SELECT event_id, raw_id, approval_ref AS ref, 'approval_ref' AS field
                             FROM access_events WHERE approval_ref IS NOT NULL{cond}""")
        elif fld in REF_COLUMNS:
            parts.append(f"""SELECT event_id, raw_id, regexp_extract({fld}, '{rx}') AS ref, '{fld}' AS field
                             FROM access_events WHERE {fld} IS NOT NULL{cond}""")
        elif fld.startswith("attributes."):
            path = fld[len("attributes."):]
            leaf = path.split(".")[-1].replace("'", "")
            val = S.json_text("attributes_json", path)
            parts.append(f"""SELECT event_id, raw_id, regexp_extract({val}, '{rx}') AS ref, '{fld}' AS field
                             FROM access_events
                             WHERE attributes_json LIKE '%"{leaf}"%'{cond}""")
        else:
            raise ConfigError(f"linking.decision_refs: field {fld!r} is not approval_ref, one of "
                              f"{', '.join(sorted(REF_COLUMNS))} or attributes.<path>")
    if not parts:
        parts.append("SELECT event_id, raw_id, approval_ref AS ref, 'approval_ref' AS field FROM access_events "
                     "WHERE false")
    S.replace_table(store, "event_refs", f"""
      SELECT event_id, raw_id, upper(trim(ref)) AS ref, min(field) AS field
      FROM ({' UNION ALL '.join(parts)}) r WHERE ref IS NOT NULL AND trim(ref) <> ''
      GROUP BY event_id, raw_id, upper(trim(ref))
    """)


# ---------------------------------------------------------------- links

def build_links(store: Store, cfg: Config) -> None:
    lk = cfg.linking
    bw = lk.get("hr_links") or {}
    # the keys an event can be matched to a request by: its person, else its account's or credential's name
    S.replace_table(store, "_event_keys", """
      SELECT event_id, raw_id, person_id AS key FROM access_events WHERE person_id IS NOT NULL AND time IS NOT NULL
      UNION SELECT event_id, raw_id, 'acct:' || lower(account_name) FROM access_events
        WHERE person_id IS NULL AND account_name IS NOT NULL AND time IS NOT NULL
      UNION SELECT event_id, raw_id, 'acct:' || lower(account_id) FROM access_events
        WHERE person_id IS NULL AND account_id IS NOT NULL AND time IS NOT NULL
      UNION SELECT event_id, raw_id, 'acct:' || lower(entitlement_name) FROM access_events
        WHERE entitlement_type = 'credential' AND entitlement_name IS NOT NULL AND time IS NOT NULL
    """)
    S.replace_table(store, "_scope_hits", f"""
      SELECT DISTINCT e.event_id, e.raw_id AS event_raw_id, t.raw_id AS record_raw_id, t.rule
      FROM wf_requests r
      JOIN _event_keys k ON k.key = r.subject_key
      JOIN access_events e ON e.event_id = k.event_id AND e.raw_id = k.raw_id
      JOIN wf_scope_targets t ON t.raw_id = r.raw_id
      WHERE e.system LIKE t.systems AND {ENT_MATCH}
        AND e.time >= r.window_start AND e.time <= r.window_end
        AND r.is_removal = (e.direction = 'remove')
    """)
    # explicit: the event cites the record, or cites the request an approval decides
    S.replace_table(store, "_explicit", """
      SELECT f.event_id, f.raw_id AS event_raw_id, f.ref, f.field, w.raw_id AS record_raw_id,
             'ref:' || f.field AS rule
      FROM event_refs f JOIN wf_current w ON upper(w.record_id) = f.ref
      UNION
      SELECT f.event_id, f.raw_id, f.ref, f.field, p.raw_id, 'ref:' || f.field || '>approval-parent'
      FROM event_refs f JOIN wf_current a ON a.kind = 'approval' AND upper(a.record_id) = f.ref
      JOIN wf_current p ON p.system = a.system AND p.record_id = a.parent_id
    """)
    S.replace_table(store, "_explicit_scope", f"""
      SELECT DISTINCT x.event_id, x.event_raw_id, x.record_raw_id, t.rule <> 'scope-equals' AS mapped
      FROM _explicit x
      JOIN access_events e ON e.event_id = x.event_id AND e.raw_id = x.event_raw_id
      JOIN wf_scope_targets t ON t.raw_id = x.record_raw_id
      WHERE e.system LIKE t.systems AND {ENT_MATCH}
    """)
    S.replace_table(store, "_mapped_scopes", """
      SELECT DISTINCT raw_id FROM wf_scope_targets WHERE rule <> 'scope-equals'
    """)
    S.replace_table(store, "_cands", """
      WITH ex AS (
        SELECT x.event_id, x.event_raw_id, x.record_raw_id, 'explicit' AS basis, min(x.rule) AS rule,
               min(x.ref) AS ref FROM _explicit x GROUP BY x.event_id, x.event_raw_id, x.record_raw_id
      ), inf AS (
        SELECT h.event_id, h.event_raw_id, h.record_raw_id, 'inferred' AS basis,
               'same-person-scope:' || min(h.rule) AS rule, CAST(NULL AS VARCHAR) AS ref
        FROM _scope_hits h
        WHERE NOT EXISTS (SELECT 1 FROM _explicit x WHERE x.event_id = h.event_id AND x.event_raw_id = h.event_raw_id)
        GROUP BY h.event_id, h.event_raw_id, h.record_raw_id
      ), c AS (SELECT * FROM ex UNION ALL SELECT * FROM inf),
      sm AS (
        SELECT event_id, event_raw_id, record_raw_id FROM _explicit_scope
        UNION SELECT event_id, event_raw_id, record_raw_id FROM _scope_hits
      )
      SELECT c.*, e.time AS event_time, e.direction,
             r.approval_state, r.decision_time, r.kind_rank,
             CASE WHEN r.raw_id IS NULL THEN NULL
                  WHEN sm.event_id IS NOT NULL THEN true
                  WHEN ms.raw_id IS NOT NULL THEN false END AS scope_match,
             CASE WHEN r.decision_time IS NOT NULL THEN round((epoch(e.time) - epoch(r.decision_time)) / 3600.0, 3)
                  END AS delta_hours
      FROM c
      JOIN access_events e ON e.event_id = c.event_id AND e.raw_id = c.event_raw_id
      LEFT JOIN wf_requests r ON r.raw_id = c.record_raw_id
      LEFT JOIN sm ON sm.event_id = c.event_id AND sm.event_raw_id = c.event_raw_id
        AND sm.record_raw_id = c.record_raw_id
      LEFT JOIN _mapped_scopes ms ON ms.raw_id = c.record_raw_id
    """)
    before = float((lk.get("inferred") or {}).get("before_hours", 0))
    S.replace_table(store, "_cands2", f"""
      SELECT c.*,
             CASE WHEN c.approval_state IS NULL THEN 'justified'
                  WHEN c.approval_state = 'rejected' THEN 'granted-after-rejection'
                  WHEN c.approval_state = 'pending' THEN 'approval-pending'
                  WHEN c.delta_hours < -{before} THEN 'granted-before-approval'
                  WHEN c.scope_match = false THEN 'scope-mismatch'
                  ELSE 'justified' END AS status
      FROM _cands c
    """)
    # one inferred request per event (the justified one closest after its decision); explicit: all cited
    S.replace_table(store, "_chosen", """
      SELECT * FROM (
        SELECT c.*, row_number() OVER (
                 PARTITION BY event_id, event_raw_id
                 ORDER BY CASE WHEN status = 'justified' THEN 0 ELSE 1 END, coalesce(kind_rank, 99),
                          abs(coalesce(delta_hours, 1e9)), record_raw_id) AS pick
        FROM _cands2 c
      ) x WHERE basis = 'explicit' OR pick = 1
    """)
    # HR events behind lifecycle events and removals with no request behind them (birthright, leavers…)
    parts = []
    for action, types in (bw.get("actions") or {}).items() if bw.get("enabled", True) else []:
        parts.append(f"(e.action = '{str(action).replace(chr(39), '')}' AND lower(w.event_type) IN "
                     f"{S.in_list(str(t).lower() for t in types)})")
    birthright = ""
    if parts:
        birthright = f"""
      UNION ALL
      SELECT * FROM (
        SELECT e.event_id, e.raw_id AS event_raw_id, w.raw_id AS record_raw_id, 'inferred' AS basis,
               'hr:' || lower(w.event_type) AS rule, CAST(NULL AS VARCHAR) AS ref,
               e.time AS event_time, e.direction, 'approved' AS approval_state, w.effective AS decision_time,
               99 AS kind_rank, CAST(NULL AS BOOLEAN) AS scope_match,
               round((epoch(e.time) - epoch(w.effective)) / 3600.0, 3) AS delta_hours, 'justified' AS status,
               row_number() OVER (PARTITION BY e.event_id, e.raw_id
                                  ORDER BY abs(epoch(e.time) - epoch(w.effective)), w.raw_id) AS pick
        FROM access_events e
        JOIN workflow_subjects s ON s.person_id = e.person_id
        JOIN wf_current w ON w.raw_id = s.raw_id AND w.kind = 'hr_event'
        WHERE e.time IS NOT NULL AND ({' OR '.join(parts)})
          AND e.time >= w.effective - ? * INTERVAL '1 day' AND e.time <= w.effective + ? * INTERVAL '1 day'
          AND NOT EXISTS (SELECT 1 FROM _chosen c WHERE c.event_id = e.event_id AND c.event_raw_id = e.raw_id
                          AND c.status = 'justified')
      ) b WHERE pick = 1"""
    S.replace_table(store, "_linked", f"""
      SELECT event_id, event_raw_id, record_raw_id, basis, rule, ref, event_time, direction, approval_state,
             decision_time, kind_rank, scope_match, delta_hours, status, pick
      FROM _chosen{birthright}
    """, [float(bw.get("before_days", 14)), float(bw.get("after_days", 14))] if parts else None)
    S.replace_table(store, "links", """
      WITH l AS (
        SELECT l.*, 'request' AS role, CAST(NULL AS VARCHAR) AS via FROM _linked l
        UNION ALL
        SELECT l.event_id, l.event_raw_id, a.raw_id, l.basis, l.rule, l.ref, l.event_time, l.direction,
               a.decision, a.decided, l.kind_rank, l.scope_match,
               CASE WHEN a.decided IS NOT NULL THEN round((epoch(l.event_time) - epoch(a.decided)) / 3600.0, 3) END,
               l.status, l.pick, 'approval', w.record_id
        FROM _linked l JOIN wf_current w ON w.raw_id = l.record_raw_id
        JOIN wf_current a ON a.kind = 'approval' AND a.system = w.system AND a.parent_id = w.record_id
      )
      SELECT e.event_id, l.event_raw_id, e.time AS event_time, e.system, e.account_id, e.person_id, e.direction,
             e.action, e.vendor_action, e.entitlement_type, coalesce(e.entitlement_name, e.entitlement_id)
               AS entitlement,
             w.record_id, l.record_raw_id, w.system AS record_system, w.kind AS record_kind, l.role, l.via,
             l.basis, l.rule, l.ref, l.delta_hours, l.status, l.status = 'justified' AS justified,
             l.scope_match, w.scope, l.approval_state AS record_state, l.decision_time,
             e.executor_person_id, e.executor_account
      FROM l
      JOIN access_events e ON e.event_id = l.event_id AND e.raw_id = l.event_raw_id
      JOIN wf_current w ON w.raw_id = l.record_raw_id
    """)
    S.replace_table(store, "unlinked_grants", """
      WITH best AS (
        SELECT event_id, event_raw_id,
               max(CASE WHEN justified AND role = 'request' THEN 1 ELSE 0 END) AS ok,
               string_agg(DISTINCT record_id || ' (' || status || ')', ', ' ORDER BY record_id || ' (' || status || ')')
                 FILTER (WHERE role = 'request') AS candidates,
               min(CASE WHEN role = 'request' THEN status END) AS status
        FROM links GROUP BY event_id, event_raw_id
      ), cited AS (
        SELECT event_id, raw_id, string_agg(DISTINCT ref, ', ' ORDER BY ref) AS refs FROM event_refs GROUP BY event_id, raw_id
      )
      SELECT e.event_id, e.raw_id AS event_raw_id, e.time AS event_time, e.system, e.account_id, e.account_name,
             e.person_id, e.account_kind, e.action, e.vendor_action, e.entitlement_type,
             coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, c.refs AS cited_refs,
             b.candidates,
             CASE WHEN b.candidates IS NOT NULL THEN b.status
                  WHEN c.refs IS NOT NULL THEN 'cited-record-unknown'
                  WHEN e.person_id IS NULL AND e.account_kind = 'human' THEN 'account-unresolved'
                  ELSE 'no-approval-found' END AS reason_code,
             CASE WHEN b.candidates IS NOT NULL THEN 'linked records do not justify it: ' || b.candidates
                  WHEN c.refs IS NOT NULL THEN 'cites ' || c.refs || ', not found in the governance records'
                  WHEN e.person_id IS NULL AND e.account_kind = 'human' THEN
                    'account ' || e.account_id || ' maps to no person, so no request could be matched'
                  ELSE 'no cited decision and no approved request of the same person and entitlement '
                       || 'inside the window' END AS reason,
             e.executor_person_id, e.executor_account
      FROM access_events e
      LEFT JOIN best b ON b.event_id = e.event_id AND b.event_raw_id = e.raw_id
      LEFT JOIN cited c ON c.event_id = e.event_id AND c.raw_id = e.raw_id
      WHERE e.direction = 'grant' AND coalesce(b.ok, 0) = 0
    """)
    for t in ("_event_keys", "_scope_hits", "_explicit", "_explicit_scope", "_mapped_scopes", "_cands", "_cands2", "_chosen",
              "_linked"):
        store.execute(f"DROP TABLE IF EXISTS {t}")


def build_unexecuted(store: Store, cfg: Config, horizon: Any) -> None:
    kinds = S.in_list(cfg.linking.get("executable_kinds") or [])
    S.replace_table(store, "_known_ents", """
      SELECT DISTINCT lower(entitlement_name) AS ent FROM access_events WHERE entitlement_name IS NOT NULL
      UNION SELECT DISTINCT lower(entitlement_id) FROM access_events WHERE entitlement_id IS NOT NULL
    """)
    S.replace_table(store, "unexecuted_approvals", f"""
      SELECT r.raw_id AS record_raw_id, r.record_id, r.system, r.kind, r.subject, r.person_id, r.scope,
             r.decision_time, r.window_end, r.is_removal,
             CASE WHEN r.window_end > CAST(? AS TIMESTAMPTZ) THEN 'awaiting' ELSE 'never-executed' END AS status,
             CASE WHEN NOT EXISTS (SELECT 1 FROM wf_scope_targets t WHERE t.raw_id = r.raw_id
                                   AND (t.rule <> 'scope-equals' OR t.ent IN (SELECT ent FROM _known_ents)))
                    THEN 'scope names no known entitlement (no scope rule matched)'
                  WHEN r.person_id IS NULL THEN 'subject ' || coalesce(r.subject, '(none)') || ' matches no person'
                  ELSE 'no ' || CASE WHEN r.is_removal THEN 'removal' ELSE 'grant' END
                       || ' of the approved scope for the person found in the window' END AS reason
      FROM wf_requests r
      WHERE r.approval_state = 'approved' AND r.kind IN {kinds}
        AND NOT EXISTS (SELECT 1 FROM links l WHERE l.record_raw_id = r.raw_id AND l.role = 'request')
    """, [horizon])
    store.execute("DROP TABLE IF EXISTS _known_ents")


# ---------------------------------------------------------------- removals

def build_removals(store: Store, cfg: Config, horizon: Any) -> None:
    rm = cfg.linking.get("removal") or {}
    triggers = set(rm.get("triggers") or [])
    early = float(rm.get("early_hours", 24))
    sla = float(rm.get("sla_hours", 24))
    person_parts, scoped_parts = [], []
    if "termination" in triggers:
        person_parts.append("""
          SELECT 'termination' AS trigger_kind, w.raw_id AS trigger_raw_id, w.record_id AS trigger_record_id,
                 w.system AS trigger_system, s.person_id, w.effective AS due_at
          FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
          WHERE w.kind = 'hr_event' AND lower(w.event_type) = 'termination' AND s.person_id IS NOT NULL
            AND w.effective IS NOT NULL
          UNION ALL
          SELECT 'termination', p.raw_id, p.person_id, p.system, p.person_id, p.terminated
          FROM persons_current p
          WHERE p.terminated IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
            WHERE w.kind = 'hr_event' AND lower(w.event_type) = 'termination' AND s.person_id = p.person_id)""")
    if "contract-end" in triggers:
        person_parts.append("""
          SELECT 'contract-end', w.raw_id, w.record_id, w.system, p.person_id, w.contract_end
          FROM wf_current w JOIN persons_current p ON p.supplier_id = w.record_id
          WHERE w.kind = 'supplier' AND w.contract_end IS NOT NULL""")
    if "end-date" in triggers:
        scoped_parts.append("""
          SELECT DISTINCT 'end-date' AS trigger_kind, r.raw_id AS trigger_raw_id, r.record_id AS trigger_record_id,
                 r.system AS trigger_system, i.person_id, r.expires AS due_at, i.system, i.account_id,
                 i.entitlement_type, i.entitlement_key
          FROM wf_requests r
          JOIN links l ON l.record_raw_id = r.raw_id AND l.role = 'request' AND l.direction = 'grant'
          JOIN access_events e ON e.event_id = l.event_id AND e.raw_id = l.event_raw_id
          JOIN access_intervals i ON i.system = e.system AND i.account_id = e.account_id
            AND i.entitlement_type = e.entitlement_type AND i.entitlement_key = e.entitlement_key
            AND (i.granted_at IS NULL OR i.granted_at <= e.time) AND (i.removed_at IS NULL OR i.removed_at > e.time)
          WHERE r.expires IS NOT NULL AND r.kind <> 'exception' AND NOT r.is_removal""")
    scoped_sql = """
          SELECT DISTINCT '{kind}', r.raw_id, r.record_id, r.system, i.person_id, {due}, i.system, i.account_id,
                 i.entitlement_type, i.entitlement_key
          FROM {src} r
          JOIN wf_scope_targets t ON t.raw_id = r.raw_id
          JOIN access_intervals i ON i.person_id = r.person_id AND i.system LIKE t.systems
            AND {ent_match}
            AND (i.granted_at IS NULL OR i.granted_at <= {due})
            AND (i.removed_at IS NULL OR i.removed_at >= {due} - ? * INTERVAL '1 hour')
          WHERE {where}"""
    params: list[Any] = []
    if "exception-expiry" in triggers:
        scoped_parts.append(scoped_sql.format(ent_match=INTERVAL_MATCH, kind="exception-expiry", due="r.expires", src="wf_requests", where="""
            r.kind = 'exception' AND r.approval_state = 'approved' AND r.expires IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM wf_requests n WHERE n.kind = 'exception' AND n.raw_id <> r.raw_id
                            AND n.approval_state = 'approved' AND n.person_id = r.person_id
                            AND lower(n.scope) = lower(r.scope)
                            AND coalesce(n.effective, n.decided) <= r.expires + INTERVAL '2 day'
                            AND n.expires > r.expires)"""))
        params.append(early)
    if "recert-revoke" in triggers:
        scoped_parts.append(scoped_sql.format(
            ent_match=INTERVAL_MATCH, kind="recert-revoke", due="r.decided", src="(SELECT w.*, s.person_id FROM wf_current w JOIN "
            "workflow_subjects s ON s.raw_id = w.raw_id)",
            where="r.kind = 'recertification_decision' AND lower(r.decision) = 'revoke' AND r.decided IS NOT NULL"))
        params.append(early)
    # recertification decisions carry their own scope: map them like requests
    if "recert-revoke" in triggers:
        store.execute("""
          INSERT INTO wf_scope_targets
          SELECT t.* FROM (
            SELECT w.raw_id, c.rule, c.systems, c.etype,
                   CASE WHEN c.mode = 'any' THEN NULL ELSE lower(trim(substr(trim(w.scope), c.prefix_len + 1))) END,
                   c.mode
            FROM wf_current w JOIN cfg_scope_rules c ON substr(lower(trim(w.scope)), 1, c.prefix_len) = c.prefix
            WHERE w.kind = 'recertification_decision'
            UNION ALL
            SELECT w.raw_id, 'scope-equals', '%', CAST(NULL AS VARCHAR), lower(trim(w.scope)), 'name'
            FROM wf_current w WHERE w.kind = 'recertification_decision' AND w.scope IS NOT NULL
          ) t WHERE NOT EXISTS (SELECT 1 FROM wf_requests r WHERE r.raw_id = t.raw_id)""")
    person_sql = " UNION ALL ".join(person_parts) or """
          SELECT NULL, NULL, NULL, NULL, NULL, CAST(NULL AS TIMESTAMPTZ) WHERE false"""
    scoped = " UNION ALL ".join(scoped_parts) or """
          SELECT NULL, NULL, NULL, NULL, NULL, CAST(NULL AS TIMESTAMPTZ), NULL, NULL, NULL, NULL WHERE false"""
    S.replace_table(store, "removal_triggers", f"""
      SELECT * FROM ({person_sql}) p WHERE due_at <= CAST(? AS TIMESTAMPTZ)
    """, [horizon])
    S.replace_table(store, "_required", f"""
      SELECT t.trigger_kind, t.trigger_raw_id, t.trigger_record_id, t.trigger_system, t.person_id, t.due_at,
             i.system, i.account_id, i.entitlement_type, i.entitlement_key
      FROM removal_triggers t
      JOIN access_intervals i ON i.person_id = t.person_id
        AND (i.granted_at IS NULL OR i.granted_at < t.due_at)
        AND (i.removed_at IS NULL OR i.removed_at >= t.due_at - ? * INTERVAL '1 hour')
      UNION
      SELECT * FROM ({scoped}) s WHERE due_at <= CAST(? AS TIMESTAMPTZ)
    """, [early, *params, horizon])
    # the views over removal_links go first: PostgreSQL refuses to drop a table a view depends on
    store.execute("DROP VIEW IF EXISTS missing_removals")
    store.execute("DROP VIEW IF EXISTS removal_latency")
    S.replace_table(store, "removal_links", f"""
      SELECT q.trigger_kind, q.trigger_record_id, q.trigger_raw_id, q.trigger_system, q.person_id, q.due_at,
             q.system, q.account_id, i.account_name, q.entitlement_type, i.entitlement, i.entitlement_id,
             i.granted_at, i.grant_event_id, i.removed_at, i.removal_event_id, i.removal_raw_id,
             i.removal_action,
             CASE WHEN i.removed_at IS NOT NULL THEN round((epoch(i.removed_at) - epoch(q.due_at)) / 3600.0, 3)
                  END AS latency_hours,
             CASE WHEN i.removed_at IS NULL THEN 'missing'
                  WHEN (epoch(i.removed_at) - epoch(q.due_at)) / 3600.0 > {sla} THEN 'late'
                  ELSE 'removed' END AS status,
             CAST({sla} AS DOUBLE) AS sla_hours
      FROM _required q
      JOIN access_intervals i ON i.system = q.system AND i.account_id = q.account_id
        AND i.entitlement_type = q.entitlement_type AND i.entitlement_key = q.entitlement_key
        AND (i.granted_at IS NULL OR i.granted_at <= q.due_at)
        AND (i.removed_at IS NULL OR i.removed_at >= q.due_at - ? * INTERVAL '1 hour')
    """, [early])
    store.execute("DROP TABLE IF EXISTS _required")
    store.execute("CREATE VIEW missing_removals AS SELECT * FROM removal_links WHERE status = 'missing'")
    store.execute(f"""
      CREATE VIEW removal_latency AS
      SELECT trigger_kind, trigger_record_id, person_id, system, min(due_at) AS due_at,
             count(*) AS accesses, count(removed_at) AS removed,
             CASE WHEN count(removed_at) = count(*) THEN max(removed_at) END AS fully_removed_at,
             CASE WHEN count(removed_at) = count(*) THEN max(latency_hours) END AS latency_hours,
             CASE WHEN count(removed_at) < count(*) THEN 'missing'
                  WHEN max(latency_hours) > {sla} THEN 'late' ELSE 'removed' END AS status
      FROM removal_links GROUP BY trigger_kind, trigger_record_id, person_id, system
    """)


# ---------------------------------------------------------------- entry points

def horizon_of(store: Store) -> Any:
    """The data's "now": the latest event time (so results do not drift with the wall clock)."""
    row = store.query("SELECT max(time) FROM events")
    return row[0][0] if row and row[0][0] is not None else None


def link_all(store: Store, config: Config | str | dict | None = None, *, resolve: bool = True) -> dict[str, Any]:
    """Identity resolution, access intervals, links and removals; returns counts and seconds per step."""
    cfg = as_config(config)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if resolve:
        resolve_identities(store, cfg)
        timings["identity"] = time.perf_counter() - t0
    t = time.perf_counter()
    horizon = horizon_of(store)
    if horizon is None:
        horizon = store.query("SELECT current_timestamp")[0][0]
    load_linking_config(store, cfg)
    build_access_events(store, cfg)
    build_access_intervals(store, cfg)
    timings["access"] = time.perf_counter() - t
    t = time.perf_counter()
    build_requests(store, cfg, horizon)
    build_event_refs(store, cfg)
    build_links(store, cfg)
    build_unexecuted(store, cfg, horizon)
    timings["links"] = time.perf_counter() - t
    t = time.perf_counter()
    build_removals(store, cfg, horizon)
    timings["removals"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {**link_summary(store), "horizon": horizon, "config": cfg.digest,
            "seconds": {k: round(v, 3) for k, v in timings.items()}}


def link_summary(store: Store) -> dict[str, Any]:
    q = store.query
    grants = q("SELECT count(*) FROM access_events WHERE direction = 'grant'")[0][0]
    by_basis = {f"{b}:{s}": n for b, s, n in q(
        "SELECT basis, status, count(DISTINCT event_id || '|' || event_raw_id) FROM links "
        "WHERE role = 'request' GROUP BY basis, status ORDER BY 1, 2")}
    return {
        "access_events": q("SELECT count(*) FROM access_events")[0][0],
        "grants": grants,
        "links": by_basis,
        "unlinked_grants": S.count(store, "unlinked_grants"),
        "unexecuted_approvals": S.count(store, "unexecuted_approvals", "status = 'never-executed'"),
        "access_intervals": S.count(store, "access_intervals"),
        "removal_links": S.count(store, "removal_links"),
        "missing_removals": S.count(store, "removal_links", "status = 'missing'"),
        "late_removals": S.count(store, "removal_links", "status = 'late'"),
    }


def _ensure(store: Store) -> None:
    if not S.table_exists(store, "links"):
        link_all(store)


def links(store: Store, *, event_id: str | None = None, record_id: str | None = None,
          person: str | None = None, basis: str | None = None, status: str | None = None,
          limit: int | None = None) -> list[dict[str, Any]]:
    _ensure(store)
    where, params = [], []
    for col, val in (("event_id", event_id), ("record_id", record_id), ("person_id", person), ("basis", basis),
                     ("status", status)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    sql = "SELECT * FROM links" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY event_time, event_id, role DESC, record_id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return store.query_dicts(sql, params)


def unlinked_grants(store: Store, *, limit: int | None = None) -> list[dict[str, Any]]:
    _ensure(store)
    sql = "SELECT * FROM unlinked_grants ORDER BY event_time, event_id"
    return store.query_dicts(sql + (" LIMIT ?" if limit else ""), [limit] if limit else [])


def unexecuted_approvals(store: Store, *, include_awaiting: bool = False) -> list[dict[str, Any]]:
    _ensure(store)
    where = "" if include_awaiting else " WHERE status = 'never-executed'"
    return store.query_dicts(f"SELECT * FROM unexecuted_approvals{where} ORDER BY decision_time, record_id")


def removal_links(store: Store, *, status: str | None = None, person: str | None = None) -> list[dict[str, Any]]:
    _ensure(store)
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if person:
        where.append("person_id = ?")
        params.append(person)
    sql = "SELECT * FROM removal_links" + (" WHERE " + " AND ".join(where) if where else "")
    return store.query_dicts(sql + " ORDER BY due_at, person_id, system, account_id, entitlement", params)


def missing_removals(store: Store) -> list[dict[str, Any]]:
    return removal_links(store, status="missing")


def removal_latency(store: Store) -> list[dict[str, Any]]:
    _ensure(store)
    return store.query_dicts("SELECT * FROM removal_latency ORDER BY due_at, person_id, system")
