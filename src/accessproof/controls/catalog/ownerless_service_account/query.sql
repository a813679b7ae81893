-- Population: service accounts (identity resolution's accounts table, kind service).
WITH reg AS (
  SELECT s.system_prefix, s.account, s.owner, o.person_id, o.people
  FROM policy_service_owners s
  LEFT JOIN ctl_policy_owners o ON o.entry_id = 'service:' || s.system_prefix || ':' || s.account
    AND o.role = 'service_owner'
), acc AS (
  SELECT a.*, r.owner AS policy_owner, r.person_id AS policy_owner_id, r.people AS policy_owner_people
  FROM accounts a
  LEFT JOIN reg r ON a.system LIKE r.system_prefix || '%'
    AND (lower(a.account_id) = r.account OR lower(coalesce(a.name, '')) = r.account)
  WHERE a.kind = 'service'
), ev AS (
  SELECT system, account_id, min(event_id) AS event_id, min(raw_id) AS raw_id FROM access_events
  GROUP BY system, account_id
), used AS (
  SELECT system, account_id, max(event_id) AS event_id FROM ctl_activity
  WHERE time <= CAST($as_of AS TIMESTAMPTZ) GROUP BY system, account_id
), o AS (
  SELECT acc.*, coalesce(acc.owner_person_id, acc.policy_owner_id) AS owner_id,
         coalesce(acc.owner, acc.policy_owner) AS owner_text,
         CASE WHEN acc.owner_person_id IS NOT NULL THEN acc.owner_basis
              WHEN acc.policy_owner_id IS NOT NULL THEN 'access policy' END AS owner_from
  FROM acc
)
SELECT 'account:' || o.system || ':' || o.account_id AS resource,
       CASE WHEN o.owner_id IS NULL THEN 'alarm'
            WHEN p.terminated IS NOT NULL AND p.terminated <= CAST($as_of AS TIMESTAMPTZ) THEN 'alarm'
            ELSE 'ok' END AS status,
       CASE WHEN o.owner_text IS NULL
              THEN coalesce(o.name, o.account_id) || ': no owner tag, register entry or policy owner'
            WHEN o.owner_id IS NULL
              THEN coalesce(o.name, o.account_id) || ': owner ' || o.owner_text || ' names no single current person'
            WHEN p.terminated IS NOT NULL AND p.terminated <= CAST($as_of AS TIMESTAMPTZ)
              THEN coalesce(o.name, o.account_id) || ': owner ' || o.owner_text || ' left on '
                   || CAST(p.terminated AS VARCHAR)
            ELSE 'owned by ' || o.owner_text || ' (' || o.owner_from || ')' END AS reason,
       [ev.event_id, ev.raw_id, u.event_id, p.raw_id] AS evidence_ids,
       o.system, o.account_id, o.name AS account_name, o.kind_basis, o.owner_text AS owner, o.owner_id,
       o.owner_from, o.first_seen, o.last_seen
FROM o LEFT JOIN persons_current p ON p.person_id = o.owner_id
LEFT JOIN ev ON ev.system = o.system AND ev.account_id = o.account_id
LEFT JOIN used u ON u.system = o.system AND u.account_id = o.account_id
