-- Population: (trigger, person, system) for terminations and end dates due by $as_of (removal_links).
-- Alarm: at $as_of an access the trigger required to go is still held and the SLA has passed.
WITH pol AS (
  SELECT system, entitlement_type, entitlement_id, bool_or(privileged) AS privileged
  FROM ctl_entitlement_policy GROUP BY system, entitlement_type, entitlement_id
), rl AS (
  SELECT r.*,
         CASE WHEN coalesce(p.privileged, false)
              THEN least(CAST($revocation_sla_hours AS DOUBLE), CAST($privileged_revocation_sla_hours AS DOUBLE))
              ELSE CAST($revocation_sla_hours AS DOUBLE) END AS sla,
         CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END AS removed,
         round((epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(r.due_at)) / 3600.0, 1) AS open_hours
  FROM removal_links r
  LEFT JOIN pol p ON p.system = r.system AND p.entitlement_type = r.entitlement_type
    AND p.entitlement_id = r.entitlement_id
  WHERE r.trigger_kind IN ('termination', 'end-date') AND r.due_at <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'trigger:' || trigger_kind || ':' || trigger_record_id || ':' || person_id || ':' || system AS resource,
       CASE WHEN bool_or(removed IS NULL AND open_hours > sla) THEN 'alarm'
            WHEN bool_or(removed IS NULL) THEN 'info'
            ELSE 'ok' END AS status,
       CASE WHEN bool_or(removed IS NULL AND open_hours > sla)
              THEN trigger_kind || ' ' || CAST(min(due_at) AS VARCHAR) || ' (' || trigger_record_id
                   || '): ' || CAST(count(*) FILTER (WHERE removed IS NULL) AS VARCHAR) || ' of '
                   || CAST(count(*) AS VARCHAR) || ' accesses in ' || system || ' still held: '
                   || string_agg(DISTINCT entitlement_type || ' ' || entitlement, '; '
                                ORDER BY entitlement_type || ' ' || entitlement) FILTER (WHERE removed IS NULL)
            WHEN bool_or(removed IS NULL) THEN 'removal pending, still within the SLA'
            ELSE 'every access removed' END AS reason,
       [min(trigger_record_id), min(trigger_raw_id)] || list(DISTINCT grant_event_id)
         || list(DISTINCT removal_event_id) AS evidence_ids,
       person_id, system, min(account_id) AS account_id, trigger_kind, trigger_record_id, min(due_at) AS due_at,
       count(*) AS accesses, count(*) FILTER (WHERE removed IS NULL) AS still_held,
       string_agg(DISTINCT entitlement, '; ' ORDER BY entitlement) FILTER (WHERE removed IS NULL) AS held_entitlements
FROM rl
GROUP BY trigger_kind, trigger_record_id, person_id, system
