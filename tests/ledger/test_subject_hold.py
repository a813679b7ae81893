"""A legal hold on a subject keeps every record about them: the raw records of their events (as actor or
target, under any of their accounts), governance records they are the subject, requester or approver of,
their HR records and quarantined input naming them — on real ingested stores, both backends. Purge, its dry
run and ``retention hold list`` agree; ``verify`` passes after each purge; once released, the records go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from accessproof.audit.retrieval import find_evidence
from accessproof.demo.run import ingest_demo
from accessproof.demo.simulate import simulate
from accessproof.identity.resolve import resolve_identities
from accessproof.ingest import ingest_paths
from accessproof.ledger import LedgerError, init_store, open_ledger, verify_ledger
from accessproof.ledger.commands import build_app
from accessproof.ledger.retention import add_hold, purge, release_hold, subject_coverage
from accessproof.store import open_store
from tests.conftest import dev_data

NOW = datetime(2034, 6, 1, tzinfo=UTC)  # past every retention period of the demo's records (at most 7 years)
LATER = datetime(2034, 6, 2, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest simulated company (40 people, 2 months), written once for the module."""
    out = tmp_path_factory.mktemp("subject-hold") / "data"
    simulate(40, 2, 7, out)
    return out


@pytest.fixture
def org(store_url: str, company: Path) -> Iterator[Any]:
    """The company ingested and sealed in a fresh store (each backend), identities resolved."""
    led, _ = init_store(store_url)
    led.close()
    s = open_store(store_url)
    try:
        ingest_demo(s, company)
        resolve_identities(s)
        yield s
    finally:
        s.close()


def _cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(build_app(), list(args))
    return res.exit_code, res.output


def _present(s: Any, idxs: set[int]) -> dict[int, bool]:
    """Whether each sealed raw or quarantined record still has its payload, by ledger index."""
    if not idxs:
        return {}
    marks = ", ".join("?" * len(idxs))
    rows = s.query(f"""
      SELECT e.idx, coalesce(r.data, q.data) IS NOT NULL FROM ledger_entries e
      LEFT JOIN raw_records r ON e.record_type = 'raw' AND r.raw_id = e.record_id
      LEFT JOIN quarantine q ON e.record_type = 'quarantine' AND q.quarantine_id = e.record_id
      WHERE e.idx IN ({marks})""", sorted(idxs))
    return {int(i): bool(p) for i, p in rows}


def _people(s: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two people with accounts and events: one who also approved something (the subject), one other."""
    rows = s.query_dicts("""
      SELECT p.person_id, lower(p.email) AS email FROM persons_current p
      WHERE p.email IS NOT NULL AND EXISTS (SELECT 1 FROM accounts a WHERE a.person_id = p.person_id AND a.events > 0)
      ORDER BY p.person_id""")
    approvers = {str(a).lower() for (j,) in s.query(
        "SELECT approvers_json FROM workflow_records WHERE approvers_json IS NOT NULL") for a in _json_list(j)}
    subject = next(r for r in rows if r["email"] in approvers)
    other = next(r for r in reversed(rows) if r["person_id"] != subject["person_id"])
    return subject, other


def _json_list(text: str) -> list[str]:
    import json

    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def _quarantine_naming(s: Any, tmp_path: Path, emails: list[str]) -> dict[str, set[int]]:
    """Ingest one unreadable Okta line naming each email (cut-off JSON): ledger indexes of each's record."""
    f = tmp_path / "cut.jsonl"
    f.write_text("".join(f'{{"eventType": "user.session.start", "actor": {{"alternateId": "{e}"\n' for e in emails))
    summary = ingest_paths(s, "okta", [f])
    assert summary.quarantined == len(emails)
    out: dict[str, set[int]] = {}
    for e in emails:
        rows = s.query("""
          SELECT e.idx FROM ledger_entries e JOIN quarantine q
            ON e.record_type = 'quarantine' AND e.record_id = q.quarantine_id
          WHERE q.file = ? AND strpos(lower(CAST(q.data AS VARCHAR)), ?) > 0""", [str(f), e])
        out[e] = {int(r[0]) for r in rows}
        assert len(out[e]) == 1
    return out


def _names_any(s: Any, idxs: set[int], keys: list[str]) -> set[int]:
    """Of ``idxs``, the raw records whose bytes mention any of ``keys`` (lower-cased): about them, maybe."""
    if not idxs:
        return set()
    marks = ", ".join("?" * len(idxs))
    like = " OR ".join("strpos(lower(CAST(r.data AS VARCHAR)), ?) > 0" for _ in keys)
    rows = s.query(f"""SELECT e.idx FROM ledger_entries e JOIN raw_records r ON r.raw_id = e.record_id
                       WHERE e.record_type = 'raw' AND e.idx IN ({marks}) AND ({like})""", [*sorted(idxs), *keys])
    return {int(r[0]) for r in rows}


def test_a_subject_hold_keeps_every_record_about_the_person_until_released(
        org: Any, store_url: str, tmp_path: Path) -> None:
    s = org
    subject, other = _people(s)
    pid, email = subject["person_id"], subject["email"]
    quarantined = _quarantine_naming(s, tmp_path, [email, other["email"]])
    led = open_ledger(store_url, s.con)
    try:
        # what is about the subject, found without the hold's own code: retrieval's evidence for the person
        # (HR records, governance records about them, events on or by their accounts) and approvals naming them
        about = {r.index for r in find_evidence(s, subject=pid).rows if r.type == "raw"}
        approvals = {int(r[0]) for r in s.query("""
          SELECT e.idx FROM ledger_entries e JOIN workflow_records w ON e.record_type = 'raw' AND e.record_id = w.raw_id
          WHERE strpos(lower(w.approvers_json), ?) > 0""", ['"' + email + '"'])}
        kinds = {r.kind for r in find_evidence(s, subject=pid).rows if r.type == "raw"}
        assert {"event", "person"} <= kinds and approvals, "the subject has events, an HR record and approvals"
        theirs = about | approvals | quarantined[email]
        others = {r.index for r in find_evidence(s, subject=other["person_id"]).rows if r.type == "raw"}
        mentions = [email, pid, *_usernames(s, pid), *(a.lower() for a in _accounts(s, pid))]
        others = others - _names_any(s, others, mentions) | quarantined[other["email"]]
        assert others, "the other person has records that do not mention the subject"

        hold = add_hold(led, subject=pid, reason="matter 42", by="legal@acme.com", now=NOW)
        dry = purge(led, led.payloads, now=NOW, dry_run=True)
        done = purge(led, led.payloads, now=NOW, by="records")
        held = {r.idx for r in done.held}
        assert theirs <= held, f"{len(theirs - held)} records about the subject were not held"
        assert not others & held, "the other person's records are not held"
        assert (dry.purge, dry.held) == (done.purge, done.held), "the dry run lists what the purge does"
        assert done.held_by == {hold.hold_id: len(held)} and done.payloads_removed == len(done.purge) > 0
        present = _present(s, theirs | others)
        assert all(present[i] for i in theirs), "the subject's raw records keep their payloads"
        assert not any(present[i] for i in others), "everyone else's expired records are purged"
        report = verify_ledger(led, payloads=led.payloads)
        assert report.ok, report.problems[:3]

        release_hold(led, hold.hold_id, reason="matter closed", by="legal@acme.com", now=LATER)
        again = purge(led, led.payloads, now=LATER, by="records")
        assert {r.idx for r in again.purge} == held and not again.held
        assert not any(_present(s, theirs).values()), "released: the subject's records go too"
        report = verify_ledger(led, payloads=led.payloads)
        assert report.ok, report.problems[:3]
    finally:
        led.close()


def _accounts(s: Any, pid: str) -> list[str]:
    return [str(a) for (a,) in s.query(
        "SELECT account_id FROM accounts WHERE person_id = ? ORDER BY events DESC, account_id", [pid])]


def _usernames(s: Any, pid: str) -> list[str]:
    rows = s.query("SELECT usernames_json FROM persons WHERE person_id = ? AND usernames_json IS NOT NULL", [pid])
    return [u.lower() for (j,) in rows for u in _json_list(j)]


def test_any_name_of_the_person_holds_the_same_records_and_the_cli_shows_them(org: Any, store_url: str) -> None:
    s = org
    subject, _ = _people(s)
    pid = subject["person_id"]
    names = [pid, subject["email"].upper(), _accounts(s, pid)[0], *_usernames(s, pid)]
    led = open_ledger(store_url, s.con)
    try:
        holds = [add_hold(led, subject=n, reason="matter 7", by="legal", now=NOW) for n in names]
        covered = subject_coverage(led, holds)
        dry = purge(led, led.payloads, now=NOW, dry_run=True)
    finally:
        led.close()
    sets = {n: covered[h.hold_id].indexes for n, h in zip(names, holds, strict=True)}
    assert len(set(sets.values())) == 1, {n: len(v) for n, v in sets.items()}
    assert all(covered[h.hold_id].persons == (pid,) for h in holds)
    assert {r.idx for r in dry.held} == sets[pid], "held: exactly the person's expired records"
    code, out = _cli("retention", "hold", "list", "--store", store_url)
    assert code == 0, out
    n = len(sets[pid])
    assert out.count(f"covers {n} records (") == len(names) and f"person {pid}" in out
    code, out = _cli("retention", "purge", "--dry-run", "--now", "2034-06-01T00:00:00Z", "--store", store_url)
    assert code == 0, out
    assert f"would purge {len(dry.purge)} payloads" in out and f"{len(dry.held)} kept under hold" in out
    assert all(f"{h.hold_id}: kept {n} expired; subject {h.subject} covers {n} records" in out for h in holds)


@pytest.fixture
def samples_store(store_url: str) -> Iterator[Any]:
    """The real Okta System Log samples, ingested and sealed (each backend); identities not yet resolved."""
    led, _ = init_store(store_url)
    led.close()
    s = open_store(store_url)
    try:
        ingest_paths(s, "okta", [dev_data() / "okta"])
        yield s
    finally:
        s.close()


def test_an_account_hold_on_real_samples_and_no_purge_before_identities_are_resolved(
        samples_store: Any, store_url: str) -> None:
    s = samples_store
    account = s.query("""SELECT actor_id FROM events WHERE actor_id IS NOT NULL
                         GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""")[0][0]
    raw = {int(i) for (i,) in s.query("SELECT idx FROM ledger_entries WHERE record_type = 'raw'")}
    led = open_ledger(store_url, s.con)
    try:
        hold = add_hold(led, subject=account, reason="incident 3", by="secops", now=NOW)
        with pytest.raises(LedgerError, match="identity resolve"):
            purge(led, led.payloads, now=NOW, dry_run=True)
        code, out = _cli("retention", "purge", "--now", "2034-06-01T00:00:00Z", "--store", store_url)
        assert code == 2 and out.startswith(f"error: hold {hold.hold_id} is on subject"), out
        assert "accessproof identity resolve" in out and len(out.strip().splitlines()) == 1, out
        assert all(_present(s, raw).values()), "a refused purge removes nothing"

        resolve_identities(s)
        on_it = {r.index for r in find_evidence(s, subject=account).rows if r.type == "raw"}
        assert on_it, "the account's events, as evidence retrieval finds them"
        done = purge(led, led.payloads, now=NOW, by="records")
        held = {r.idx for r in done.held}
        assert on_it <= held and done.held_by == {hold.hold_id: len(held)}
        assert held == _names_any(s, held, [account.lower()]), "every held record names the account"
        present = _present(s, held | {r.idx for r in done.purge})
        assert all(present[i] for i in held) and not any(present[r.idx] for r in done.purge)
        assert raw - held <= {r.idx for r in done.purge}, "other accounts' events are purged"
        report = verify_ledger(led, payloads=led.payloads)
        assert report.ok, report.problems[:3]
    finally:
        led.close()
