"""The enforcement side of linking: every event that grants, changes or removes access, with the account it
acts on, the person behind that account (from identity resolution) and the entitlement in one shape.
"""

from __future__ import annotations

from accessproof.identity.resolve import actor_account_sql
from accessproof.linking import sql as S
from accessproof.linking.config import Config
from accessproof.model import Action
from accessproof.store.base import Store

ACCOUNT_ACTIONS = S.in_list([Action.ACCOUNT_CREATE, Action.ACCOUNT_ENABLE, Action.ACCOUNT_DISABLE,
                             Action.ACCOUNT_SUSPEND, Action.ACCOUNT_DELETE])


def build_access_events(store: Store, cfg: Config) -> None:
    """``access_events``: granting and removing events (not failed), one row each, with person and entitlement.

    * ``direction`` is ``grant`` or ``remove``;
    * the account is the target, else the actor (a user creating their own key or token);
    * account lifecycle events have ``entitlement_type = 'account'`` and no entitlement name;
    * ``entitlement_key`` is the entitlement's id, else its name (how intervals are keyed);
    * ``executor_*`` is the acting account and its person (for segregation-of-duties controls).
    """
    actor = actor_account_sql(cfg, "e")
    S.replace_table(store, "access_events", f"""
      SELECT e.event_id, e.raw_id, e.time, e.action, e.vendor_action, e.source, e.source_type,
             CASE WHEN e.action IN {S.GRANTING} THEN 'grant' ELSE 'remove' END AS direction,
             coalesce(e.target_system, e.source) AS system,
             CASE WHEN coalesce(e.target_id, e.target_name) IS NOT NULL THEN coalesce(e.target_id, e.target_name)
                  ELSE {actor} END AS account_id,
             coalesce(e.target_name, CASE WHEN coalesce(e.target_id, e.target_name) IS NULL THEN e.actor_name END)
               AS account_name,
             CASE WHEN e.action IN {ACCOUNT_ACTIONS} THEN 'account' ELSE coalesce(e.entitlement_type, 'other') END
               AS entitlement_type,
             CASE WHEN e.action IN {ACCOUNT_ACTIONS} THEN '*' ELSE coalesce(e.entitlement_id, e.entitlement_name, '?') END
               AS entitlement_key,
             e.entitlement_id, e.entitlement_name,
             lower(reverse(split_part(reverse(coalesce(e.entitlement_name, e.entitlement_id)), '/', 1)))
               AS entitlement_tail,
             e.resource, e.approval_ref, e.actor_name,
             e.source AS executor_system, {actor} AS executor_account, e.actor_type AS executor_type,
             e.attributes_json
      FROM events e
      WHERE (e.action IN {S.GRANTING} OR e.action IN {S.REMOVING}) AND coalesce(e.outcome, '') <> 'failure'
    """)
    S.replace_table(store, "_ae", """
      SELECT x.*, a.person_id, a.kind AS account_kind, a.status AS account_status,
             ex.person_id AS executor_person_id
      FROM access_events x
      LEFT JOIN accounts a ON a.system = x.system AND a.account_id = x.account_id
      LEFT JOIN accounts ex ON ex.system = x.executor_system AND ex.account_id = x.executor_account
    """)
    store.execute("DROP TABLE access_events")
    store.execute("ALTER TABLE _ae RENAME TO access_events")
