"""Point-in-time access: who held which entitlement, in which system, from when to when.

``access_intervals`` is built set-wise from ``access_events`` (gaps and islands over each account's
entitlement history):

* a grant opens an interval unless one is already open (a repeated grant changes nothing);
* a revoke closes the open interval; a revoke with no earlier grant in the logs closes an interval whose
  start is before the logs (``granted_at`` NULL, ``start_known`` false) — access that existed already;
* account lifecycle: create / enable open the account-level interval (``entitlement_type = 'account'``);
  disable / delete (``access.account_end_actions``) end it and every entitlement interval of the account;
  suspend (``access.account_pause_actions``) ends only the account-level interval;
* removing an entitlement whose type is in ``access.account_entitlement_types`` (GitHub org membership)
  ends every entitlement of the account in that system;
* an account seen in use (``access.observed_accounts``) holds an account-level interval until it is
  disabled or deleted: from before its first sighting (``start_known`` false) when that sighting is not a
  grant to it, else from that grant (a GitHub user joining through ``org.add_member``); where
  activity proves access but not the account (GitHub), the interval also ends at the account's last
  removal when no activity follows it.

Events with no time are left out (they cannot be placed); failed events never count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accessproof.linking import sql as S
from accessproof.linking.config import Config, as_config
from accessproof.store.base import Store

INTERVAL_COLUMNS = ["person_id", "system", "account_id", "account_name", "entitlement_type", "entitlement",
                    "entitlement_id", "granted_at", "removed_at", "start_known", "grant_event_id",
                    "removal_event_id", "grant_raw_id", "removal_raw_id", "removal_action"]


def build_access_intervals(store: Store, config: Config | str | dict | None = None) -> int:
    """(Re)build ``access_intervals`` from ``access_events``; returns the number of intervals."""
    cfg = as_config(config)
    acc = cfg.access
    end_actions = S.in_list(acc.get("account_end_actions") or [])
    pause_actions = S.in_list(acc.get("account_pause_actions") or [])
    account_types = S.in_list(acc.get("account_entitlement_types") or [])
    close_types = S.in_list((acc.get("observed_accounts") or {}).get("close_on_last_removal") or [])
    S.replace_table(store, "_access_ops", f"""
      WITH ev AS (
        SELECT * FROM access_events WHERE time IS NOT NULL AND account_id IS NOT NULL
      ), keys AS (
        SELECT DISTINCT system, account_id, entitlement_type, entitlement_key FROM ev
        UNION SELECT system, account_id, 'account', '*' FROM accounts WHERE first_observed IS NOT NULL
      )
      SELECT system, account_id, entitlement_type, entitlement_key, entitlement_id, entitlement_name,
             time, CASE WHEN direction = 'grant' THEN 1 ELSE -1 END AS op, 0 AS synthetic,
             event_id, raw_id, action
      FROM ev
      WHERE direction = 'grant' OR entitlement_type <> 'account'
         OR action IN {end_actions} OR action IN {pause_actions}
      UNION ALL
      SELECT a.system, a.account_id, 'account', '*', NULL, NULL, a.first_observed, 1, 2, NULL, NULL,
             CASE WHEN f.first_grant <= a.first_observed THEN 'observed-from-grant' ELSE 'observed' END
      FROM accounts a
      LEFT JOIN (SELECT system, account_id, min(time) AS first_grant FROM ev WHERE direction = 'grant'
                 GROUP BY system, account_id) f ON f.system = a.system AND f.account_id = a.account_id
      WHERE a.first_observed IS NOT NULL
      UNION ALL
      SELECT r.system, r.account_id, 'account', '*', NULL, NULL, r.time, -1, 3, r.event_id, r.raw_id, r.action
      FROM (
        SELECT system, account_id, time, event_id, raw_id, action,
               row_number() OVER (PARTITION BY system, account_id ORDER BY time DESC, event_id DESC) AS rn
        FROM ev WHERE direction = 'remove'
      ) r JOIN accounts a ON a.system = r.system AND a.account_id = r.account_id
      WHERE r.rn = 1 AND a.first_observed IS NOT NULL AND a.source_type IN {close_types}
        AND (a.last_acted IS NULL OR a.last_acted <= r.time)
      UNION ALL
      SELECT k.system, k.account_id, k.entitlement_type, k.entitlement_key, NULL, NULL,
             e.time, -1, 1, e.event_id, e.raw_id, e.action
      FROM ev e JOIN keys k ON k.system = e.system AND k.account_id = e.account_id
      WHERE e.direction = 'remove'
        AND NOT (k.entitlement_type = e.entitlement_type AND k.entitlement_key = e.entitlement_key)
        AND (e.action IN {end_actions} OR e.entitlement_type IN {account_types})
    """)
    S.replace_table(store, "_access_marks", """
      WITH o AS (
        SELECT *, lag(op) OVER w AS prev_op, row_number() OVER w AS seq
        FROM _access_ops
        WINDOW w AS (PARTITION BY system, account_id, entitlement_type, entitlement_key
                     ORDER BY time, op DESC, synthetic, event_id)
      )
      SELECT *,
             CASE WHEN op = 1 AND (prev_op IS NULL OR prev_op = -1) THEN 1 ELSE 0 END AS is_start,
             CASE WHEN op = -1 AND prev_op = 1 THEN 1
                  WHEN op = -1 AND prev_op IS NULL AND synthetic = 0 THEN 1 ELSE 0 END AS is_end
      FROM o
    """)
    S.replace_table(store, "_access_islands", """
      SELECT *, sum(is_start) OVER (PARTITION BY system, account_id, entitlement_type, entitlement_key
                                    ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
      FROM _access_marks WHERE is_start = 1 OR is_end = 1
    """)
    S.replace_table(store, "_access_names", """
      SELECT system, account_id, entitlement_type, entitlement_key,
             max(entitlement_id) AS entitlement_id, max(entitlement_name) AS entitlement_name
      FROM _access_ops WHERE synthetic = 0 GROUP BY system, account_id, entitlement_type, entitlement_key
    """)
    S.replace_table(store, "access_intervals", """
      WITH i AS (
        SELECT system, account_id, entitlement_type, entitlement_key, island,
               max(CASE WHEN is_start = 1 AND (synthetic <> 2 OR action = 'observed-from-grant') THEN time END)
                 AS granted_at,
               max(CASE WHEN is_start = 1 THEN time END) AS first_known,
               max(CASE WHEN is_end = 1 THEN time END) AS removed_at,
               max(CASE WHEN is_start = 1 THEN event_id END) AS grant_event_id,
               max(CASE WHEN is_end = 1 THEN event_id END) AS removal_event_id,
               max(CASE WHEN is_start = 1 THEN raw_id END) AS grant_raw_id,
               max(CASE WHEN is_end = 1 THEN raw_id END) AS removal_raw_id,
               max(CASE WHEN is_end = 1 THEN action END) AS removal_action
        FROM _access_islands
        GROUP BY system, account_id, entitlement_type, entitlement_key, island
      )
      SELECT a.person_id, i.system, i.account_id, a.name AS account_name, i.entitlement_type,
             CASE WHEN i.entitlement_type = 'account' THEN coalesce(a.name, i.account_id)
                  ELSE coalesce(n.entitlement_name, n.entitlement_id, i.entitlement_key) END AS entitlement,
             coalesce(n.entitlement_id, i.entitlement_key) AS entitlement_id, i.entitlement_key,
             i.granted_at, i.removed_at, i.granted_at IS NOT NULL AS start_known, i.first_known,
             i.grant_event_id, i.removal_event_id, i.grant_raw_id, i.removal_raw_id, i.removal_action,
             a.kind AS account_kind
      FROM i
      LEFT JOIN _access_names n ON n.system = i.system AND n.account_id = i.account_id
        AND n.entitlement_type = i.entitlement_type AND n.entitlement_key = i.entitlement_key
      LEFT JOIN accounts a ON a.system = i.system AND a.account_id = i.account_id
    """)
    for t in ("_access_ops", "_access_marks", "_access_islands", "_access_names"):
        store.execute(f"DROP TABLE IF EXISTS {t}")
    return S.count(store, "access_intervals")


def access_at(store: Store, t: datetime, person: str | None = None, *, system: str | None = None,
              include_accounts: bool = True) -> list[dict[str, Any]]:
    """Who held what, in which system, at time ``t`` (aware datetime). Filters: person, system."""
    if not S.table_exists(store, "access_intervals"):
        from accessproof.linking.link import link_all

        link_all(store)
    where = ["(granted_at IS NULL OR granted_at <= ?)", "(removed_at IS NULL OR removed_at > ?)"]
    params: list[Any] = [t, t]
    if person:
        where.append("person_id = ?")
        params.append(person)
    if system:
        where.append("(system = ? OR system LIKE ?)")
        params += [system, system + ":%"]
    if not include_accounts:
        where.append("entitlement_type <> 'account'")
    return store.query_dicts(
        f"SELECT {', '.join(INTERVAL_COLUMNS)} FROM access_intervals WHERE {' AND '.join(where)} "
        "ORDER BY person_id NULLS LAST, system, account_id, entitlement_type, entitlement", params)
