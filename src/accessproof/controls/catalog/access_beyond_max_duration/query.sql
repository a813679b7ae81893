-- Population: intervals (with a known start) of entitlements whose policy entry sets max_duration_days, and
-- approved requests for them with an end date (a request without one is judged by how long the access is
-- then held).
WITH iv AS (
  SELECT i.*, p.entry_id, p.max_duration_days,
         (epoch(coalesce(least(i.removed_at, CAST($as_of AS TIMESTAMPTZ)), CAST($as_of AS TIMESTAMPTZ)))
          - epoch(i.granted_at)) / 86400.0 AS days
  FROM access_intervals i
  JOIN ctl_entitlement_policy p ON p.system = i.system AND p.entitlement_type = i.entitlement_type
    AND p.entitlement_key = i.entitlement_key
  WHERE p.max_duration_days IS NOT NULL AND i.granted_at IS NOT NULL
    AND i.granted_at <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'access:' || system || ':' || account_id || ':' || entitlement_type || ':' || entitlement_key || ':'
         || CAST(epoch(granted_at) AS VARCHAR) AS resource,
       CASE WHEN days > max_duration_days THEN 'alarm' ELSE 'ok' END AS status,
       CASE WHEN days > max_duration_days
              THEN entitlement_type || ' ' || entitlement || ' held ' || CAST(round(days, 1) AS VARCHAR)
                   || ' days since ' || CAST(granted_at AS VARCHAR)
                   || CASE WHEN removed_at IS NULL OR removed_at > CAST($as_of AS TIMESTAMPTZ) THEN ' (still held)'
                           ELSE '' END
                   || '; policy ' || entry_id || ' allows ' || CAST(max_duration_days AS VARCHAR)
            ELSE 'held ' || CAST(round(days, 1) AS VARCHAR) || ' of at most ' || CAST(max_duration_days AS VARCHAR)
                 || ' days' END AS reason,
       [grant_event_id, grant_raw_id, removal_event_id] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id, entry_id AS policy_entry,
       granted_at, removed_at, round(days, 1) AS days, max_duration_days
FROM iv
UNION ALL
SELECT 'request:' || r.system || ':' || r.record_id,
       CASE WHEN (epoch(r.expires) - epoch(coalesce(r.effective, r.decided, r.opened))) / 86400.0
                 > p.max_duration_days THEN 'alarm' ELSE 'ok' END,
       CASE WHEN (epoch(r.expires) - epoch(coalesce(r.effective, r.decided, r.opened))) / 86400.0 > p.max_duration_days
              THEN r.record_id || ' asks for ' || CAST(round((epoch(r.expires)
                     - epoch(coalesce(r.effective, r.decided, r.opened))) / 86400.0, 1) AS VARCHAR) || ' days; policy '
                   || p.entry_id || ' allows at most ' || CAST(p.max_duration_days AS VARCHAR)
            ELSE 'end date within the policy maximum' END,
       [r.record_id, r.raw_id],
       r.person_id, NULL, NULL, NULL, NULL, NULL, p.entry_id, coalesce(r.effective, r.decided, r.opened), r.expires,
       round((epoch(r.expires) - epoch(coalesce(r.effective, r.decided, r.opened))) / 86400.0, 1), p.max_duration_days
FROM wf_requests r
JOIN ctl_request_policy p ON p.request_raw_id = r.raw_id
WHERE p.max_duration_days IS NOT NULL AND r.expires IS NOT NULL AND r.approval_state = 'approved'
  AND NOT r.is_removal
  AND r.kind IN ('access_request', 'exception')
  AND coalesce(r.decision_time, r.decided, r.opened) <= CAST($as_of AS TIMESTAMPTZ)
