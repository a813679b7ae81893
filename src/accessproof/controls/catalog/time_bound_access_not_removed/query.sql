-- Population: each access granted by a request with an end date that has come (removal_links, end-date).
SELECT 'end-date:' || trigger_record_id || ':' || system || ':' || account_id || ':' || entitlement_type || ':'
         || coalesce(entitlement_id, entitlement) AS resource,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE) THEN 'ok'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ) THEN 'alarm'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN 'alarm'
            ELSE 'info' END AS status,
       CASE WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
                 AND latency_hours <= CAST($grace_hours AS DOUBLE)
              THEN 'removed ' || CAST(latency_hours AS VARCHAR) || ' h after the end date'
            WHEN removed_at IS NOT NULL AND removed_at <= CAST($as_of AS TIMESTAMPTZ)
              THEN entitlement_type || ' ' || entitlement || ' was to end on ' || CAST(due_at AS VARCHAR)
                   || ' (' || trigger_record_id || ') but was removed ' || CAST(latency_hours AS VARCHAR) || ' h later'
            WHEN (epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(due_at)) / 3600.0 > CAST($grace_hours AS DOUBLE)
              THEN entitlement_type || ' ' || entitlement || ' was to end on ' || CAST(due_at AS VARCHAR)
                   || ' (' || trigger_record_id || ') and is still held'
            ELSE 'end date reached, removal still within the grace period' END AS reason,
       [trigger_record_id, trigger_raw_id, grant_event_id, removal_event_id, removal_raw_id] AS evidence_ids,
       person_id, system, account_id, entitlement_type, entitlement, entitlement_id,
       trigger_record_id AS record_id, due_at AS end_date, removed_at, latency_hours
FROM removal_links
WHERE trigger_kind = 'end-date' AND due_at <= CAST($as_of AS TIMESTAMPTZ)
