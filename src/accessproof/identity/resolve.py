"""Identity resolution: accounts seen in enforcement events → persons from HR, with the basis of each match.

Set-based, in SQL over the store. Tables built (rebuilt on every run):

* ``person_keys`` — every key a person can be recognised by: employee id, emails (exact, lower-cased,
  plus-tag stripped, domain-aliased forms), HR usernames, IdP-profile usernames.
* ``account_handles`` — every name an account is seen under (id, login, display name, ARN tail).
* ``identity_candidates`` — every (account, person) pair some rule matched, with rule, basis and rank.
* ``accounts`` — one row per (system, account_id): name, kind (human | service), owner (service accounts),
  person_id, basis, confidence, status and a one-line reason.
* ``identity_conflicts`` — accounts matching two or more people: one row per candidate.
* ``workflow_subjects`` — the person each governance record is about (subject → person, same rules;
  approvals inherit their parent's subject).

Rules are tried in the configured order (``identity.rules``); the first rule with any candidate decides.
Two different people from that rule is a conflict and the account stays unresolved; a later rule naming a
different person is reported as ``overridden``.
"""

from __future__ import annotations

from typing import Any

from accessproof.linking import sql as S
from accessproof.linking.config import Config, ConfigError, as_config, read_rows
from accessproof.store.base import Store

ALIAS_COLUMNS = (("system", "VARCHAR"), ("account", "VARCHAR"), ("account_lower", "VARCHAR"),
                 ("person_id", "VARCHAR"), ("owner", "VARCHAR"), ("origin", "VARCHAR"))


# ---------------------------------------------------------------- configuration tables

def load_identity_config(store: Store, cfg: Config) -> None:
    """Load the small configuration tables identity resolution joins against."""
    idc = cfg.identity
    aliases: list[tuple] = []
    for f in idc.get("alias_files") or []:
        p = cfg.path(f)
        for r in read_rows(p, ("system", "account", "person_id", "owner"), ("system", "account")):
            if not (r["person_id"] or r["owner"]):
                raise ConfigError(f"{p}: alias for {r['account']} names neither person_id nor owner")
            aliases.append((r["system"], r["account"], r["account"].lower(), r["person_id"], r["owner"], str(p)))
    for f in (idc.get("service_accounts") or {}).get("register_files") or []:
        p = cfg.path(f)
        for r in read_rows(p, ("system", "account", "owner"), ("system", "account")):
            aliases.append((r["system"], r["account"], r["account"].lower(), None, r["owner"] or "",
                            f"register:{p}"))
    S.load_table(store, "cfg_identity_aliases", ALIAS_COLUMNS, aliases)

    em = idc.get("email") or {}
    S.load_table(store, "cfg_email_domains", (("alias", "VARCHAR"), ("canonical", "VARCHAR")),
                 [(str(a).lower().strip(), str(c).lower().strip())
                  for a, c in (em.get("domain_aliases") or {}).items()])

    profiles: list[tuple] = []
    for f in idc.get("idp_profile_files") or []:
        p = cfg.path(f)
        for r in read_rows(p, ("person", "username", "system"), ("person", "username")):
            profiles.append((r["person"].lower(), r["username"].lower(), r["system"]))
    S.load_table(store, "cfg_idp_profiles", (("person", "VARCHAR"), ("username", "VARCHAR"),
                                             ("system", "VARCHAR")), profiles)

    sa = idc.get("service_accounts") or {}
    S.load_table(store, "cfg_service_patterns", (("pattern", "VARCHAR"),),
                 [(str(p),) for p in sa.get("name_patterns") or []])

    rules = list(idc.get("rules") or [])
    known = {"alias-table", "employee-id", "email", "hr-username", "idp-profile"}
    bad = [r for r in rules if r not in known]
    if bad:
        raise ConfigError(f"identity.rules: unknown rule(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    S.load_table(store, "cfg_identity_rules", (("rule", "VARCHAR"), ("rank", "INTEGER")),
                 [(r, i + 1) for i, r in enumerate(rules)])
    conf = idc.get("confidence") or {}
    S.load_table(store, "cfg_identity_confidence", (("basis", "VARCHAR"), ("confidence", "DOUBLE")),
                 [(str(k), float(v)) for k, v in conf.items()])


def _email_forms(expr: str, cfg: Config) -> tuple[str, str, str]:
    em = cfg.identity.get("email") or {}
    return S.email_stages(expr, lower=bool(em.get("lower_case", True)),
                          strip_plus=bool(em.get("strip_plus_tags", True)))


def _norm_select(table_sql: str, value_col: str, cfg: Config, extra_cols: str) -> str:
    extra_cols = ", ".join("x." + c.strip() for c in extra_cols.split(","))
    """SELECT adding h_exact/h_low/h_plus/h_norm (domain aliases applied) to rows of ``table_sql``."""
    exact, low, plus = _email_forms(value_col, cfg)
    return f"""
      SELECT {extra_cols}, x.h_exact, x.h_low, x.h_plus,
             CASE WHEN x.h_plus LIKE '%_@_%'
                  THEN {S.local_of('x.h_plus')} || '@' || coalesce(d.canonical, {S.domain_of('x.h_plus')})
             END AS h_norm
      FROM (SELECT *, {exact} AS h_exact, {low} AS h_low, {plus} AS h_plus FROM ({table_sql}) src) x
      LEFT JOIN cfg_email_domains d ON d.alias = {S.domain_of('x.h_plus')}
    """


# ---------------------------------------------------------------- person keys

def build_person_keys(store: Store, cfg: Config) -> None:
    S.replace_table(store, "persons_current", """
      SELECT person_id, max(display_name) AS display_name, max(email) AS email,
             max(worker_type) AS worker_type, max(supplier_id) AS supplier_id, max(manager_id) AS manager_id,
             max(business_unit) AS business_unit, max(title) AS title, min(hired) AS hired,
             max(terminated) AS terminated, max(system) AS system, min(raw_id) AS raw_id
      FROM persons WHERE person_id IS NOT NULL GROUP BY person_id
    """)
    values = f"""
      SELECT person_id, 'employee-id' AS kind, person_id AS v, CAST(NULL AS VARCHAR) AS system FROM persons_current
      UNION ALL SELECT person_id, 'email', email, NULL FROM persons WHERE email IS NOT NULL
      UNION ALL SELECT person_id, 'email', e, NULL
        FROM (SELECT person_id, {S.json_list('emails_json')} AS e FROM persons WHERE emails_json IS NOT NULL) j
      UNION ALL SELECT person_id, 'username', u, NULL
        FROM (SELECT person_id, {S.json_list('usernames_json')} AS u FROM persons WHERE usernames_json IS NOT NULL) j
      UNION ALL SELECT p.person_id, 'idp-profile', f.username, f.system
        FROM cfg_idp_profiles f JOIN persons_current p
          ON f.person = lower(p.person_id) OR f.person = lower(p.email)
    """
    S.replace_table(store, "person_keys", f"""
      SELECT DISTINCT person_id, kind, v AS key, system, h_exact AS k_exact, h_low AS k_low, h_plus AS k_plus,
             h_norm AS k_norm
      FROM ({_norm_select(values, 'v', cfg, 'person_id, kind, v, system')}) n
      WHERE v IS NOT NULL AND trim(v) <> ''
    """)


# ---------------------------------------------------------------- accounts seen in events

def actor_account_sql(cfg: Config, alias: str = "") -> str:
    """SQL naming the account of an event's actor (per source type: its id or its name).

    A CloudTrail role session run by automation is the role itself (``assumed-role/<role>/<session>``).
    """
    a = f"{alias}." if alias else ""
    by_name = [k for k, v in (cfg.identity.get("actor_account") or {}).items() if str(v) == "name"]
    return f"""(CASE
      WHEN {a}source_type = 'cloudtrail' AND {a}actor_type = 'service'
           AND {a}actor_id LIKE 'arn:aws:sts::%:assumed-role/%' THEN split_part({a}actor_id, '/', 2)
      WHEN {a}source_type IN {S.in_list(by_name)} THEN coalesce({a}actor_name, {a}actor_id)
      ELSE coalesce({a}actor_id, {a}actor_name) END)"""


def build_account_observations(store: Store, cfg: Config) -> None:
    idc = cfg.identity
    sa = idc.get("service_accounts") or {}
    owner_paths = [p for p in sa.get("owner_attributes") or []]
    owner_expr = "CAST(NULL AS VARCHAR)"
    if owner_paths:
        owner_expr = ("CASE WHEN attributes_json LIKE '%wner%' THEN coalesce("
                      + ", ".join(S.json_text("attributes_json", p) for p in owner_paths) + ") END")
    handle_paths = list(idc.get("actor_handle_attributes") or [])
    handle_expr = "CAST(NULL AS VARCHAR)"
    if handle_paths:
        likes = " OR ".join(f"attributes_json LIKE '%{p.split('.')[-1]}%'" for p in handle_paths)
        handle_expr = (f"CASE WHEN {likes} THEN coalesce("
                       + ", ".join(S.json_text("attributes_json", p) for p in handle_paths) + ") END")
    svc_types = S.in_list(sa.get("actor_types") or [])
    target_types = S.in_list(sa.get("target_types") or [])
    actor = actor_account_sql(cfg)
    obs = cfg.access.get("observed_accounts") or {}
    tgt_types = S.in_list(obs.get("target_source_types") or [])
    act_types = S.in_list(obs.get("actor_source_types") or [])
    act_like = " OR ".join(f"actor_id LIKE '{str(p).replace(chr(39), '')}'" for p in obs.get("actor_id_like") or [])
    S.replace_table(store, "account_observations", f"""
      SELECT system, account_id, name, handle, source_type, role,
             bool_or(service_hint) AS service_hint, max(owner_attr) AS owner_attr,
             count(*) AS events, min(time) AS first_seen, max(time) AS last_seen,
             min(CASE WHEN in_directory THEN time END) AS first_observed
      FROM (
        SELECT coalesce(target_system, source) AS system, coalesce(target_id, target_name) AS account_id,
               target_name AS name, CAST(NULL AS VARCHAR) AS handle, source_type, 'target' AS role,
               (attributes_json LIKE '%"target_type"%'
                AND {S.json_text('attributes_json', 'target_type')} IN {target_types}) AS service_hint,
               {owner_expr} AS owner_attr, time,
               source_type IN {tgt_types} AND coalesce(outcome, '') <> 'failure' AND action <> 'other'
                 AS in_directory
        FROM events WHERE coalesce(target_id, target_name) IS NOT NULL
        UNION ALL
        SELECT source, {actor}, actor_name, {handle_expr}, source_type, 'actor',
               coalesce(actor_type IN {svc_types}, false), CAST(NULL AS VARCHAR), time,
               source_type IN {act_types}{(' OR ' + act_like) if act_like else ''} AS in_directory
        FROM events WHERE coalesce(actor_id, actor_name) IS NOT NULL
      ) o
      GROUP BY system, account_id, name, handle, source_type, role
    """)
    by_src = idc.get("username_basis_by_source_type") or {}
    basis_case = "CASE " + " ".join(
        f"WHEN source_type = '{k}' THEN '{v}'" for k, v in by_src.items() if "'" not in k + str(v)
    ) + " ELSE 'hr-username' END" if by_src else "'hr-username'"
    handles = """
      SELECT system, account_id, account_id AS handle, 'id' AS handle_kind, source_type FROM account_observations
      UNION SELECT system, account_id, name, 'name', source_type FROM account_observations WHERE name IS NOT NULL
      UNION SELECT system, account_id, handle, 'attribute', source_type FROM account_observations
        WHERE handle IS NOT NULL
    """
    with_tail = f"""
      SELECT * FROM ({handles}) h
      UNION SELECT system, account_id, reverse(split_part(reverse(handle), '/', 1)), 'arn-tail', source_type
        FROM ({handles}) h2 WHERE handle LIKE 'arn:%/%'
    """
    S.replace_table(store, "account_handles", f"""
      SELECT n.*, {basis_case} AS username_basis
      FROM ({_norm_select(with_tail, 'handle', cfg,
                          'system, account_id, handle, handle_kind, source_type')}) n
      WHERE handle IS NOT NULL AND trim(handle) <> ''
    """)


# ---------------------------------------------------------------- candidates

def _candidates_sql(handles: str, *, with_alias: bool, username_basis: str = "'hr-username'") -> str:
    """Every (system, account_id, person_id) a rule matches for the handles in table ``handles``."""
    parts = []
    if with_alias:
        parts.append(f"""
          SELECT h.system, h.account_id, a.person_id, 'alias-table' AS rule, 'alias-table' AS basis, h.handle
          FROM {handles} h JOIN cfg_identity_aliases a
            ON a.account_lower = h.h_low AND (a.system = '*' OR h.system = a.system
                                              OR h.system LIKE replace(a.system, '*', '%'))
          WHERE a.person_id IS NOT NULL""")
    parts.append(f"""
      SELECT h.system, h.account_id, k.person_id, 'employee-id' AS rule, 'employee-id' AS basis, h.handle
      FROM {handles} h JOIN person_keys k ON k.kind = 'employee-id' AND k.k_low = h.h_low""")
    parts.append(f"""
      SELECT h.system, h.account_id, k.person_id, 'email' AS rule,
             CASE WHEN h.h_exact = k.k_exact THEN 'email:exact'
                  WHEN h.h_low = k.k_low THEN 'email:case-normalised'
                  WHEN h.h_plus = k.k_plus THEN 'email:plus-tag-stripped'
                  ELSE 'email:domain-alias' END AS basis, h.handle
      FROM {handles} h JOIN person_keys k ON k.kind = 'email' AND k.k_norm = h.h_norm
      WHERE h.h_norm IS NOT NULL""")
    parts.append(f"""
      SELECT h.system, h.account_id, k.person_id, 'hr-username' AS rule, {username_basis} AS basis, h.handle
      FROM {handles} h JOIN person_keys k ON k.kind = 'username' AND k.k_low = h.h_low""")
    parts.append(f"""
      SELECT h.system, h.account_id, k.person_id, 'idp-profile' AS rule, 'idp-profile' AS basis, h.handle
      FROM {handles} h JOIN person_keys k ON k.kind = 'idp-profile' AND k.k_low = h.h_low
        AND (k.system IS NULL OR h.system = k.system OR h.system LIKE replace(k.system, '*', '%'))""")
    body = " UNION ".join(parts)
    return f"""
      SELECT c.system, c.account_id, c.person_id, c.rule, c.basis, c.handle, r.rank,
             coalesce(f.confidence, fr.confidence, 0.5) AS confidence
      FROM ({body}) c
      JOIN cfg_identity_rules r ON r.rule = c.rule
      LEFT JOIN cfg_identity_confidence f ON f.basis = c.basis
      LEFT JOIN cfg_identity_confidence fr ON fr.basis = c.rule
    """


def _decide_sql(candidates: str) -> str:
    """Per (system, account_id): the deciding rank, how many people it names, the best basis."""
    return f"""
      WITH best AS (SELECT system, account_id, min(rank) AS rank FROM {candidates} c GROUP BY system, account_id),
      win AS (
        SELECT c.* FROM {candidates} c JOIN best b
          ON b.system = c.system AND b.account_id = c.account_id AND b.rank = c.rank
      ),
      agg AS (
        SELECT system, account_id, count(DISTINCT person_id) AS people, min(person_id) AS person_id
        FROM win GROUP BY system, account_id
      ),
      pick AS (
        SELECT system, account_id, rule, basis, confidence, handle,
               row_number() OVER (PARTITION BY system, account_id ORDER BY confidence DESC, basis, handle) AS rn
        FROM win
      )
      SELECT a.system, a.account_id, a.people, a.person_id, p.rule, p.basis, p.confidence, p.handle
      FROM agg a JOIN pick p ON p.system = a.system AND p.account_id = a.account_id AND p.rn = 1
    """


# ---------------------------------------------------------------- accounts

def build_accounts(store: Store, cfg: Config) -> None:
    S.replace_table(store, "identity_candidates",
                    _candidates_sql("account_handles", with_alias=True, username_basis="h.username_basis"))
    S.replace_table(store, "_identity_decision", _decide_sql("identity_candidates"))

    # owner text → person (same rules as subjects, without the alias table)
    S.replace_table(store, "_account_base", """
      WITH o AS (
        SELECT system, account_id, name, source_type, service_hint, owner_attr, events, first_seen, last_seen,
               row_number() OVER (PARTITION BY system, account_id
                                  ORDER BY CASE WHEN name IS NULL THEN 1 ELSE 0 END,
                                           CASE WHEN role = 'target' THEN 0 ELSE 1 END,
                                           last_seen DESC NULLS LAST, name) AS rn
        FROM account_observations
      ), own AS (
        SELECT system, account_id, owner_attr,
               row_number() OVER (PARTITION BY system, account_id ORDER BY last_seen DESC NULLS LAST) AS rn
        FROM account_observations WHERE owner_attr IS NOT NULL AND owner_attr <> ''
      ), agg AS (
        SELECT system, account_id, bool_or(service_hint) AS service_hint, sum(events) AS events,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen, min(first_observed) AS first_observed,
               max(CASE WHEN role = 'actor' THEN last_seen END) AS last_acted
        FROM account_observations GROUP BY system, account_id
      ), pat AS (
        SELECT DISTINCT o.system, o.account_id FROM o JOIN cfg_service_patterns p
          ON regexp_matches(lower(o.account_id), p.pattern) OR regexp_matches(lower(coalesce(o.name, '')), p.pattern)
        WHERE o.rn = 1
      ), reg AS (
        SELECT h.system, h.account_id, max(a.person_id) AS alias_person, max(a.owner) AS reg_owner,
               max(CASE WHEN a.origin LIKE 'register:%' THEN 'register' ELSE 'alias-table' END) AS reg_basis
        FROM account_handles h JOIN cfg_identity_aliases a
          ON a.account_lower = h.h_low AND (a.system = '*' OR h.system = a.system
                                            OR h.system LIKE replace(a.system, '*', '%'))
        GROUP BY h.system, h.account_id
      )
      SELECT o.system, o.account_id, o.name, o.source_type, g.events, g.first_seen, g.last_seen, g.first_observed,
             g.last_acted,
             CASE WHEN r.alias_person IS NOT NULL THEN 'human'
                  WHEN g.service_hint OR p.account_id IS NOT NULL OR r.reg_owner IS NOT NULL THEN 'service'
                  ELSE 'human' END AS kind,
             CASE WHEN r.alias_person IS NOT NULL THEN 'alias-table'
                  WHEN r.reg_owner IS NOT NULL THEN r.reg_basis
                  WHEN g.service_hint THEN 'actor-or-target-type'
                  WHEN p.account_id IS NOT NULL THEN 'name-pattern' END AS kind_basis,
             coalesce(nullif(r.reg_owner, ''), w.owner_attr) AS owner,
             CASE WHEN nullif(r.reg_owner, '') IS NOT NULL THEN r.reg_basis
                  WHEN w.owner_attr IS NOT NULL THEN 'owner-attribute' END AS owner_basis
      FROM o JOIN agg g ON g.system = o.system AND g.account_id = o.account_id
      LEFT JOIN pat p ON p.system = o.system AND p.account_id = o.account_id
      LEFT JOIN reg r ON r.system = o.system AND r.account_id = o.account_id
      LEFT JOIN own w ON w.system = o.system AND w.account_id = o.account_id AND w.rn = 1
      WHERE o.rn = 1
    """)
    owners = """SELECT DISTINCT system, owner AS account_id, owner AS handle FROM _account_base
                WHERE owner IS NOT NULL"""
    S.replace_table(store, "_owner_handles", _norm_select(owners, "handle", cfg,
                                                          "system, account_id, handle"))
    S.replace_table(store, "_owner_decision",
                    _decide_sql(f"({_candidates_sql('_owner_handles', with_alias=False)})"))

    S.replace_table(store, "accounts", """
      SELECT b.system, b.account_id, b.name, b.kind, b.kind_basis, b.owner, b.owner_basis,
             od.person_id AS owner_person_id,
             CASE WHEN b.kind = 'human' AND d.people = 1 THEN d.person_id END AS person_id,
             CASE WHEN b.kind = 'human' AND d.people = 1 THEN d.basis
                  WHEN b.kind = 'human' AND d.people > 1 THEN 'conflict' END AS basis,
             CASE WHEN b.kind = 'human' AND d.people = 1 THEN d.confidence END AS confidence,
             CASE WHEN b.kind = 'human' AND d.people = 1 THEN d.handle END AS matched_handle,
             CASE
               WHEN b.kind = 'human' AND d.people = 1 THEN 'resolved'
               WHEN b.kind = 'human' AND d.people > 1 THEN 'conflict'
               WHEN b.kind = 'human' THEN 'orphan'
               WHEN b.owner IS NULL THEN 'ownerless'
               WHEN od.people IS NULL OR od.people <> 1 THEN 'owner-unresolved'
               WHEN po.terminated IS NOT NULL AND po.terminated <= current_timestamp THEN 'owner-terminated'
               ELSE 'owned' END AS status,
             CASE
               WHEN b.kind = 'human' AND d.people = 1 THEN 'matched by ' || d.basis || ' on ' || d.handle
               WHEN b.kind = 'human' AND d.people > 1 THEN
                 'rule ' || d.rule || ' matches ' || CAST(d.people AS VARCHAR) || ' people'
               WHEN b.kind = 'human' THEN 'no rule matched any of its names'
               WHEN b.owner IS NULL THEN 'service account (' || b.kind_basis || ') with no owner tag or register entry'
               WHEN od.people IS NULL THEN 'owner ' || b.owner || ' matches no person'
               WHEN od.people > 1 THEN 'owner ' || b.owner || ' matches several people'
               WHEN po.terminated IS NOT NULL AND po.terminated <= current_timestamp THEN
                 'owner ' || b.owner || ' left on ' || CAST(CAST(po.terminated AS DATE) AS VARCHAR)
               ELSE 'owned by ' || b.owner || ' (' || b.owner_basis || ')' END AS reason,
             b.source_type, b.events, b.first_seen, b.last_seen, b.first_observed, b.last_acted
      FROM _account_base b
      LEFT JOIN _identity_decision d ON d.system = b.system AND d.account_id = b.account_id
      LEFT JOIN _owner_decision od ON od.system = b.system AND od.account_id = b.owner
      LEFT JOIN persons_current po ON po.person_id = od.person_id AND od.people = 1
    """)

    S.replace_table(store, "identity_conflicts", """
      WITH d AS (SELECT * FROM _identity_decision)
      SELECT c.system, c.account_id, a.name,
             CASE WHEN d.people > 1 THEN 'unresolved' ELSE 'overridden' END AS status,
             c.person_id, c.rule, c.basis, c.handle, c.rank,
             CASE WHEN d.people > 1 THEN 'rule ' || d.rule || ' matches more than one person'
                  ELSE 'rule ' || c.rule || ' names ' || c.person_id || ' but ' || d.rule || ' (earlier) names '
                       || d.person_id END AS reason
      FROM identity_candidates c
      JOIN d ON d.system = c.system AND d.account_id = c.account_id
      JOIN accounts a ON a.system = c.system AND a.account_id = c.account_id AND a.kind = 'human'
      WHERE d.people > 1 AND c.rank = (SELECT min(x.rank) FROM identity_candidates x
                                       WHERE x.system = c.system AND x.account_id = c.account_id)
         OR d.people = 1 AND c.person_id <> d.person_id
    """)
    for t in ("_identity_decision", "_owner_handles", "_owner_decision", "_account_base"):
        store.execute(f"DROP TABLE IF EXISTS {t}")


# ---------------------------------------------------------------- governance record subjects

def build_workflow_subjects(store: Store, cfg: Config) -> None:
    """``workflow_subjects``: the person each governance record is about, with the basis."""
    subjects = """SELECT system, raw_id AS account_id, subject AS handle FROM workflow_records
                  WHERE subject IS NOT NULL AND trim(subject) <> ''"""
    S.replace_table(store, "_subject_handles", _norm_select(subjects, "handle", cfg,
                                                            "system, account_id, handle"))
    S.replace_table(store, "_subject_decision",
                    _decide_sql(f"({_candidates_sql('_subject_handles', with_alias=True)})"))
    S.replace_table(store, "workflow_subjects", """
      WITH own AS (
        SELECT w.raw_id, w.record_id, w.system, w.kind, w.subject, w.parent_id,
               CASE WHEN d.people = 1 THEN d.person_id END AS person_id,
               CASE WHEN d.people = 1 THEN d.basis WHEN d.people > 1 THEN 'conflict' END AS basis,
               CASE WHEN d.people = 1 THEN d.confidence END AS confidence
        FROM workflow_records w
        LEFT JOIN _subject_decision d ON d.system = w.system AND d.account_id = w.raw_id
      ), parent AS (
        SELECT system, record_id, max(person_id) AS person_id, max(subject) AS subject,
               count(DISTINCT person_id) AS people
        FROM own WHERE person_id IS NOT NULL GROUP BY system, record_id
      )
      SELECT o.raw_id, o.record_id, o.system, o.kind, coalesce(o.subject, p.subject) AS subject,
             coalesce(o.person_id, CASE WHEN p.people = 1 THEN p.person_id END) AS person_id,
             CASE WHEN o.person_id IS NOT NULL THEN o.basis
                  WHEN p.people = 1 THEN 'parent:' || o.parent_id
                  ELSE o.basis END AS basis,
             CASE WHEN o.person_id IS NOT NULL THEN o.confidence END AS confidence
      FROM own o LEFT JOIN parent p ON p.system = o.system AND p.record_id = o.parent_id AND o.subject IS NULL
    """)
    for t in ("_subject_handles", "_subject_decision"):
        store.execute(f"DROP TABLE IF EXISTS {t}")


# ---------------------------------------------------------------- entry points

def resolve_identities(store: Store, config: Config | str | dict | None = None) -> dict[str, Any]:
    """Build ``person_keys``, ``accounts``, ``identity_conflicts``, ``workflow_subjects``; return counts."""
    cfg = as_config(config)
    load_identity_config(store, cfg)
    build_person_keys(store, cfg)
    build_account_observations(store, cfg)
    build_accounts(store, cfg)
    build_workflow_subjects(store, cfg)
    rows = store.query("SELECT kind, status, count(*) FROM accounts GROUP BY kind, status ORDER BY 1, 2")
    return {
        "accounts": sum(r[2] for r in rows),
        "by_status": {f"{k}:{s}": n for k, s, n in rows},
        "conflicts": S.count(store, "accounts", "status = 'conflict'"),
        "subjects_resolved": S.count(store, "workflow_subjects", "person_id IS NOT NULL"),
        "subjects_unresolved": S.count(store, "workflow_subjects", "person_id IS NULL AND subject IS NOT NULL"),
        "config": cfg.digest,
    }


def _ensure(store: Store) -> None:
    if not S.table_exists(store, "accounts"):
        resolve_identities(store)


IDENTITY_COLUMNS = ["system", "account_id", "name", "kind", "person_id", "basis", "confidence", "owner",
                    "owner_person_id", "status", "reason", "events", "first_seen", "last_seen"]


def list_identities(store: Store, *, system: str | None = None, person: str | None = None,
                    status: str | None = None, kind: str | None = None, limit: int | None = None
                    ) -> list[dict[str, Any]]:
    """Accounts with the person each maps to and the basis (filters: system, person, status, kind)."""
    _ensure(store)
    where, params = [], []
    if system:
        where.append("(system = ? OR system LIKE ?)")
        params += [system, system + ":%"]
    if person:
        where.append("person_id = ?")
        params.append(person)
    if status:
        where.append("status = ?")
        params.append(status)
    if kind:
        where.append("kind = ?")
        params.append(kind)
    sql = f"SELECT {', '.join(IDENTITY_COLUMNS)} FROM accounts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY system, account_id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return store.query_dicts(sql, params)


def orphans(store: Store) -> list[dict[str, Any]]:
    """Human accounts that map to no current person: unresolved, or the person has left while the account
    still holds access (when ``access_intervals`` has been built)."""
    _ensure(store)
    out = store.query_dicts("""
      SELECT system, account_id, name, 'unresolved' AS orphan_kind, reason, CAST(NULL AS VARCHAR) AS person_id,
             CAST(NULL AS TIMESTAMPTZ) AS terminated, first_seen, last_seen
      FROM accounts WHERE kind = 'human' AND status = 'orphan'
      ORDER BY system, account_id""")
    if S.table_exists(store, "access_intervals"):
        out += store.query_dicts("""
          SELECT a.system, a.account_id, a.name, 'person-left' AS orphan_kind,
                 'person ' || a.person_id || ' left on ' || CAST(CAST(p.terminated AS DATE) AS VARCHAR)
                   || '; account still holds ' || CAST(count(*) AS VARCHAR) || ' access(es)' AS reason,
                 a.person_id, p.terminated, a.first_seen, a.last_seen
          FROM accounts a JOIN persons_current p ON p.person_id = a.person_id
          JOIN access_intervals i ON i.system = a.system AND i.account_id = a.account_id
          WHERE a.kind = 'human' AND p.terminated IS NOT NULL AND p.terminated <= current_timestamp
            AND i.removed_at IS NULL AND (i.granted_at IS NULL OR i.granted_at <= current_timestamp)
          GROUP BY a.system, a.account_id, a.name, a.person_id, p.terminated, a.first_seen, a.last_seen
          ORDER BY a.system, a.account_id""")
    return out


def ownerless_service_accounts(store: Store) -> list[dict[str, Any]]:
    """Service accounts without an accountable current owner (none, unresolvable, or departed)."""
    _ensure(store)
    return store.query_dicts("""
      SELECT system, account_id, name, kind_basis, owner, status, reason, first_seen, last_seen
      FROM accounts WHERE kind = 'service' AND status <> 'owned' ORDER BY system, account_id""")


def conflicts(store: Store) -> list[dict[str, Any]]:
    """Accounts matching more than one person, each with all its candidates (never resolved by guessing).

    ``status`` is ``unresolved`` (the deciding rule names two or more people: the account has no person)
    or ``overridden`` (an earlier rule decided; a later one names someone else)."""
    _ensure(store)
    rows = store.query_dicts("""
      SELECT system, account_id, name, status, person_id, rule, basis, handle, reason
      FROM identity_conflicts ORDER BY system, account_id, rank, person_id, handle""")
    grouped: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["system"], r["account_id"])
        g = grouped.setdefault(key, {"system": r["system"], "account_id": r["account_id"], "name": r["name"],
                                     "status": r["status"], "reason": r["reason"], "candidates": []})
        cand = {"person_id": r["person_id"], "rule": r["rule"], "basis": r["basis"], "handle": r["handle"]}
        if cand not in g["candidates"]:
            g["candidates"].append(cand)
    return list(grouped.values())


def person_of(store: Store, handle: str, config: Config | str | dict | None = None) -> dict[str, Any] | None:
    """The person a free-text handle (email, employee id, username, account id) names, if exactly one."""
    _ensure(store)
    h = handle.strip()
    rows = store.query_dicts("""
      SELECT DISTINCT person_id, 'account' AS via FROM accounts
        WHERE person_id IS NOT NULL AND (account_id = ? OR lower(name) = lower(?))
      UNION SELECT DISTINCT person_id, kind FROM person_keys
        WHERE k_low = lower(?) OR k_norm = lower(?) OR lower(person_id) = lower(?)""", [h, h, h, h, h])
    people = {r["person_id"] for r in rows}
    if len(people) != 1:
        return None
    pid = people.pop()
    return {"person_id": pid, "via": sorted({r["via"] for r in rows})}
