-- Population: human accounts that acted (ctl_activity) with a source address, in the period up to $as_of.
WITH day_ips AS (
  SELECT system, account_id, CAST(time AS DATE) AS day, count(DISTINCT src_ip) AS ips, min(event_id) AS event_id
  FROM ctl_activity
  WHERE src_ip IS NOT NULL AND time <= CAST($as_of AS TIMESTAMPTZ)
  GROUP BY system, account_id, CAST(time AS DATE)
), per AS (
  SELECT system, account_id, max(ips) AS max_ips,
         count(*) FILTER (WHERE ips >= CAST($min_ips_per_day AS INTEGER)) AS busy_days,
         count(*) AS active_days,
         list(event_id ORDER BY ips DESC, day) AS ids
  FROM day_ips GROUP BY system, account_id
)
SELECT 'account:' || a.system || ':' || a.account_id AS resource,
       CASE WHEN p.busy_days >= CAST($min_days AS INTEGER) THEN 'alarm' ELSE 'ok' END AS status,
       CASE WHEN p.busy_days >= CAST($min_days AS INTEGER)
              THEN coalesce(a.name, a.account_id) || ' acted from ' || CAST(p.max_ips AS VARCHAR)
                   || ' addresses on one day, and from ' || CAST($min_ips_per_day AS VARCHAR) || ' or more on '
                   || CAST(p.busy_days AS VARCHAR) || ' of ' || CAST(p.active_days AS VARCHAR) || ' active days'
            ELSE 'at most ' || CAST(p.max_ips AS VARCHAR) || ' addresses a day' END AS reason,
       p.ids[1:10] AS evidence_ids,
       a.person_id, a.system, a.account_id, a.name AS account_name, a.status AS identity_status, p.max_ips,
       p.busy_days, p.active_days
FROM accounts a JOIN per p ON p.system = a.system AND p.account_id = a.account_id
WHERE a.kind = 'human'
