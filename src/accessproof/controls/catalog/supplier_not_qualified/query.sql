-- Population: supplier staff (HR persons with a supplier id) holding any access at $as_of.
WITH held AS (
  SELECT i.person_id, count(*) AS accesses, string_agg(DISTINCT i.system, ', ' ORDER BY i.system) AS systems,
         min(i.grant_event_id) AS some_grant
  FROM access_intervals i
  WHERE (i.granted_at IS NULL OR i.granted_at <= CAST($as_of AS TIMESTAMPTZ))
    AND (i.removed_at IS NULL OR i.removed_at > CAST($as_of AS TIMESTAMPTZ))
  GROUP BY i.person_id
), q AS (SELECT value AS status FROM policy_settings WHERE key = 'qualified_supplier_status')
SELECT 'person:' || p.person_id AS resource,
       CASE WHEN s.supplier_id IS NULL THEN 'alarm'
            WHEN s.qualification NOT IN (SELECT status FROM q) OR s.qualification IS NULL THEN 'alarm'
            WHEN s.next_review IS NOT NULL
                 AND s.next_review + CAST($review_grace_days AS DOUBLE) * INTERVAL '1 day' < CAST($as_of AS TIMESTAMPTZ)
              THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN s.supplier_id IS NULL
              THEN 'supplier ' || p.supplier_id || ' is not in the supplier register; ' || p.person_id
                   || ' holds ' || CAST(h.accesses AS VARCHAR) || ' accesses'
            WHEN s.qualification NOT IN (SELECT status FROM q) OR s.qualification IS NULL
              THEN 'supplier ' || s.supplier_id || ' is ' || coalesce(s.qualification, 'without qualification status')
                   || '; ' || p.person_id || ' holds ' || CAST(h.accesses AS VARCHAR) || ' accesses in ' || h.systems
            WHEN s.next_review IS NOT NULL
                 AND s.next_review + CAST($review_grace_days AS DOUBLE) * INTERVAL '1 day' < CAST($as_of AS TIMESTAMPTZ)
              THEN 'review of supplier ' || s.supplier_id || ' was due on ' || CAST(s.next_review AS VARCHAR)
                   || '; ' || p.person_id || ' still holds ' || CAST(h.accesses AS VARCHAR) || ' accesses in '
                   || h.systems
            ELSE 'supplier ' || s.supplier_id || ' qualified, review due '
                 || coalesce(CAST(s.next_review AS VARCHAR), '(none set)') END AS reason,
       [s.record_id, s.raw_id, p.raw_id, h.some_grant] AS evidence_ids,
       p.person_id, p.supplier_id, s.qualification, s.next_review, s.contract_end, h.accesses, h.systems
FROM persons_current p
JOIN held h ON h.person_id = p.person_id
LEFT JOIN ctl_suppliers s ON s.supplier_id = p.supplier_id
WHERE p.supplier_id IS NOT NULL
