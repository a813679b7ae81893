-- Population: every approving decision (ctl_approvals, decision approved) on a record that can justify access.
-- People are compared when resolved through HR, else the handles are compared as written.
SELECT 'approval:' || a.system || ':' || a.approval_id || ':' || lower(a.approver) AS resource,
       CASE WHEN coalesce(a.approver_person_id = a.requester_person_id,
                          lower(trim(a.approver)) = lower(trim(a.requester)), false) THEN 'alarm'
            WHEN coalesce(a.approver_person_id = a.subject_person_id,
                          lower(trim(a.approver)) = lower(trim(a.subject)), false) THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN coalesce(a.approver_person_id = a.requester_person_id,
                          lower(trim(a.approver)) = lower(trim(a.requester)), false)
              THEN a.approver || ' approved ' || a.request_id || ', which they requested'
                   || CASE WHEN a.requester_person_id <> a.subject_person_id
                           THEN ' on behalf of ' || coalesce(a.subject, '?') ELSE '' END
            WHEN coalesce(a.approver_person_id = a.subject_person_id,
                          lower(trim(a.approver)) = lower(trim(a.subject)), false)
              THEN a.approver || ' approved ' || a.request_id || ', access for themselves'
            ELSE 'approved by ' || a.approver || ', neither requester (' || coalesce(a.requester, '?')
                 || ') nor subject' END AS reason,
       [a.approval_id, a.approval_raw_id, a.request_id, a.request_raw_id] AS evidence_ids,
       a.subject_person_id AS person_id, a.scope, a.request_id AS record_id, a.approval_id, a.request_kind,
       a.approver, a.approver_person_id, a.requester, a.requester_person_id, a.decided
FROM ctl_approvals a
WHERE a.decision = 'approved'
