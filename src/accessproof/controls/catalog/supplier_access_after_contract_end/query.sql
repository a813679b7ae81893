-- Population: (supplier, person, system) for staff of suppliers whose contract ended by $as_of: the
-- accesses the contract end required to go (removal_links, contract-end), and accesses granted after it.
WITH ended AS (
  SELECT s.supplier_id, s.contract_end, s.record_id, s.raw_id, p.person_id
  FROM ctl_suppliers s JOIN persons_current p ON p.supplier_id = s.supplier_id
  WHERE s.contract_end IS NOT NULL AND s.contract_end <= CAST($as_of AS TIMESTAMPTZ)
), acc AS (
  SELECT e.supplier_id, e.person_id, r.system, r.account_id, r.entitlement_type, r.entitlement,
         r.due_at, r.grant_event_id, r.removal_event_id,
         CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END AS removed,
         (epoch(coalesce(CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END,
                         CAST($as_of AS TIMESTAMPTZ))) - epoch(r.due_at)) / 3600.0 AS hours,
         false AS granted_after, e.record_id, e.raw_id
  FROM ended e JOIN removal_links r ON r.trigger_kind = 'contract-end' AND r.person_id = e.person_id
    AND r.trigger_record_id = e.supplier_id
  UNION ALL
  SELECT e.supplier_id, e.person_id, i.system, i.account_id, i.entitlement_type, i.entitlement,
         e.contract_end, i.grant_event_id, i.removal_event_id, i.removed_at,
         (epoch(coalesce(i.removed_at, CAST($as_of AS TIMESTAMPTZ))) - epoch(i.granted_at)) / 3600.0,
         true, e.record_id, e.raw_id
  FROM ended e JOIN access_intervals i ON i.person_id = e.person_id
  WHERE i.granted_at > e.contract_end AND i.granted_at <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'supplier:' || supplier_id || ':' || person_id || ':' || system AS resource,
       CASE WHEN bool_or(granted_after) THEN 'alarm'
            WHEN bool_or(hours > CAST($grace_hours AS DOUBLE)) THEN 'alarm'
            WHEN bool_or(removed IS NULL) THEN 'info'
            ELSE 'ok' END AS status,
       CASE WHEN bool_or(granted_after)
              THEN 'granted ' || string_agg(DISTINCT entitlement, '; ' ORDER BY entitlement) FILTER (WHERE granted_after)
                   || ' after the contract of ' || supplier_id || ' ended on '
                   || CAST(min(due_at) AS VARCHAR)
            WHEN bool_or(removed IS NULL AND hours > CAST($grace_hours AS DOUBLE))
              THEN 'contract of ' || supplier_id || ' ended on ' || CAST(min(due_at) AS VARCHAR)
                   || '; still held in ' || system || ': '
                   || string_agg(DISTINCT entitlement_type || ' ' || entitlement, '; '
                                ORDER BY entitlement_type || ' ' || entitlement) FILTER (WHERE removed IS NULL)
            WHEN bool_or(hours > CAST($grace_hours AS DOUBLE))
              THEN 'contract of ' || supplier_id || ' ended on ' || CAST(min(due_at) AS VARCHAR)
                   || '; access in ' || system || ' removed only ' || CAST(round(max(hours), 1) AS VARCHAR) || ' h later'
            WHEN bool_or(removed IS NULL) THEN 'contract ended; removal still within the grace period'
            ELSE 'every access removed when the contract ended' END AS reason,
       [min(record_id), min(raw_id)] || list(DISTINCT grant_event_id) || list(DISTINCT removal_event_id)
         AS evidence_ids,
       person_id, system, min(account_id) AS account_id, supplier_id, min(due_at) AS contract_end,
       count(*) FILTER (WHERE removed IS NULL) AS still_held,
       string_agg(DISTINCT entitlement, '; ' ORDER BY entitlement) FILTER (WHERE removed IS NULL) AS held_entitlements
FROM acc
GROUP BY supplier_id, person_id, system
