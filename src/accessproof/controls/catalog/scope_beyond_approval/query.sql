-- Population: every successful grant. Alarm: the record it executes approved another entitlement.
WITH justified AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id
  FROM links WHERE role = 'request' AND justified GROUP BY event_id, event_raw_id
), mismatch AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id,
         min(scope) AS approved_scope
  FROM links WHERE role = 'request' AND status = 'scope-mismatch'
  GROUP BY event_id, event_raw_id
)
SELECT 'event:' || e.system || ':' || e.event_id AS resource,
       CASE WHEN e.time IS NULL THEN 'skip'
            WHEN j.event_id IS NULL AND u.reason_code = 'scope-mismatch' THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN e.time IS NULL THEN 'event has no time: it cannot be placed against approvals'
            WHEN j.event_id IS NULL AND u.reason_code = 'scope-mismatch'
              THEN 'granted ' || e.entitlement_type || ' ' || coalesce(e.entitlement_name, e.entitlement_id)
                   || ' but ' || x.record_id || ' approved "' || coalesce(x.approved_scope, '?') || '"'
            WHEN j.event_id IS NOT NULL THEN 'within the scope of ' || j.record_id
            ELSE 'no approved record cited (see access_without_approval)' END AS reason,
       [e.event_id, e.raw_id, x.record_id, x.record_raw_id] AS evidence_ids,
       e.person_id, e.system, e.account_id, e.entitlement_type,
       coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.entitlement_id, e.time AS event_time,
       e.event_id, x.record_id, x.approved_scope
FROM access_events e
LEFT JOIN justified j ON j.event_id = e.event_id AND j.event_raw_id = e.raw_id
LEFT JOIN unlinked_grants u ON u.event_id = e.event_id AND u.event_raw_id = e.raw_id
LEFT JOIN mismatch x ON x.event_id = e.event_id AND x.event_raw_id = e.raw_id
WHERE e.direction = 'grant'
