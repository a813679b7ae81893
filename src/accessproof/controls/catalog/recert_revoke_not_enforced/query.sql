-- Population: each access a revoke decision covered (removal_links, recert-revoke).
SELECT 'recert:' || trigger_record_id || ':' || system || ':' || account_id || ':' || entitlement_type || ':'
         || coalesce(entitlement_id, entitlement) AS resource,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE) THEN 'ok'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN 'alarm'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN 'alarm'
            ELSE 'info' END AS status,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE)
              THEN 'removed ' || CAST(latency_hours AS VARCHAR) || ' h after the revoke decision'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
              THEN 'review ' || trigger_record_id || ' decided to revoke ' || entitlement || '; removed only '
                   || CAST(latency_hours AS VARCHAR) || ' h later'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN 'review ' || trigger_record_id || ' decided to revoke ' || entitlement || ' on '
                   || CAST(due_at AS VARCHAR) || '; still held'
            ELSE 'revoke decided; removal still within the grace period' END AS reason,
       [trigger_record_id, trigger_raw_id, grant_event_id, removal_event_id, removal_raw_id] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id,
       trigger_record_id AS record_id, due_at AS decided, removed_at, latency_hours
FROM removal_links
WHERE trigger_kind = 'recert-revoke' AND due_at <= CAST($as_of AS TIMESTAMPTZ)
UNION ALL
SELECT 'recertification:none', 'skip',
       'no recertification (access review) decisions in the data: nothing to enforce',
       CAST([] AS VARCHAR[]), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM wf_current WHERE kind = 'recertification_decision')
