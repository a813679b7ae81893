"""Attacker-controlled text never breaks or styles the command line.

Log content reaches the terminal in tables and messages. Here the real Okta sample (altered: actor and
target names), an HR export, ServiceNow requests and Okta group grants carry Rich markup (``[/x]`` raised
``MarkupError``; ``[bold red]…`` and ``[link=…]`` styled the terminal), an ANSI sequence (``ESC[2J`` clears
the screen) and a spreadsheet formula, in a file whose name has markup and ESC too. Everything is ingested
through ``accessproof ingest`` and every listing command that shows it is run through Typer: each must
exit 0, show the text literally and never write an ESC byte; CSV output must keep formulas inert.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from accessproof.cli import app
from accessproof.output import safe_text
from tests.conftest import dev_data
from tests.linking.vendor import (
    HR_EVENT_COLUMNS,
    WORKER_COLUMNS,
    approval,
    okta,
    ritm,
    worker,
    write_csv,
    write_jsonl,
    write_table_api,
)

CLOSE = "[/x]"  # a stray closing tag: MarkupError
STYLE = "[bold red]pwn[/]"  # styling
LINK = "[link=https://evil.example]x[/link]"  # a hyperlink
CLEAR = "\x1b[2J"  # ANSI: clear the screen
SHOWN_CLEAR = "\\x1b[2J"  # how it must appear instead
FORMULA = '=HYPERLINK("https://evil.example","x")'
HOSTILE = [CLOSE, STYLE, LINK, CLEAR]

GROUP = f"{CLOSE} vpn-users {CLEAR}"  # requested and granted: an explicit link
ROGUE = f"{LINK} admins {STYLE}"  # granted with no request: an unlinked grant, a finding
LATE = f"late {STYLE} {CLEAR} {CLOSE}"  # granted after the assessment, found by a re-test
ANNA = f"Anna {STYLE} Schmidt"
EVE = f"Eve {LINK} Adams {CLEAR}"
SAMPLE_FILE = f"okta-[red]logs[blink]-{CLEAR}.jsonl"

runner = CliRunner()


def _invoke(args: list[str]):
    # wide enough that no cell is folded across lines, so a value can be looked for as it is
    return runner.invoke(app, args, env={"COLUMNS": "2000", "FORCE_COLOR": None, "TTY_COMPATIBLE": None})


def _run(*args: str, store: str) -> str:
    res = _invoke([*args, "--store", store])
    assert res.exit_code == 0, (args, res.output, res.exception)
    assert "Traceback" not in res.output
    assert "\x1b" not in res.output, (args, res.output)  # no escape sequence from the data, nor any other
    return res.output


def _literal(text: str, *values: str) -> None:
    """Every value is shown as it is (brackets visible), ESC as a visible escape."""
    for v in values:
        assert v.replace(CLEAR, SHOWN_CLEAR) in text, (v, text)


def _altered_okta_sample(path: Path) -> Path:
    """The real Okta sample with its actor and target names made hostile, and one bad ``published``."""
    lines = (dev_data() / "okta" / "panther-tests.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(x) for x in lines if x.strip()]
    for i, r in enumerate(records):
        bad = HOSTILE[i % len(HOSTILE)]
        if isinstance(r.get("actor"), dict):
            r["actor"]["alternateId"] = f"{bad}actor{i}@sample.example"
            r["actor"]["displayName"] = f"{bad} Actor {i}"
        for t in r.get("target") or []:
            if isinstance(t, dict) and t.get("type") == "User":
                t["alternateId"] = f"{bad}target{i}@sample.example"
                t["displayName"] = f"{bad} Target {i}"
    broken = json.loads(lines[0])
    broken["uuid"] = "hostile-published"
    broken["published"] = f"{CLOSE} {CLEAR} {STYLE}"
    records.append(broken)
    return write_jsonl(path, records)


def build_hostile_store(root: Path) -> str:
    """Ingest the hostile exports under ``root`` through the CLI; the store's location."""
    store = str(root / "store")
    sample = _altered_okta_sample(root / "okta" / SAMPLE_FILE)
    workers = write_csv(root / "hr" / "workers.csv", WORKER_COLUMNS, [
        worker("W-1", ANNA, "anna.schmidt@acme.com", "aschmidt"),
        worker("W-3", EVE, "eve.adams@acme.com", "eadams", terminated="2025-03-10"),
        worker("W-9", "Maria Manager", "maria.manager@acme.com", "mmanager"),
    ])
    hr_events = write_csv(root / "hr" / "events.csv", HR_EVENT_COLUMNS, [
        {"Event ID": "HRE-000001", "Employee ID": "W-3", "Event Type": "Termination", "Effective Date": "2025-03-10",
         "Entered At": "2025-03-03T09:00:00+01:00", "Entered By": "hr@acme.com"}])
    ritms = write_table_api(root / "servicenow" / "sc_req_item.json", [
        ritm("RITM0010001", subject="anna.schmidt@acme.com", item=f"Okta group: {GROUP}", opened="2025-03-01 08:00:00",
             approved="2025-03-01 10:00:00")])
    approvals = write_table_api(root / "servicenow" / "sysapproval_approver.json", [
        approval("RITM0010001", approver="maria.manager@acme.com", state="Approved", created="2025-03-01 08:00:00",
                 decided="2025-03-01 10:00:00")])
    grants = write_jsonl(root / "okta" / "system_log.jsonl", [
        okta("2025-03-01T10:30:00", "group.user_membership.add", target_login="anna.schmidt@acme.com", group=GROUP,
             debug={"justification": "RITM0010001"}, actor="okta-workflows@acme.com"),
        okta("2025-03-07T09:00:00", "group.user_membership.add", target_login="anna.schmidt@acme.com", group=ROGUE),
        okta("2025-03-07T09:05:00", "group.user_membership.add", target_login="anna.schmidt@acme.com", group=FORMULA),
        okta("2025-03-01T11:00:00", "group.user_membership.add", target_login="eve.adams@acme.com", group=GROUP),
        okta("2025-03-11T09:00:00", "user.lifecycle.deactivate", target_login="eve.adams@acme.com"),
        okta("2025-03-31T08:00:00", "user.session.start", actor="anna.schmidt@acme.com"),
        okta("2025-03-31T09:00:00", "user.session.start", actor=FORMULA),
    ])
    _run("ingest", "csv", str(workers), "--mapping", "hr_workers", store=store)
    _run("ingest", "csv", str(hr_events), "--mapping", "hr_events", store=store)
    _run("ingest", "servicenow", str(ritms), str(approvals), store=store)
    _run("ingest", "okta", str(grants), "--source-name", "okta:acme", store=store)
    out = _run("ingest", "okta", str(sample), store=store)
    assert "1 record(s) set aside" in out or "record(s) set aside" in out
    _run("link", "run", store=store)
    _run("outbox", "endpoint", "add", "audit-hook", "https://hooks.example/accessproof", store=store)
    res = _invoke(["assess", "--store", store])  # findings: exit 1 only if a control errs
    assert res.exit_code == 0 and "\x1b" not in res.output, res.output
    # a later grant, re-tested for its person only: the finding it opens goes to the outbox
    late = write_jsonl(root / "okta" / f"late-[/x]-{CLEAR}.jsonl", [
        okta("2025-03-30T09:00:00", "group.user_membership.add", target_login="anna.schmidt@acme.com", group=LATE)])
    _run("ingest", "okta", str(late), "--source-name", "okta:acme", store=store)
    return store


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("markup")
    return {"store": build_hostile_store(root), "root": str(root)}


def test_safe_text_makes_controls_visible_and_keeps_text() -> None:
    assert safe_text("a\x1b[31mb\rc\x07\x9b\u202eé") == "a\\x1b[31mb\\rc\\x07\\x9b\\u202eé"
    assert safe_text(f"{CLOSE} {STYLE}") == f"{CLOSE} {STYLE}"  # markup is left to Rich-free rendering
    assert safe_text("ACME\\jdoe\ttab\nline") == "ACME\\jdoe\\ttab\\nline"


def test_events_sources_and_quarantine_show_data_literally(hostile) -> None:
    store = hostile["store"]
    events = _run("events", "--limit", "0", store=store)
    _literal(events, *(f"{bad} Actor" for bad in HOSTILE), *(f"{bad}target" for bad in HOSTILE))
    _literal(_run("events", "--subject", "anna.schmidt", "--limit", "0", store=store), "anna.schmidt@acme.com")
    _literal(_run("sources", store=store), "quarantine by reason", f"published '{CLOSE} {CLEAR} {STYLE}'")
    quarantined = _run("quarantine", store=store)
    _literal(quarantined, SAMPLE_FILE, f"published '{CLOSE} {CLEAR} {STYLE}' is not ISO 8601")
    # raw bytes are shown as DuckDB prints a BLOB (quotes and backslashes as \xHH): markup still literal
    _literal(_run("quarantine", "--data", store=store), f"\\x22published\\x22: \\x22{CLOSE} \\x5Cu001b[2J {STYLE}")


def test_identity_commands_show_names_literally(hostile) -> None:
    store = hostile["store"]
    _run("identity", "resolve", store=store)
    _literal(_run("identity", "list", "--limit", "0", store=store), *HOSTILE, FORMULA)
    _literal(_run("identity", "orphans", store=store), *HOSTILE)
    _run("identity", "ownerless", store=store)
    _run("identity", "conflicts", store=store)


def test_linking_commands_show_groups_and_people_literally(hostile) -> None:
    store = hostile["store"]
    _literal(_run("link", "list", store=store), GROUP, "RITM0010001")
    _literal(_run("link", "unlinked", store=store), ROGUE)
    _run("link", "unexecuted", store=store)
    _literal(_run("link", "removals", store=store), GROUP)
    _run("link", "removals", "--by-system", store=store)
    _literal(_run("access", "--at", "2025-03-08T00:00:00Z", store=store), GROUP, ROGUE)
    _literal(_run("timeline", "W-1", store=store), GROUP, ROGUE)
    _literal(_run("timeline", "eve.adams@acme.com", store=store), GROUP)


def test_controls_findings_and_evidence_show_data_literally(hostile) -> None:
    store = hostile["store"]
    findings = _run("findings", "--limit", "0", store=store)
    _literal(findings, ROGUE)
    _literal(_run("evidence", "--subject", "W-1", "--limit", "0", store=store), "W-1")
    _literal(_run("evidence", "--system", "okta", "--limit", "0", store=store), f"{CLOSE} Actor")
    _literal(_run("retest", "W-1", store=store), "opened", LATE)
    _literal(_run("outbox", "list", store=store), "finding.opened")
    _literal(_run("outbox", "list", "--format", "jsonl", store=store), orjson.dumps(LATE).decode()[1:-1])


def test_hold_reasons_are_shown_literally(hostile) -> None:
    store = hostile["store"]
    reason = f"matter {STYLE} {CLEAR} {CLOSE}"
    _literal(_run("retention", "hold", "add", "--reason", reason, "--by", f"legal {LINK}", "--subject", "W-1",
                  store=store), reason)
    _literal(_run("retention", "hold", "list", store=store), reason, f"legal {LINK}")


def test_csv_and_jsonl_keep_formulas_inert_and_data_exact(hostile) -> None:
    store = hostile["store"]
    for args in (["events", "--limit", "0"], ["access", "--at", "2025-03-08T00:00:00Z"], ["link", "unlinked"],
                 ["findings", "--limit", "0"], ["identity", "list"]):
        out = _run(*args, "--format", "csv", store=store)
        cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
        assert any(FORMULA in c for c in cells), (args, out)  # the value is there …
        assert not [c for c in cells if c.startswith(("=", "+", "@"))], (args, out)  # … but never as a formula
        assert "'" + FORMULA in cells or args[0] == "findings", (args, out)  # quoted where it starts a cell
    rows = [orjson.loads(x) for x in _run("access", "--at", "2025-03-08T00:00:00Z", "--format", "jsonl",
                                          store=store).splitlines()]
    assert {GROUP, ROGUE, FORMULA} <= {r["entitlement"] for r in rows}  # JSON Lines carry the data exactly


def test_hostile_names_in_arguments_and_files_are_one_line_errors(hostile, tmp_path) -> None:
    store = hostile["store"]
    for args in (["ingest", "csv", str(tmp_path / "x.csv"), "--mapping", f"{STYLE}{CLEAR}.yaml"],
                 ["timeline", f"nobody {CLOSE} {CLEAR}"],
                 ["verify-package", str(tmp_path / f"{STYLE}{CLEAR}.zip")]):
        res = _invoke([*args, "--store", store] if args[0] != "verify-package" else args)
        assert res.exit_code == 2, (args, res.output)
        assert "\x1b" not in res.output and "Traceback" not in res.output
        lines = [x for x in res.output.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
        assert STYLE in lines[0] or CLOSE in lines[0], res.output  # the name shown as it is


def test_a_store_path_with_markup_is_shown_literally(tmp_path) -> None:
    odd = str(tmp_path / f"store {STYLE} {CLOSE}")
    for args in (["events"], ["sources"], ["quarantine"], ["evidence"], ["walkthrough"],
                 ["sample", "--control", "access_without_approval", "--period", "2025-01-01..2025-04-01"]):
        res = _invoke([*args, "--store", odd])
        lines = [x for x in res.output.splitlines() if x.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, res.output)
        assert f"{STYLE} {CLOSE}" in lines[0] and "Traceback" not in res.output, (args, res.output)
