-- Population: each credential (entitlement type credential) a termination or contract end required to go.
WITH rl AS (
  SELECT r.*,
         CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END AS removed,
         (epoch(coalesce(CASE WHEN r.removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN r.removed_at END,
                         CAST($as_of AS TIMESTAMPTZ))) - epoch(r.due_at)) / 3600.0 AS hours,
         CASE WHEN coalesce(p.privileged, false)
              THEN least(CAST($revocation_sla_hours AS DOUBLE), CAST($privileged_revocation_sla_hours AS DOUBLE))
              ELSE CAST($revocation_sla_hours AS DOUBLE) END AS sla
  FROM removal_links r
  LEFT JOIN (SELECT system, entitlement_type, entitlement_id, bool_or(privileged) AS privileged
             FROM ctl_entitlement_policy GROUP BY system, entitlement_type, entitlement_id) p
    ON p.system = r.system AND p.entitlement_type = r.entitlement_type AND p.entitlement_id = r.entitlement_id
  WHERE r.entitlement_type = 'credential' AND r.trigger_kind IN ('termination', 'contract-end')
    AND r.due_at <= CAST($as_of AS TIMESTAMPTZ)
)
SELECT 'credential:' || system || ':' || account_id || ':' || coalesce(entitlement_id, entitlement) || ':'
         || trigger_record_id AS resource,
       CASE WHEN hours > sla THEN 'alarm' WHEN removed IS NULL THEN 'info' ELSE 'ok' END AS status,
       CASE WHEN removed IS NULL AND hours > sla
              THEN entitlement || ' (' || coalesce(entitlement_id, '?') || ') of ' || coalesce(account_name, account_id)
                   || ' still active ' || CAST(round(hours, 1) AS VARCHAR) || ' h after ' || trigger_kind || ' ('
                   || trigger_record_id || ')'
            WHEN hours > sla
              THEN entitlement || ' of ' || coalesce(account_name, account_id) || ' revoked '
                   || CAST(round(hours, 1) AS VARCHAR) || ' h after ' || trigger_kind || ' (SLA '
                   || CAST(sla AS VARCHAR) || ' h)'
            WHEN removed IS NULL THEN 'revocation pending, still within the SLA'
            ELSE 'revoked ' || CAST(round(hours, 1) AS VARCHAR) || ' h after ' || trigger_kind END AS reason,
       [trigger_record_id, trigger_raw_id, grant_event_id, removal_event_id, removal_raw_id] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id, trigger_kind,
       trigger_record_id, due_at, removed AS revoked_at, round(hours, 1) AS hours
FROM rl
