-- Population: (person, conflict) for everyone who held either entitlement of a policy conflict.
WITH iv AS (
  SELECT i.person_id, i.system, i.account_id, i.entitlement_type, i.entitlement, i.entitlement_id,
         i.grant_event_id, i.grant_raw_id, p.entry_id,
         coalesce(i.granted_at, CAST($period_start AS TIMESTAMPTZ)) AS g,
         least(coalesce(i.removed_at, CAST($as_of AS TIMESTAMPTZ)), CAST($as_of AS TIMESTAMPTZ)) AS r,
         i.granted_at
  FROM access_intervals i
  JOIN ctl_entitlement_policy p ON p.system = i.system AND p.entitlement_type = i.entitlement_type
    AND p.entitlement_key = i.entitlement_key
  WHERE i.person_id IS NOT NULL AND (i.granted_at IS NULL OR i.granted_at <= CAST($as_of AS TIMESTAMPTZ))
), sides AS (
  SELECT c.conflict_id, c.description, c.entry_a, c.entry_b, v.* FROM policy_conflicts c
  JOIN iv v ON v.entry_id IN (c.entry_a, c.entry_b)
), overlap AS (
  SELECT a.conflict_id, a.person_id, greatest(a.g, b.g) AS since, least(a.r, b.r) AS until,
         CASE WHEN coalesce(a.granted_at, a.g) >= coalesce(b.granted_at, b.g) THEN a.entitlement ELSE b.entitlement END
           AS added, CASE WHEN coalesce(a.granted_at, a.g) >= coalesce(b.granted_at, b.g) THEN a.system ELSE b.system END
           AS added_system,
         CASE WHEN coalesce(a.granted_at, a.g) >= coalesce(b.granted_at, b.g) THEN a.entitlement_type
              ELSE b.entitlement_type END AS added_type,
         CASE WHEN coalesce(a.granted_at, a.g) >= coalesce(b.granted_at, b.g) THEN a.entitlement_id
              ELSE b.entitlement_id END AS added_id,
         a.entitlement AS ent_a, b.entitlement AS ent_b, a.grant_event_id AS ev_a, b.grant_event_id AS ev_b,
         a.grant_raw_id AS raw_a, b.grant_raw_id AS raw_b
  FROM sides a JOIN sides b ON a.conflict_id = b.conflict_id AND a.person_id = b.person_id
    AND a.entry_id = a.entry_a AND b.entry_id = b.entry_b
  WHERE greatest(a.g, b.g) < least(a.r, b.r)
)
SELECT 'person:' || s.person_id || ':' || s.conflict_id AS resource,
       CASE WHEN count(o.conflict_id) > 0 THEN 'alarm' ELSE 'ok' END AS status,
       CASE WHEN count(o.conflict_id) > 0
              THEN s.person_id || ' held ' || max(o.ent_a) || ' and ' || max(o.ent_b) || ' together from '
                   || CAST(min(o.since) AS VARCHAR)
                   || CASE WHEN max(o.until) >= CAST($as_of AS TIMESTAMPTZ) THEN ' (still held)'
                           ELSE ' to ' || CAST(max(o.until) AS VARCHAR) END
                   || ': ' || max(s.description)
            ELSE 'held only one side of ' || s.conflict_id END AS reason,
       list(DISTINCT o.ev_a) || list(DISTINCT o.ev_b) || list(DISTINCT o.raw_a) || list(DISTINCT o.raw_b)
         AS evidence_ids,
       s.person_id, max(o.added_system) AS system, max(o.added_type) AS entitlement_type,
       max(o.added) AS entitlement, max(o.added_id) AS entitlement_id, s.conflict_id,
       min(o.since) AS since, max(o.until) AS until
FROM sides s
LEFT JOIN overlap o ON o.conflict_id = s.conflict_id AND o.person_id = s.person_id
GROUP BY s.person_id, s.conflict_id
