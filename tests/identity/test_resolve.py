"""Identity resolution on small stores built from vendor-format files (and the real samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from accessproof.identity import (
    conflicts,
    list_identities,
    orphans,
    ownerless_service_accounts,
    person_of,
    resolve_identities,
)
from accessproof.ingest import ingest_paths
from accessproof.linking.config import ConfigError, load_config
from tests.conftest import dev_data
from tests.linking.vendor import AWS_ACCOUNT, OKTA, Org, cloudtrail, github, okta, worker

AWS = f"aws:{AWS_ACCOUNT}"


def _org(tmp_path: Path) -> Org:
    o = Org(tmp_path / "org")
    o.workers += [
        worker("W-1", "Anna Schmidt", "anna.schmidt@acme.com", "aschmidt"),
        worker("W-2", "Ben Ortiz", "ben.ortiz@acme.com", "bortiz-gh"),
        worker("W-3", "Chen Li", "chen.li@acme.com", "cli"),
        worker("W-4", "Dana Li", "dana.li@acme.com", "octo-cat"),
        worker("W-5", "Carla Lindqvist", "carla.lindqvist@acme.com", "cli"),
        worker("W-6", "Eve Adams", "eve.adams@acme.com", "eadams", terminated="2025-01-31"),
    ]
    o.okta += [
        okta("2025-03-03T09:00:00", "group.user_membership.add", target_login="Anna.Schmidt@ACME.com", group="vpn"),
        okta("2025-03-03T09:01:00", "group.user_membership.add", target_login="ben.ortiz+okta@acme.com",
             group="vpn"),
        okta("2025-03-03T09:02:00", "group.user_membership.add", target_login="dana.li@acme-medical.de",
             group="vpn"),
        okta("2025-03-03T09:03:00", "group.user_membership.add", target_login="ghost.user@acme.com", group="vpn"),
        okta("2025-03-03T09:04:00", "user.session.start", actor="eve.adams@acme.com"),
        okta("2025-03-03T09:05:00", "group.user_membership.add", target_login="anna.schmidt@acme.com",
             group="qms", actor="svc-provisioning", actor_type="PublicClientApp"),
    ]
    o.github += [
        github("2025-03-04T10:00:00Z", "team.add_member", user="bortiz-gh", team="acme/firmware"),
        github("2025-03-04T10:01:00Z", "team.add_member", user="cli", team="acme/firmware"),
        github("2025-03-04T10:02:00Z", "team.add_member", user="octo-cat", team="acme/firmware"),
        github("2025-03-04T10:03:00Z", "team.add_member", user="w-3", team="acme/firmware",
               actor="dependabot[bot]", actor_is_bot=True),
    ]
    o.cloudtrail += [
        cloudtrail("2025-03-05T11:00:00Z", "AddUserToGroup", {"groupName": "developers", "userName": "aschmidt"}),
        cloudtrail("2025-03-05T11:01:00Z", "CreateUser",
                   {"userName": "svc-backup", "path": "/service/",
                    "tags": [{"key": "owner", "value": "Anna.Schmidt@acme.com"}, {"key": "change", "value": "CR-0001"}]}),
        cloudtrail("2025-03-05T11:02:00Z", "CreateUser", {"userName": "svc-orphan-etl", "path": "/service/"}),
        cloudtrail("2025-03-05T11:03:00Z", "CreateUser",
                   {"userName": "svc-legacy", "tags": [{"key": "owner", "value": "eve.adams@acme.com"}]}),
    ]
    return o


@pytest.fixture
def org_store(tmp_path, store):
    _org(tmp_path).ingest(store)
    alias = tmp_path / "aliases.csv"
    alias.write_text("system,account,person_id\ngithub:acme,octo-cat,W-3\n", encoding="utf-8")
    cfg = tmp_path / "linking.yaml"
    cfg.write_text(f"identity:\n  alias_files: [{alias.name}]\n"
                   "  email: {domain_aliases: {acme-medical.de: acme.com}}\n", encoding="utf-8")
    summary = resolve_identities(store, load_config(cfg))
    return store, summary


def _acct(store, system: str, account: str) -> dict:
    rows = [r for r in list_identities(store, system=system) if r["account_id"] == account or r["name"] == account]
    assert rows, f"no account {account} in {system}"
    return rows[0]


def test_email_rules_record_their_basis(org_store):
    store, _ = org_store
    assert _acct(store, OKTA, "Anna.Schmidt@ACME.com")["basis"] == "email:case-normalised"
    assert _acct(store, OKTA, "anna.schmidt@acme.com")["basis"] == "email:exact"
    assert _acct(store, OKTA, "ben.ortiz+okta@acme.com")["basis"] == "email:plus-tag-stripped"
    dana = _acct(store, OKTA, "dana.li@acme-medical.de")
    assert (dana["person_id"], dana["basis"]) == ("W-4", "email:domain-alias")
    assert _acct(store, OKTA, "Anna.Schmidt@ACME.com")["person_id"] == "W-1"


def test_usernames_from_hr_match_github_handles_and_iam_users(org_store):
    store, _ = org_store
    gh = _acct(store, "github:acme", "bortiz-gh")
    assert (gh["person_id"], gh["basis"]) == ("W-2", "hr-username:github-handle")
    iam = _acct(store, AWS, "aschmidt")
    assert (iam["person_id"], iam["basis"]) == ("W-1", "hr-username:iam-user")
    # employee id as account name
    assert _acct(store, "github:acme", "w-3")["basis"] == "employee-id"


def test_alias_table_wins_and_the_disagreement_is_reported(org_store):
    store, _ = org_store
    octo = _acct(store, "github:acme", "octo-cat")
    assert (octo["person_id"], octo["basis"], octo["confidence"]) == ("W-3", "alias-table", 1.0)
    c = {(x["system"], x["account_id"]): x for x in conflicts(store)}
    over = c[("github:acme", "octo-cat")]
    assert over["status"] == "overridden"
    assert {(k["person_id"], k["rule"]) for k in over["candidates"]} == {("W-4", "hr-username")}


def test_one_account_two_people_is_a_conflict_never_a_guess(org_store):
    store, summary = org_store
    cli = _acct(store, "github:acme", "cli")
    assert cli["person_id"] is None and cli["status"] == "conflict"
    c = {(x["system"], x["account_id"]): x for x in conflicts(store)}
    amb = c[("github:acme", "cli")]
    assert amb["status"] == "unresolved"
    assert sorted(k["person_id"] for k in amb["candidates"]) == ["W-3", "W-5"]
    assert all(k["basis"] == "hr-username:github-handle" for k in amb["candidates"])
    assert summary["conflicts"] == 1


def test_orphans_are_unresolved_human_accounts(org_store):
    store, _ = org_store
    o = {(x["system"], x["account_id"]): x for x in orphans(store)}
    ghost = [x for k, x in o.items() if x["name"] == "ghost.user@acme.com"]
    assert ghost and ghost[0]["orphan_kind"] == "unresolved"
    assert "no rule matched" in ghost[0]["reason"]
    assert all(x["system"] != "github:acme" or x["account_id"] != "cli" for x in o.values())  # conflict, not orphan


def test_service_accounts_have_owners_or_are_listed_ownerless(org_store):
    store, _ = org_store
    backup = _acct(store, AWS, "svc-backup")
    assert backup["kind"] == "service" and backup["status"] == "owned"
    assert (backup["owner"], backup["owner_person_id"]) == ("Anna.Schmidt@acme.com", "W-1")
    bot = _acct(store, "github:acme", "dependabot[bot]")
    assert bot["kind"] == "service"
    svc_actor = _acct(store, OKTA, "svc-provisioning")
    assert svc_actor["kind"] == "service" and svc_actor["person_id"] is None
    ownerless = {x["account_id"]: x for x in ownerless_service_accounts(store)}
    assert ownerless["svc-orphan-etl"]["status"] == "ownerless"
    assert "no owner" in ownerless["svc-orphan-etl"]["reason"]
    assert ownerless["svc-legacy"]["status"] == "owner-terminated"
    assert "svc-backup" not in ownerless


def test_register_file_gives_an_owner(tmp_path, store):
    _org(tmp_path).ingest(store)
    reg = tmp_path / "register.yaml"
    reg.write_text(f"- {{system: '{AWS}', account: svc-orphan-etl, owner: ben.ortiz@acme.com}}\n", encoding="utf-8")
    resolve_identities(store, {"identity": {"service_accounts": {"register_files": [str(reg)]}}})
    etl = _acct(store, AWS, "svc-orphan-etl")
    assert (etl["status"], etl["owner_person_id"]) == ("owned", "W-2")
    assert "register" in etl["reason"]


def test_rule_order_is_configurable(tmp_path, store):
    _org(tmp_path).ingest(store)
    resolve_identities(store, {"identity": {"rules": ["hr-username", "email"]}})
    # without the alias table, octo-cat goes to the HR username owner
    assert _acct(store, "github:acme", "octo-cat")["person_id"] == "W-4"
    with pytest.raises(ConfigError):
        resolve_identities(store, {"identity": {"rules": ["guess"]}})


def test_workflow_subjects_and_person_lookup(org_store):
    store, _ = org_store
    assert person_of(store, "ANNA.SCHMIDT@acme.com")["person_id"] == "W-1"
    assert person_of(store, "cli") is None  # two people


def test_real_samples_resolve_without_errors(tmp_path, store):
    for source in ("okta", "github", "cloudtrail", "entra"):
        ingest_paths(store, source, [dev_data() / source])
    s = resolve_identities(store)
    assert s["accounts"] > 50
    rows = list_identities(store)
    assert all(r["status"] in ("resolved", "orphan", "conflict", "owned", "ownerless", "owner-unresolved",
                               "owner-terminated") for r in rows)
    kinds = {(r["system"].split(":")[0], r["account_id"]): r["kind"] for r in rows}
    assert kinds[("github", "github-actions[bot]")] == "service"
    # no HR data: every human account is an orphan with a reason
    assert all(r["reason"] for r in rows)
    assert store.query("SELECT count(*) FROM accounts GROUP BY system, account_id HAVING count(*) > 1") == []
