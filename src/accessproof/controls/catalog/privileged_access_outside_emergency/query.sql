-- Population: grants of privileged entitlements (policy) and privilege elevations.
-- Emergency records: governance records linked to the grant (any state) or cited by it whose scope or
-- attributes contain one of the policy's emergency markers (policy_settings emergency_marker).
WITH priv AS (
  SELECT e.event_id, e.raw_id, e.time, e.system, e.account_id, e.person_id, e.entitlement_type,
         e.entitlement_key, coalesce(e.entitlement_name, e.entitlement_id) AS entitlement, e.entitlement_id,
         p.entry_id
  FROM access_events e
  JOIN ctl_entitlement_policy p ON p.system = e.system AND p.entitlement_type = e.entitlement_type
    AND p.entitlement_key = e.entitlement_key AND p.privileged
  WHERE e.direction = 'grant'
  UNION ALL
  SELECT e.event_id, e.raw_id, e.time, e.system, e.account_id, e.person_id, e.entitlement_type,
         e.entitlement_key, coalesce(e.entitlement_name, e.entitlement_id), e.entitlement_id, NULL
  FROM access_events e
  WHERE e.action = 'privilege.elevate'
    AND NOT EXISTS (SELECT 1 FROM ctl_entitlement_policy p WHERE p.system = e.system
                    AND p.entitlement_type = e.entitlement_type AND p.entitlement_key = e.entitlement_key)
), markers AS (
  SELECT value AS marker FROM policy_settings WHERE key = 'emergency_marker'
), max_h AS (
  SELECT coalesce(max(CAST(value AS DOUBLE)), 24) AS hours FROM policy_settings WHERE key = 'emergency_max_hours'
), recs AS (
  SELECT l.event_id, l.event_raw_id, l.record_id, l.record_raw_id, l.justified FROM links l WHERE l.role = 'request'
  UNION ALL
  SELECT f.event_id, f.raw_id, w.record_id, w.raw_id, false
  FROM event_refs f JOIN wf_current w ON upper(w.record_id) = f.ref
), emerg AS (
  SELECT r.event_id, r.event_raw_id, min(r.record_id) AS record_id, min(r.record_raw_id) AS record_raw_id
  FROM recs r JOIN wf_current w ON w.raw_id = r.record_raw_id
  JOIN markers m ON strpos(lower(coalesce(w.scope, '') || ' ' || coalesce(w.attributes_json, '')), m.marker) > 0
  GROUP BY r.event_id, r.event_raw_id
), std AS (
  SELECT event_id, event_raw_id, min(record_id) AS record_id, min(record_raw_id) AS record_raw_id
  FROM links WHERE role = 'request' AND justified GROUP BY event_id, event_raw_id
), held AS (
  SELECT grant_event_id, grant_raw_id, max(removed_at) AS removed_at FROM access_intervals
  WHERE grant_event_id IS NOT NULL GROUP BY grant_event_id, grant_raw_id
), g AS (
  SELECT p.*, s.record_id AS std_record, s.record_raw_id AS std_raw, x.record_id AS emergency_record,
         x.record_raw_id AS emergency_raw, h.removed_at,
         (epoch(coalesce(least(h.removed_at, CAST($as_of AS TIMESTAMPTZ)), CAST($as_of AS TIMESTAMPTZ)))
          - epoch(p.time)) / 3600.0 AS held_hours,
         (SELECT hours FROM max_h) AS max_hours
  FROM priv p
  LEFT JOIN std s ON s.event_id = p.event_id AND s.event_raw_id = p.raw_id
  LEFT JOIN emerg x ON x.event_id = p.event_id AND x.event_raw_id = p.raw_id
  LEFT JOIN held h ON h.grant_event_id = p.event_id AND h.grant_raw_id = p.raw_id
  WHERE p.time IS NULL OR p.time <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'event:' || system || ':' || event_id AS resource,
       CASE WHEN time IS NULL THEN 'skip'
            WHEN emergency_record IS NOT NULL AND held_hours > max_hours THEN 'alarm'
            WHEN emergency_record IS NOT NULL OR std_record IS NOT NULL THEN 'ok'
            ELSE 'alarm' END AS status,
       CASE WHEN time IS NULL THEN 'event has no time'
            WHEN emergency_record IS NOT NULL AND held_hours > max_hours
              THEN 'emergency access under ' || emergency_record || ' held ' || CAST(round(held_hours, 1) AS VARCHAR)
                   || ' h, longer than the ' || CAST(max_hours AS VARCHAR) || ' h the emergency procedure allows'
            WHEN emergency_record IS NOT NULL
              THEN 'emergency access under ' || emergency_record || ', removed within '
                   || CAST(max_hours AS VARCHAR) || ' h'
            WHEN std_record IS NOT NULL THEN 'approved through the standard procedure (' || std_record || ')'
            ELSE 'privileged ' || entitlement_type || ' ' || entitlement
                 || ' granted with neither an approved record nor an emergency record' END AS reason,
       [event_id, raw_id, std_record, std_raw, emergency_record, emergency_raw] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id, entry_id AS policy_entry,
       time AS event_time, emergency_record, std_record AS record_id, removed_at
FROM g
