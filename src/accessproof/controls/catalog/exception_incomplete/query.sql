-- Population: every exception record. Skip: not approved (it allows nothing).
SELECT 'exception:' || x.system || ':' || x.record_id AS resource,
       CASE WHEN x.approval_state <> 'approved' THEN 'skip'
            WHEN x.expires IS NULL OR nullif(trim(x.owner), '') IS NULL
                 OR nullif(trim(x.compensating_control), '') IS NULL
                 OR x.expires > x.valid_from + CAST($max_exception_days AS DOUBLE) * INTERVAL '1 day' THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN x.approval_state <> 'approved' THEN 'not approved (' || coalesce(x.status, '?') || ')'
            WHEN x.expires IS NULL OR nullif(trim(x.owner), '') IS NULL
                 OR nullif(trim(x.compensating_control), '') IS NULL
                 OR x.expires > x.valid_from + CAST($max_exception_days AS DOUBLE) * INTERVAL '1 day'
              THEN x.record_id || ' lacks: ' || concat_ws(', ',
                     CASE WHEN x.expires IS NULL THEN 'an expiry' END,
                     CASE WHEN nullif(trim(x.owner), '') IS NULL THEN 'an owner' END,
                     CASE WHEN nullif(trim(x.compensating_control), '') IS NULL THEN 'a compensating control' END,
                     CASE WHEN x.expires > x.valid_from + CAST($max_exception_days AS DOUBLE) * INTERVAL '1 day'
                          THEN 'an expiry within ' || CAST($max_exception_days AS VARCHAR) || ' days' END)
            ELSE 'owner ' || x.owner || ', expires ' || CAST(x.expires AS VARCHAR)
                 || ', compensating control recorded' END AS reason,
       [x.record_id, x.raw_id] AS evidence_ids,
       x.person_id, x.scope, x.record_id AS exception_id, x.owner, x.valid_from, x.expires,
       x.compensating_control
FROM ctl_exceptions x
