-- Population: human accounts with account-level access open at $as_of.
WITH enabled AS (
  SELECT system, account_id, min(granted_at) AS granted_at, bool_and(start_known) AS start_known,
         min(grant_event_id) AS grant_event_id
  FROM access_intervals
  WHERE entitlement_type = 'account'
    AND (granted_at IS NULL OR granted_at <= CAST($as_of AS TIMESTAMPTZ))
    AND (removed_at IS NULL OR removed_at > CAST($as_of AS TIMESTAMPTZ))
  GROUP BY system, account_id
), used AS (
  SELECT system, account_id, time AS last_used, event_id FROM (
    SELECT system, account_id, time, event_id,
           row_number() OVER (PARTITION BY system, account_id ORDER BY time DESC, event_id) AS rn
    FROM ctl_activity WHERE time <= CAST($as_of AS TIMESTAMPTZ)
  ) x WHERE rn = 1
)
SELECT 'account:' || a.system || ':' || a.account_id AS resource,
       CASE WHEN u.last_used >= CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'ok'
            WHEN e.granted_at > CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'ok'
            WHEN u.last_used IS NOT NULL THEN 'alarm'
            WHEN CAST($period_start AS TIMESTAMPTZ)
                 <= CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day' THEN 'alarm'
            ELSE 'skip' END AS status,
       CASE WHEN u.last_used >= CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'last used ' || CAST(u.last_used AS VARCHAR)
            WHEN e.granted_at > CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'created ' || CAST(e.granted_at AS VARCHAR) || ', less than '
                   || CAST($dormant_days AS VARCHAR) || ' days ago'
            WHEN u.last_used IS NOT NULL
              THEN coalesce(a.name, a.account_id) || ' not used since ' || CAST(u.last_used AS VARCHAR)
                   || ' (' || CAST(CAST(floor((epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(u.last_used)) / 86400)
                                      AS INTEGER) AS VARCHAR) || ' days)'
            WHEN CAST($period_start AS TIMESTAMPTZ)
                 <= CAST($as_of AS TIMESTAMPTZ) - CAST($dormant_days AS DOUBLE) * INTERVAL '1 day'
              THEN coalesce(a.name, a.account_id) || ' has not been used since the logs begin ('
                   || CAST($period_start AS VARCHAR) || ')'
            ELSE 'no use recorded, and the logs cover less than ' || CAST($dormant_days AS VARCHAR) || ' days'
       END AS reason,
       [u.event_id, e.grant_event_id] AS evidence_ids,
       a.person_id, a.system, a.account_id, a.name AS account_name, u.last_used, e.granted_at
FROM accounts a
JOIN enabled e ON e.system = a.system AND e.account_id = a.account_id
LEFT JOIN used u ON u.system = a.system AND u.account_id = a.account_id
WHERE a.kind = 'human'
