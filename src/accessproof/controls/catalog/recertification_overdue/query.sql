-- Population: non-account accesses of people open at $as_of. A recertification decision covers an access
-- when it is about the same person and its scope names the entitlement (linking's scope rules).
WITH rec AS (
  SELECT w.raw_id, w.record_id, s.person_id, coalesce(w.decided, w.opened) AS decided, w.decision
  FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
  WHERE w.kind = 'recertification_decision' AND s.person_id IS NOT NULL
), held AS (
  SELECT i.* FROM access_intervals i
  WHERE i.person_id IS NOT NULL AND i.entitlement_type <> 'account'
    AND (i.granted_at IS NULL OR i.granted_at <= CAST($as_of AS TIMESTAMPTZ))
    AND (i.removed_at IS NULL OR i.removed_at > CAST($as_of AS TIMESTAMPTZ))
), last_review AS (
  SELECT h.system, h.account_id, h.entitlement_type, h.entitlement_key, max(r.decided) AS reviewed,
         max(r.record_id) AS record_id
  FROM held h
  JOIN rec r ON r.person_id = h.person_id
  JOIN wf_scope_targets t ON t.raw_id = r.raw_id
  WHERE h.system LIKE t.systems AND (t.etype IS NULL OR t.etype = h.entitlement_type)
    AND (t.ent IS NULL OR t.ent = lower(h.entitlement) OR t.ent = lower(h.entitlement_id)
         OR t.ent = lower(reverse(split_part(reverse(h.entitlement), '/', 1))))
    AND r.decided <= CAST($as_of AS TIMESTAMPTZ)
  GROUP BY h.system, h.account_id, h.entitlement_type, h.entitlement_key
)
SELECT 'access:' || h.system || ':' || h.account_id || ':' || h.entitlement_type || ':' || h.entitlement_key
         AS resource,
       CASE WHEN l.reviewed >= CAST($as_of AS TIMESTAMPTZ) - CAST($review_interval_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'ok'
            WHEN h.granted_at > CAST($as_of AS TIMESTAMPTZ) - CAST($review_interval_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'ok'
            ELSE 'alarm' END AS status,
       CASE WHEN l.reviewed >= CAST($as_of AS TIMESTAMPTZ) - CAST($review_interval_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'recertified ' || CAST(l.reviewed AS VARCHAR) || ' (' || l.record_id || ')'
            WHEN h.granted_at > CAST($as_of AS TIMESTAMPTZ) - CAST($review_interval_days AS DOUBLE) * INTERVAL '1 day'
              THEN 'granted ' || CAST(h.granted_at AS VARCHAR) || ', first review not yet due'
            WHEN l.reviewed IS NOT NULL
              THEN 'last recertified ' || CAST(l.reviewed AS VARCHAR) || ', more than '
                   || CAST($review_interval_days AS VARCHAR) || ' days ago'
            ELSE 'held since ' || coalesce(CAST(h.granted_at AS VARCHAR), 'before the logs')
                 || ' and never recertified' END AS reason,
       [h.grant_event_id, h.grant_raw_id, l.record_id] AS evidence_ids,
       h.person_id, h.system, h.account_id, h.entitlement_type, h.entitlement, h.entitlement_id, h.granted_at,
       l.reviewed AS last_reviewed
FROM held h
LEFT JOIN last_review l ON l.system = h.system AND l.account_id = h.account_id
  AND l.entitlement_type = h.entitlement_type AND l.entitlement_key = h.entitlement_key
WHERE EXISTS (SELECT 1 FROM wf_current WHERE kind = 'recertification_decision')
UNION ALL
SELECT 'recertification:none', 'skip',
       'no recertification (access review) decisions in the data: the review cannot be tested',
       CAST([] AS VARCHAR[]), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM wf_current WHERE kind = 'recertification_decision')
