-- Population: each access an approved exception covered, for exceptions expired by $as_of and not renewed
-- (removal_links, exception-expiry). Never suppressed by an exception (exceptable: false).
SELECT 'exception:' || trigger_record_id || ':' || system || ':' || account_id || ':' || entitlement_type || ':'
         || coalesce(entitlement_id, entitlement) AS resource,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE) THEN 'ok'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN 'alarm'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN 'alarm'
            ELSE 'info' END AS status,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE)
              THEN 'removed ' || CAST(latency_hours AS VARCHAR) || ' h after ' || trigger_record_id || ' expired'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
              THEN trigger_record_id || ' expired on ' || CAST(due_at AS VARCHAR) || '; '
                   || entitlement_type || ' ' || entitlement || ' removed only ' || CAST(latency_hours AS VARCHAR)
                   || ' h later'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN trigger_record_id || ' expired on ' || CAST(due_at AS VARCHAR) || '; '
                   || entitlement_type || ' ' || entitlement || ' is still held'
            ELSE 'exception expired; removal still within the grace period' END AS reason,
       [trigger_record_id, trigger_raw_id, grant_event_id, removal_event_id, removal_raw_id] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id,
       trigger_record_id AS exception_id, due_at AS expired_at, removed_at, latency_hours
FROM removal_links
WHERE trigger_kind = 'exception-expiry' AND due_at <= CAST($as_of AS TIMESTAMPTZ)
