-- Population: human accounts (identity resolution's accounts table).
WITH held AS (
  SELECT system, account_id, count(*) AS open_accesses, min(grant_event_id) AS grant_event_id
  FROM access_intervals
  WHERE (granted_at IS NULL OR granted_at <= CAST($as_of AS TIMESTAMPTZ))
    AND (removed_at IS NULL OR removed_at > CAST($as_of AS TIMESTAMPTZ))
  GROUP BY system, account_id
), used AS (
  SELECT system, account_id, max(time) AS last_used, max(event_id) AS event_id
  FROM ctl_activity WHERE time <= CAST($as_of AS TIMESTAMPTZ) AND time >= CAST($period_start AS TIMESTAMPTZ)
  GROUP BY system, account_id
)
SELECT 'account:' || a.system || ':' || a.account_id AS resource,
       CASE WHEN a.status = 'orphan' AND (h.open_accesses IS NOT NULL OR u.last_used IS NOT NULL) THEN 'alarm'
            WHEN a.status IN ('orphan', 'conflict') THEN 'info'
            ELSE 'ok' END AS status,
       CASE WHEN a.status = 'orphan' AND (h.open_accesses IS NOT NULL OR u.last_used IS NOT NULL)
              THEN coalesce(a.name, a.account_id) || ' maps to no person (' || a.reason || ')'
                   || coalesce('; holds ' || CAST(h.open_accesses AS VARCHAR) || ' accesses', '')
                   || coalesce('; last used ' || CAST(u.last_used AS VARCHAR), '')
            WHEN a.status = 'orphan' THEN coalesce(a.name, a.account_id) || ' maps to no person but held no '
                 || 'access and did not act in the period'
            WHEN a.status = 'conflict' THEN 'identity conflict: ' || a.reason
            ELSE a.reason END AS reason,
       [h.grant_event_id, u.event_id] AS evidence_ids,
       a.person_id, a.system, a.account_id, a.name AS account_name, a.status AS identity_status,
       a.basis, h.open_accesses, u.last_used
FROM accounts a
LEFT JOIN held h ON h.system = a.system AND h.account_id = a.account_id
LEFT JOIN used u ON u.system = a.system AND u.account_id = a.account_id
WHERE a.kind = 'human'
