-- Population: every approving decision × every course the policy requires of approvers
-- (policy_approver_training). No course configured: one row, skip.
WITH req AS (SELECT lower(trim(course)) AS course, course AS course_name FROM policy_approver_training),
dec AS (
  SELECT a.*, q.course, q.course_name FROM ctl_approvals a CROSS JOIN req q WHERE a.decision = 'approved'
),
best AS (
  SELECT d.approval_raw_id, d.approver, d.course,
         max(CASE WHEN t.completed <= d.decided
                   AND d.decided < t.valid_until + CAST($valid_until_grace_hours AS DOUBLE) * INTERVAL '1 hour'
                  THEN t.record_id END) AS valid_record,
         max(CASE WHEN t.completed <= d.decided THEN t.valid_until END) AS last_valid_until,
         max(CASE WHEN t.completed <= d.decided THEN t.record_id END) AS last_record
  FROM dec d LEFT JOIN ctl_training t ON t.person_id = d.approver_person_id AND t.course = d.course
  GROUP BY d.approval_raw_id, d.approver, d.course
)
SELECT 'approval:' || d.system || ':' || d.approval_id || ':' || lower(d.approver) || ':' || d.course AS resource,
       CASE WHEN d.approver_person_id IS NULL THEN 'skip'
            WHEN b.valid_record IS NOT NULL THEN 'ok' ELSE 'alarm' END AS status,
       CASE WHEN d.approver_person_id IS NULL THEN 'approver ' || d.approver || ' matches no person in HR'
            WHEN b.valid_record IS NOT NULL
              THEN d.approver || ' held current ' || d.course_name || ' (' || b.valid_record || ')'
            WHEN b.last_valid_until IS NOT NULL
              THEN d.approver || ' approved ' || d.request_id || ' on ' || CAST(d.decided AS VARCHAR)
                   || ' but their ' || d.course_name || ' training (' || b.last_record || ') was valid only until '
                   || CAST(b.last_valid_until AS VARCHAR)
            ELSE d.approver || ' approved ' || d.request_id || ' with no completed ' || d.course_name
                 || ' training' END AS reason,
       [d.approval_id, d.approval_raw_id, d.request_id, d.request_raw_id, coalesce(b.valid_record, b.last_record)]
         AS evidence_ids,
       d.subject_person_id AS person_id, d.scope, d.request_id AS record_id, d.approval_id, d.approver,
       d.approver_person_id, d.decided, d.course_name AS course, b.last_valid_until
FROM dec d JOIN best b ON b.approval_raw_id = d.approval_raw_id AND b.approver = d.approver AND b.course = d.course
UNION ALL
SELECT 'policy:approver_training', 'skip', 'the access policy requires no approver training',
       CAST([] AS VARCHAR[]), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM policy_approver_training)
