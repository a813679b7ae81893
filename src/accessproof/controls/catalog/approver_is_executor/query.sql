-- Population: grants linked to a governance record with at least one approving decision.
WITH pairs AS (
  SELECT l.event_id, l.event_raw_id, l.event_time, l.system, l.account_id, l.person_id, l.entitlement_type,
         l.entitlement, l.record_id, l.record_raw_id, l.executor_person_id, l.executor_account,
         a.approver, a.approver_person_id, a.approval_id, a.approval_raw_id
  FROM links l
  JOIN ctl_approvals a ON a.request_raw_id = l.record_raw_id AND a.decision = 'approved'
  WHERE l.role = 'request' AND l.direction = 'grant'
)
SELECT 'event:' || system || ':' || event_id AS resource,
       CASE WHEN bool_or(executor_person_id IS NOT NULL AND executor_person_id = approver_person_id) THEN 'alarm'
            WHEN max(executor_person_id) IS NULL AND max(executor_account) IS NULL THEN 'skip'
            ELSE 'ok' END AS status,
       CASE WHEN bool_or(executor_person_id IS NOT NULL AND executor_person_id = approver_person_id)
              THEN 'granted by ' || max(executor_account) || ', the account of '
                   || max(CASE WHEN executor_person_id = approver_person_id THEN approver END)
                   || ' who approved ' || max(record_id)
            WHEN max(executor_person_id) IS NULL AND max(executor_account) IS NULL
              THEN 'the acting account is not recorded'
            ELSE 'granted by ' || max(executor_account) || ', not an approver of ' || max(record_id) END AS reason,
       list(DISTINCT event_id) || list(DISTINCT event_raw_id) || list(DISTINCT record_id)
         || list(DISTINCT approval_id) AS evidence_ids,
       max(person_id) AS person_id, system, event_id, max(account_id) AS account_id, max(entitlement_type) AS entitlement_type,
       max(entitlement) AS entitlement, max(record_id) AS record_id, max(event_time) AS event_time,
       max(executor_account) AS executor_account, max(executor_person_id) AS executor_person_id,
       string_agg(DISTINCT approver, ', ' ORDER BY approver) AS approvers
FROM pairs
GROUP BY system, event_id
