-- Population: every successful grant in the enforcement systems (access_events, direction grant).
-- Alarm: linking found no approved record behind it at all (nothing cited, nothing matching, or the cited
-- record is unknown, or the account maps to no person so no request can be matched).
-- Grants with an approval that is late, rejected or narrower are tested by access_before_approval,
-- access_after_rejection and scope_beyond_approval.
WITH justified AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id,
         min(rule) AS rule
  FROM links WHERE role = 'request' AND justified
  GROUP BY event_id, event_raw_id
)
SELECT 'event:' || e.system || ':' || e.event_id AS resource,
       CASE WHEN e.time IS NULL THEN 'skip'
            WHEN j.event_id IS NOT NULL THEN 'ok'
            WHEN u.reason_code IN ('no-approval-found', 'cited-record-unknown', 'account-unresolved') THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN e.time IS NULL THEN 'event has no time: it cannot be placed against approvals'
            WHEN j.event_id IS NOT NULL THEN 'justified by ' || j.record_id || ' (' || j.rule || ')'
            WHEN u.reason_code IN ('no-approval-found', 'cited-record-unknown', 'account-unresolved')
              THEN e.action || ' of ' || coalesce(e.entitlement_name, e.entitlement_id, e.account_id) || ': '
                   || u.reason
            ELSE 'an approval exists but does not justify it (' || u.reason_code || ')' END AS reason,
       [e.event_id, e.raw_id, j.record_id, j.record_raw_id] AS evidence_ids,
       e.person_id, e.system, e.account_id, e.account_name, e.entitlement_type,
       coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.entitlement_id, e.action,
       e.time AS event_time, e.event_id, e.executor_account, u.cited_refs, u.candidates
FROM access_events e
LEFT JOIN justified j ON j.event_id = e.event_id AND j.event_raw_id = e.raw_id
LEFT JOIN unlinked_grants u ON u.event_id = e.event_id AND u.event_raw_id = e.raw_id
WHERE e.direction = 'grant'
