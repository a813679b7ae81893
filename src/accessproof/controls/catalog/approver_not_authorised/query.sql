-- Population: approved access requests. Skip: no policy entry for the requested entitlement, or the
-- subject matches no person. The management chain is HR's current one: HR exports carry no manager
-- history, so when only the manager requirement fails and HR records a transfer of the subject after the
-- decision, the row is skipped (the manager at decision time is unknown), never guessed.
WITH moved AS (
  SELECT s.person_id, min(w.effective) AS first_transfer, max(w.effective) AS last_transfer
  FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
  WHERE w.kind = 'hr_event' AND lower(w.event_type) = 'transfer' AND s.person_id IS NOT NULL
  GROUP BY s.person_id
),
req AS (
  SELECT r.raw_id, r.record_id, r.system, r.scope, r.person_id AS subject_id, w.requester,
         rq.person_id AS requester_id, p.entry_id, pc.supplier_id, s.owner_person_id AS supplier_owner_id,
         CASE WHEN m.last_transfer > coalesce(r.decision_time, r.decided, r.opened) THEN m.last_transfer END
           AS transferred_later
  FROM wf_requests r
  LEFT JOIN moved m ON m.person_id = r.person_id
  JOIN wf_current w ON w.raw_id = r.raw_id
  LEFT JOIN ctl_person_handles rq ON rq.handle = lower(trim(w.requester))
  LEFT JOIN ctl_request_policy p ON p.request_raw_id = r.raw_id
  LEFT JOIN persons_current pc ON pc.person_id = r.person_id
  LEFT JOIN ctl_suppliers s ON s.supplier_id = pc.supplier_id
  WHERE r.kind = 'access_request' AND r.approval_state = 'approved' AND NOT r.is_removal
),
need AS (
  SELECT q.*, pr.requirement, pr.role, o.person_id AS owner_id, o.handle AS owner_handle
  FROM req q
  JOIN policy_approver_roles pr ON pr.entry_id = q.entry_id
  LEFT JOIN ctl_policy_owners o ON o.entry_id = q.entry_id AND o.role = pr.role
),
ok_roles AS (
  SELECT n.raw_id, n.requirement, n.role, min(a.approver) AS approver
  FROM need n
  JOIN ctl_approvals a ON a.request_raw_id = n.raw_id AND a.decision = 'approved'
  WHERE (n.role = 'manager' AND (
           EXISTS (SELECT 1 FROM ctl_manager_chain c WHERE c.person_id = n.subject_id
                   AND c.ancestor_id = a.approver_person_id)
           OR (n.supplier_owner_id IS NOT NULL AND a.approver_person_id = n.supplier_owner_id)))
     OR (n.role IN ('system_owner', 'business_owner') AND (
           a.approver_person_id = n.owner_id
           OR ((n.owner_id = n.subject_id OR n.owner_id = n.requester_id)
               AND EXISTS (SELECT 1 FROM ctl_manager_chain c WHERE c.person_id = n.owner_id
                           AND c.ancestor_id = a.approver_person_id))))
     OR (n.role = 'supplier_owner' AND a.approver_person_id = n.supplier_owner_id)
  GROUP BY n.raw_id, n.requirement, n.role
  UNION ALL
  SELECT raw_id, requirement, role, '(not supplier staff)' FROM need
  WHERE role = 'supplier_owner' AND supplier_id IS NULL
),
verdict AS (
  SELECT n.raw_id, n.requirement, string_agg(DISTINCT n.role, '|' ORDER BY n.role) AS roles,
         max(o.approver) AS satisfied_by
  FROM need n LEFT JOIN ok_roles o ON o.raw_id = n.raw_id AND o.requirement = n.requirement AND o.role = n.role
  GROUP BY n.raw_id, n.requirement
),
appr AS (
  SELECT request_raw_id, string_agg(DISTINCT approver, ', ' ORDER BY approver) AS approvers,
         list(DISTINCT approval_id) AS ids
  FROM ctl_approvals WHERE decision = 'approved' GROUP BY request_raw_id
)
SELECT 'request:' || q.system || ':' || q.record_id AS resource,
       CASE WHEN q.entry_id IS NULL OR q.subject_id IS NULL THEN 'skip'
            WHEN count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL) > 0
                 AND q.transferred_later IS NOT NULL
                 AND count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL AND v.roles <> 'manager') = 0
              THEN 'skip'
            WHEN count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL) > 0 THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN q.entry_id IS NULL THEN 'no access-policy entry covers ' || coalesce(q.scope, '?')
            WHEN q.subject_id IS NULL THEN 'the subject of ' || q.record_id || ' matches no person'
            WHEN count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL) > 0
                 AND q.transferred_later IS NOT NULL
                 AND count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL AND v.roles <> 'manager') = 0
              THEN 'approved by ' || coalesce(max(ap.approvers), 'nobody') || ', not in the current management '
                   || 'chain; the subject transferred on ' || CAST(q.transferred_later AS VARCHAR)
                   || ' and HR exports no manager history'
            WHEN count(v.requirement) FILTER (WHERE v.satisfied_by IS NULL) > 0
              THEN 'policy ' || q.entry_id || ' requires approval by '
                   || string_agg(v.roles, ' and ' ORDER BY v.roles) FILTER (WHERE v.satisfied_by IS NULL)
                   || '; approved by ' || coalesce(max(ap.approvers), 'nobody')
            ELSE 'approved by ' || coalesce(max(ap.approvers), '?') || ' as policy ' || q.entry_id
                 || ' requires' END AS reason,
       [q.record_id, q.raw_id] || coalesce(max(ap.ids), CAST([] AS VARCHAR[])) AS evidence_ids,
       q.subject_id AS person_id, q.scope, q.record_id, q.entry_id AS policy_entry, max(ap.approvers) AS approvers
FROM req q
LEFT JOIN verdict v ON v.raw_id = q.raw_id
LEFT JOIN appr ap ON ap.request_raw_id = q.raw_id
GROUP BY q.raw_id, q.system, q.record_id, q.scope, q.subject_id, q.entry_id, q.transferred_later
