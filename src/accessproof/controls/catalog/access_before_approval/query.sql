-- Population: every successful grant. Alarm: the only records linked to it were approved after the grant
-- (granted-before-approval) or are still awaiting approval (approval-pending).
WITH justified AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id
  FROM links WHERE role = 'request' AND justified GROUP BY event_id, event_raw_id
), early AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id,
         min(decision_time) AS decision_time, min(delta_hours) AS delta_hours, min(status) AS link_status
  FROM links WHERE role = 'request' AND status IN ('granted-before-approval', 'approval-pending')
  GROUP BY event_id, event_raw_id
)
SELECT 'event:' || e.system || ':' || e.event_id AS resource,
       CASE WHEN e.time IS NULL THEN 'skip'
            WHEN j.event_id IS NULL AND u.reason_code IN ('granted-before-approval', 'approval-pending')
              THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN e.time IS NULL THEN 'event has no time: it cannot be placed against approvals'
            WHEN j.event_id IS NULL AND u.reason_code = 'granted-before-approval'
              THEN 'granted ' || CAST(round(-x.delta_hours, 1) AS VARCHAR) || ' h before ' || x.record_id
                   || ' was approved (' || CAST(x.decision_time AS VARCHAR) || ')'
            WHEN j.event_id IS NULL AND u.reason_code = 'approval-pending'
              THEN 'granted while ' || x.record_id || ' was still awaiting approval'
            WHEN j.event_id IS NOT NULL THEN 'granted after ' || j.record_id || ' was approved'
            ELSE 'no approval linked (see access_without_approval)' END AS reason,
       [e.event_id, e.raw_id, coalesce(x.record_id, j.record_id), coalesce(x.record_raw_id, j.record_raw_id)]
         AS evidence_ids,
       e.person_id, e.system, e.account_id, e.entitlement_type,
       coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.entitlement_id, e.time AS event_time,
       e.event_id, x.record_id, x.decision_time
FROM access_events e
LEFT JOIN justified j ON j.event_id = e.event_id AND j.event_raw_id = e.raw_id
LEFT JOIN unlinked_grants u ON u.event_id = e.event_id AND u.event_raw_id = e.raw_id
LEFT JOIN early x ON x.event_id = e.event_id AND x.event_raw_id = e.raw_id
WHERE e.direction = 'grant'
