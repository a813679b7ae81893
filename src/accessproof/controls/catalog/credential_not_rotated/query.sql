-- Population: credentials (entitlement type credential) active at $as_of, except console passwords.
SELECT 'credential:' || i.system || ':' || i.account_id || ':' || i.entitlement_key AS resource,
       CASE WHEN coalesce(i.granted_at, CAST($period_start AS TIMESTAMPTZ))
                 < CAST($as_of AS TIMESTAMPTZ) - CAST($max_age_days AS DOUBLE) * INTERVAL '1 day' THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN i.granted_at IS NOT NULL
                 AND i.granted_at < CAST($as_of AS TIMESTAMPTZ) - CAST($max_age_days AS DOUBLE) * INTERVAL '1 day'
              THEN i.entitlement || ' ' || coalesce(i.entitlement_id, '') || ' of ' || coalesce(i.account_name, i.account_id)
                   || ' created ' || CAST(i.granted_at AS VARCHAR) || ', not rotated for '
                   || CAST(CAST(floor((epoch(CAST($as_of AS TIMESTAMPTZ)) - epoch(i.granted_at)) / 86400) AS INTEGER)
                           AS VARCHAR) || ' days (max ' || CAST($max_age_days AS VARCHAR) || ')'
            WHEN i.granted_at IS NULL
                 AND CAST($period_start AS TIMESTAMPTZ)
                     < CAST($as_of AS TIMESTAMPTZ) - CAST($max_age_days AS DOUBLE) * INTERVAL '1 day'
              THEN i.entitlement || ' of ' || coalesce(i.account_name, i.account_id)
                   || ' predates the logs and was never rotated in them'
            ELSE 'age within ' || CAST($max_age_days AS VARCHAR) || ' days' END AS reason,
       [i.grant_event_id, i.grant_raw_id] AS evidence_ids,
       i.person_id, i.system, i.account_id, i.account_name, i.entitlement_type, i.entitlement, i.entitlement_id,
       i.granted_at, i.account_kind
FROM access_intervals i
WHERE i.entitlement_type = 'credential' AND lower(coalesce(i.entitlement, '')) <> 'console password'
  AND (i.granted_at IS NULL OR i.granted_at <= CAST($as_of AS TIMESTAMPTZ))
  AND (i.removed_at IS NULL OR i.removed_at > CAST($as_of AS TIMESTAMPTZ))
