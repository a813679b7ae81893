-- Population: (trigger, person, system) for terminations and end dates due by $as_of (removal_links).
-- Alarm: an access was removed, but later than the SLA. Accesses never removed are revocation_missing's.
WITH pol AS (
  SELECT system, entitlement_type, entitlement_id, bool_or(privileged) AS privileged
  FROM ctl_entitlement_policy GROUP BY system, entitlement_type, entitlement_id
), rl AS (
  SELECT r.*, coalesce(p.privileged, false) AS privileged,
         CASE WHEN coalesce(p.privileged, false)
              THEN least(CAST($revocation_sla_hours AS DOUBLE), CAST($privileged_revocation_sla_hours AS DOUBLE))
              ELSE CAST($revocation_sla_hours AS DOUBLE) END AS sla,
         CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END AS removed,
         round((epoch(r.removed_at) - epoch(r.due_at)) / 3600.0, 1) AS hours
  FROM removal_links r
  LEFT JOIN pol p ON p.system = r.system AND p.entitlement_type = r.entitlement_type
    AND p.entitlement_id = r.entitlement_id
  WHERE r.trigger_kind IN ('termination', 'end-date') AND r.due_at <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'trigger:' || trigger_kind || ':' || trigger_record_id || ':' || person_id || ':' || system AS resource,
       CASE WHEN count(removed) = 0 THEN 'skip'
            WHEN bool_or(removed IS NOT NULL AND hours > sla) THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN count(removed) = 0 THEN 'nothing removed yet (see revocation_missing)'
            WHEN bool_or(removed IS NOT NULL AND hours > sla)
              THEN trigger_kind || ' ' || CAST(min(due_at) AS VARCHAR) || ' (' || trigger_record_id
                   || '): ' || CAST(count(*) FILTER (WHERE removed IS NOT NULL AND hours > sla) AS VARCHAR)
                   || ' of ' || CAST(count(*) AS VARCHAR) || ' accesses in ' || system || ' removed after the SLA, '
                   || 'the last ' || CAST(max(hours) FILTER (WHERE removed IS NOT NULL) AS VARCHAR)
                   || ' h after the trigger (SLA ' || CAST(min(sla) AS VARCHAR) || ' h)'
            ELSE 'removed within the SLA (' || CAST(max(hours) FILTER (WHERE removed IS NOT NULL) AS VARCHAR)
                 || ' h)' END AS reason,
       [min(trigger_record_id), min(trigger_raw_id)] || list(DISTINCT removal_event_id) || list(DISTINCT removal_raw_id)
         || list(DISTINCT grant_event_id) AS evidence_ids,
       person_id, system, min(account_id) AS account_id, trigger_kind, trigger_record_id, min(due_at) AS due_at,
       max(removed) AS last_removed_at, max(hours) FILTER (WHERE removed IS NOT NULL) AS max_latency_hours,
       min(sla) AS sla_hours, count(*) AS accesses,
       count(*) FILTER (WHERE removed IS NOT NULL AND hours > sla) AS late_accesses,
       string_agg(DISTINCT entitlement, '; ' ORDER BY entitlement) FILTER (WHERE removed IS NOT NULL AND hours > sla)
         AS late_entitlements
FROM rl
GROUP BY trigger_kind, trigger_record_id, person_id, system
