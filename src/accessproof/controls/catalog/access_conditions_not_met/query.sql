-- Population: intervals of people's access to entitlements whose policy entry sets conditions.
WITH iv AS (
  SELECT i.person_id, i.system, i.account_id, i.entitlement_type, i.entitlement, i.entitlement_id,
         i.entitlement_key, i.granted_at, i.removed_at, i.grant_event_id, i.grant_raw_id, p.entry_id,
         p.supplier_qualified, p.environments,
         coalesce(i.granted_at, CAST($period_start AS TIMESTAMPTZ)) AS at_grant,
         CASE WHEN i.removed_at IS NULL OR i.removed_at > CAST($as_of AS TIMESTAMPTZ)
              THEN CAST($as_of AS TIMESTAMPTZ) END AS at_now
  FROM access_intervals i
  JOIN ctl_entitlement_policy p ON p.system = i.system AND p.entitlement_type = i.entitlement_type
    AND p.entitlement_key = i.entitlement_key
  WHERE i.person_id IS NOT NULL AND (i.granted_at IS NULL OR i.granted_at <= CAST($as_of AS TIMESTAMPTZ))
    AND (p.training IS NOT NULL OR p.supplier_qualified OR p.environments IS NOT NULL)
), training AS (
  SELECT v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant, t.course,
         coalesce(bool_or(c.completed <= v.at_grant
                 AND v.at_grant < c.valid_until + CAST($valid_until_grace_hours AS DOUBLE) * INTERVAL '1 hour'), false)
           AS ok_grant,
         coalesce(bool_or(v.at_now IS NULL OR (c.completed <= v.at_now
                 AND v.at_now < c.valid_until + CAST($valid_until_grace_hours AS DOUBLE) * INTERVAL '1 hour')),
                  bool_or(v.at_now IS NULL)) AS ok_now,
         max(c.record_id) AS record_id
  FROM iv v JOIN policy_training t ON t.entry_id = v.entry_id
  LEFT JOIN ctl_training c ON c.person_id = v.person_id AND c.course = lower(trim(t.course))
  GROUP BY v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant, t.course
), supplier AS (
  SELECT v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant, p.supplier_id, s.record_id,
         coalesce(s.supplier_id IS NOT NULL
          AND s.qualification IN (SELECT value FROM policy_settings WHERE key = 'qualified_supplier_status')
          AND (s.contract_start IS NULL OR s.contract_start <= v.at_grant)
          AND (s.contract_end IS NULL OR s.contract_end > v.at_grant), false) AS ok_grant,
         coalesce(v.at_now IS NULL OR (s.supplier_id IS NOT NULL
          AND s.qualification IN (SELECT value FROM policy_settings WHERE key = 'qualified_supplier_status')
          AND (s.contract_end IS NULL OR s.contract_end > v.at_now)), false) AS ok_now
  FROM iv v JOIN persons_current p ON p.person_id = v.person_id AND p.supplier_id IS NOT NULL
  LEFT JOIN ctl_suppliers s ON s.supplier_id = p.supplier_id
  WHERE v.supplier_qualified
), env AS (
  SELECT v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant,
         min(w.environment) AS environment, min(w.record_id) AS record_id
  FROM iv v
  JOIN links l ON l.event_id = v.grant_event_id AND l.event_raw_id = v.grant_raw_id AND l.role = 'request'
  JOIN wf_current w ON w.raw_id = l.record_raw_id
  WHERE v.environments IS NOT NULL AND w.environment IS NOT NULL
    AND strpos(';' || lower(v.environments) || ';', ';' || lower(w.environment) || ';') = 0
  GROUP BY v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant
), problems AS (
  SELECT system, account_id, entitlement_type, entitlement_key, at_grant,
         'no current ' || course || ' training when granted' AS problem, record_id FROM training WHERE NOT ok_grant
  UNION ALL
  SELECT system, account_id, entitlement_type, entitlement_key, at_grant,
         course || ' training lapsed while the access is held', record_id FROM training WHERE ok_grant AND NOT ok_now
  UNION ALL
  SELECT system, account_id, entitlement_type, entitlement_key, at_grant,
         'supplier ' || supplier_id || ' not qualified or without a current contract when granted', record_id
  FROM supplier WHERE NOT ok_grant
  UNION ALL
  SELECT system, account_id, entitlement_type, entitlement_key, at_grant,
         'supplier ' || supplier_id || ' no longer qualified or under contract while the access is held', record_id
  FROM supplier WHERE ok_grant AND NOT ok_now
  UNION ALL
  SELECT system, account_id, entitlement_type, entitlement_key, at_grant,
         'requested for environment ' || environment || ', which the policy does not allow', record_id FROM env
)
SELECT 'access:' || v.system || ':' || v.account_id || ':' || v.entitlement_type || ':' || v.entitlement_key || ':'
         || CAST(epoch(v.at_grant) AS VARCHAR) AS resource,
       CASE WHEN count(x.problem) > 0 THEN 'alarm' ELSE 'ok' END AS status,
       CASE WHEN count(x.problem) > 0
              THEN v.entitlement_type || ' ' || v.entitlement || ' (policy ' || v.entry_id || '): '
                   || string_agg(DISTINCT x.problem, '; ' ORDER BY x.problem)
            ELSE 'conditions of policy ' || v.entry_id || ' met' END AS reason,
       [v.grant_event_id, v.grant_raw_id] || list(DISTINCT x.record_id) AS evidence_ids,
       v.person_id, v.system, v.account_id, v.entitlement_type, v.entitlement, v.entitlement_id,
       v.entry_id AS policy_entry, v.granted_at, v.removed_at
FROM iv v
LEFT JOIN problems x ON x.system = v.system AND x.account_id = v.account_id AND x.entitlement_type = v.entitlement_type
  AND x.entitlement_key = v.entitlement_key AND x.at_grant = v.at_grant
GROUP BY v.system, v.account_id, v.entitlement_type, v.entitlement_key, v.at_grant, v.entitlement, v.entry_id,
         v.person_id, v.entitlement_id, v.grant_event_id, v.grant_raw_id, v.granted_at, v.removed_at
