"""The declarative CSV/JSON reader (``sources.tabular``) and its mapping files (``accessproof.mapping``).

No public QMS, HR or supplier-register exports exist (see ../shared/data/dev/README.md), so the fixtures
follow the documented column sets of the bundled mappings, with the quirks real exports have: a BOM and CRLF
from Excel-style exports, a .gz, quoted commas and multi-line cells, formula-looking cells.
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from accessproof.mapping import MappingError, bundled_mappings, load_mapping, mapping_from_dict
from accessproof.model import IdentityEvent, Person, WorkflowRecord
from accessproof.sources import base, get_source, tabular
from accessproof.sources.base import Chunk, Context, Reject

FIX = Path(__file__).parent / "fixtures" / "tabular"
MAPPINGS = Path(tabular.__file__).resolve().parents[1] / "mappings"


def run(src: tabular.TabularSource, path: Path) -> tuple[list[tuple[Chunk, Any]], list[tuple[str, str, bool]]]:
    """Read and normalise a file the way the ingest engine does: (accepted, [(position, reason, file_level)])."""
    accepted: list[tuple[Chunk, Any]] = []
    quarantined: list[tuple[str, str, bool]] = []
    for ch in src.read(path, path.name):
        if ch.error:
            assert "\n" not in ch.error
            quarantined.append((ch.position, ch.error, ch.file_level))
            continue
        obj = ch.obj if ch.obj is not None else orjson.loads(ch.data)
        ctx = Context(src.source_type, str(path), ch.position, "", hashlib.sha256(ch.data).hexdigest())
        try:
            recs = src.normalize(obj, ctx)
        except Reject as e:
            assert "\n" not in str(e)
            quarantined.append((ch.position, str(e), False))
            continue
        assert isinstance(recs, list) and len(recs) == 1
        accepted.append((ch, recs[0]))
    return accepted, quarantined


def records(mapping: str, fixture: str) -> list[Any]:
    accepted, quarantined = run(get_source("csv", mapping=mapping), FIX / fixture)
    assert quarantined == []
    return [r for _, r in accepted]


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


# ---------------------------------------------------------------- the bundled mappings

def test_every_bundled_mapping_loads():
    names = bundled_mappings()
    assert {"hr_workers", "hr_events", "qms_exceptions", "qms_training", "qms_suppliers", "qms_changes"} <= set(names)
    for name in names:
        by_path = load_mapping(MAPPINGS / f"{name}.yaml")
        assert load_mapping(name).model_dump() == by_path.model_dump()
        assert by_path.format == "csv"


def test_hr_workers_with_bom_and_crlf():
    people = records("hr_workers", "hr_workers.csv")
    assert [p.person_id for p in people] == ["W-100012", "W-100234", "W-100871", "W-200044", "W-100915"]
    assert all(isinstance(p, Person) and p.system == "hr:workday" for p in people)
    chidi = people[2]
    assert chidi.display_name == "Okafor, Chidi"  # quoted comma
    assert chidi.worker_type == "contractor"
    assert chidi.emails == ["chidi.okafor@example.com"] and chidi.usernames == ["cokafor"]
    assert chidi.hired == utc(2023, 9, 18) and chidi.terminated == utc(2025, 3, 31)
    assert people[0].terminated is None and people[0].manager_id is None
    lena = people[3]
    assert (lena.worker_type, lena.supplier_id, lena.title) == ("supplier", "SUP-0017", "Validation Consultant")
    assert people[4].display_name == "Jürgen Groß"


def test_hr_events():
    events = records("hr_events", "hr_events.csv")
    assert [e.event_type for e in events] == ["hire", "termination", "transfer", "leave", "return", "termination"]
    last = events[-1]
    assert isinstance(last, WorkflowRecord) and (last.kind, last.system) == ("hr_event", "hr:workday")
    assert (last.record_id, last.subject, last.requester) == ("HRE-2025-000311", "W-100871", "hr.partner@example.com")
    assert last.effective == utc(2025, 3, 31)
    assert last.opened == utc(2025, 3, 28, 15, 42, 10)  # +01:00 offset converted to UTC


def test_qms_exceptions_dates_in_berlin_and_approvers_split():
    recs = records("qms_exceptions", "qms_exceptions.csv")
    assert [r.record_id for r in recs] == ["EXC-0042", "EXC-0043", "EXC-0044", "EXC-0045"]
    exc = recs[0]
    assert (exc.kind, exc.system, exc.subject, exc.scope) == ("exception", "qms:cq", "chidi.okafor@example.com", "SAP_ALL")
    assert exc.approvers == ["anna.schmidt@example.com", "markus.weber@example.com"]
    assert exc.decided == utc(2025, 2, 13, 23)  # 14.02.2025 00:00 Europe/Berlin (CET)
    assert exc.effective == utc(2025, 2, 14, 23)
    assert exc.expires == utc(2025, 3, 30, 22)  # 31.03.2025 00:00 CEST
    assert exc.status == "approved" and exc.owner == "anna.schmidt@example.com"
    assert exc.compensating_control == "Session recorded; QA reviews the log within 24h"
    assert exc.attributes == {"target_system": "SAP S/4HANA PRD",
                              "justification": "Emergency fix for batch release, see CR-1187"}
    pending = recs[2]
    assert pending.approvers == [] and pending.decided is None and pending.status == "pending approval"


def test_formula_looking_values_are_kept_verbatim():
    recs = records("qms_exceptions", "qms_exceptions.csv")
    exc = recs[3]
    assert exc.attributes["justification"] == '=HYPERLINK("http://intranet.example.com/sop/QA-017","SOP QA-017")'
    assert exc.compensating_control == "-monthly reconciliation"
    assert exc.owner == "@markus.weber"


def test_qms_training_from_gzip():
    recs = records("qms_training", "qms_training.csv.gz")
    assert len(recs) == 4 and all(r.kind == "training_attestation" for r in recs)
    first = recs[0]
    assert (first.subject, first.course) == ("anna.schmidt@example.com", "GMP Basics (SOP-QA-001 rev 7)")
    assert first.completed == utc(2025, 1, 19, 23) and first.valid_until == utc(2026, 1, 19, 23)
    assert recs[-1].status == "expired"


def test_qms_suppliers():
    recs = records("qms_suppliers", "qms_suppliers.csv")
    assert [r.record_id for r in recs] == ["SUP-0017", "SUP-0023", "SUP-0031"]
    acme = recs[2]
    assert (acme.subject, acme.qualification_status, acme.scope) == ("Acme Calibration, Inc.", "disqualified", None)
    assert acme.contract_end == utc(2024, 2, 28, 23) and acme.next_review is None
    assert recs[1].qualification_status == "conditionally approved"


def test_qms_changes_multiline_cell_is_one_record_with_its_exact_bytes():
    accepted, quarantined = run(get_source("csv", mapping="qms_changes"), FIX / "qms_changes.csv")
    assert quarantined == []
    positions = [ch.position for ch, _ in accepted]
    assert positions == ["qms_changes.csv:2", "qms_changes.csv:4", "qms_changes.csv:5"]
    raw_lines = (FIX / "qms_changes.csv").read_bytes().split(b"\n")
    assert accepted[0][0].data == b"\n".join(raw_lines[1:3])
    assert accepted[1][0].data == raw_lines[3]
    cr = accepted[0][1]
    assert cr.attributes == {"title": 'Grant emergency SAP_ALL for batch release fix\n(see EXC-0042, "urgent")'}
    assert cr.approvers == ["markus.weber@example.com", "anna.schmidt@example.com"]
    assert (cr.opened, cr.decided, cr.effective) == (utc(2025, 2, 14, 7, 5), utc(2025, 2, 14, 8, 30, 12),
                                                     utc(2025, 2, 14, 9, 2))
    assert accepted[2][1].opened == utc(2025, 3, 10, 9, 41, 27) and accepted[2][1].effective is None


def test_row_bytes_exclude_bom_and_line_end():
    accepted, _ = run(get_source("csv", mapping="hr_workers"), FIX / "hr_workers.csv")
    assert accepted[0][0].data == b"W-100012,Markus Weber,markus.weber@example.com,mweber,Employee,,,Quality Operations,Head of Quality,2012-01-09,"


def test_source_name_wins_over_the_mapping_system():
    src = get_source("csv", mapping="qms_training")
    ch = next(iter(src.read(FIX / "qms_training.csv.gz", "t")))
    ctx = Context("csv", "t", ch.position, "", "0" * 64, source_name="qms:cq-eu")
    assert src.normalize(ch.obj, ctx)[0].system == "qms:cq-eu"


# ---------------------------------------------------------------- quarantine

def test_bad_rows_are_quarantined_one_by_one_and_the_rest_continues():
    accepted, quarantined = run(get_source("csv", mapping="qms_exceptions"), FIX / "qms_exceptions_bad.csv")
    assert [r.record_id for _, r in accepted] == ["EXC-0050", "EXC-0055"]
    reasons = {pos.rsplit(":", 1)[1]: reason for pos, reason, _ in quarantined}
    assert reasons == {
        "3": "column 'Expiry Date' value '2025-03-31' does not match format '%d.%m.%Y'",
        "4": "missing required subject (column 'Subject' is empty)",
        "5": "row has 11 fields, the header has 12",
        "6": "invalid utf-8 in row at byte 80",
    }
    assert not any(file_level for _, _, file_level in quarantined)


def test_invalid_utf8_row_keeps_its_exact_bytes():
    src = get_source("csv", mapping="qms_exceptions")
    bad = [ch for ch in src.read(FIX / "qms_exceptions_bad.csv", "b") if ch.error and "utf-8" in ch.error]
    assert len(bad) == 1 and b"M\xfcller" in bad[0].data


def test_unmapped_enum_bad_date_and_empty_id_in_hr_feed():
    accepted, quarantined = run(get_source("csv", mapping="hr_workers"), FIX / "hr_workers_bad.csv")
    assert [r.person_id for _, r in accepted] == ["W-100303"]  # "employee" matches the map ignoring case
    assert [reason for _, reason, _ in quarantined] == [
        "column 'Worker Type' value 'Intern' is not in the mapping's map (known: Employee, Contractor, Supplier)",
        "column 'Hire Date' value '03/01/2025' does not match format '%Y-%m-%d'",
        "missing person_id (column 'Employee ID' is empty)",
    ]


def test_naive_timestamp_without_declared_timezone_is_rejected():
    accepted, quarantined = run(get_source("csv", mapping="qms_changes"), FIX / "qms_changes_naive.csv")
    assert [r.record_id for _, r in accepted] == ["CR-1202"]
    assert quarantined == [
        ("qms_changes_naive.csv:2",
         "column 'Opened' value '2025-03-03 09:00:00' has no timezone and the mapping declares none", False),
        ("qms_changes_naive.csv:3",
         "column 'Implemented' value '2025-03-04 08:00' has no timezone and the mapping declares none", False),
    ]


def test_missing_header_columns_give_one_file_error():
    chunks = list(get_source("csv", mapping="qms_exceptions").read(FIX / "qms_exceptions_missing_columns.csv", "m"))
    assert len(chunks) == 1
    ch = chunks[0]
    assert ch.file_level and ch.position == "m:1"
    assert ch.error.startswith("header lacks mapped columns 'Compensating Control', 'Expiry Date'; no rows read")


def test_long_rows_are_capped_and_reading_continues(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", 400)
    monkeypatch.setattr(tabular, "_PIECE", 64)  # exercise the piecewise line reading too
    hdr = b"Supplier ID,Supplier Name,Qualification Status,Contract Start,Contract End,Approved Scope,Owner,Next Review\n"
    good = b"SUP-0017,Vogel Validation GmbH,Approved,2024-01-01,2025-12-31,LIMS,anna@example.com,\n"
    p = tmp_path / "s.csv"
    p.write_bytes(hdr + good + b"SUP-0099,Big," + b"x" * 5000 + b",Approved,,,,,\n" + good)
    accepted, quarantined = run(get_source("csv", mapping="qms_suppliers"), p)
    assert [ch.position for ch, _ in accepted] == ["s.csv:2", "s.csv:4"]
    assert quarantined == [("s.csv:3", "row of 5028 bytes exceeds the 400 byte limit", False)]


def test_unclosed_quote_sets_the_rest_aside_as_one_record(tmp_path):
    hdr = b"Supplier ID,Supplier Name,Qualification Status,Contract Start,Contract End,Approved Scope,Owner,Next Review\n"
    good = b"SUP-0017,Vogel Validation GmbH,Approved,2024-01-01,2025-12-31,LIMS,anna@example.com,\n"
    p = tmp_path / "s.csv"
    p.write_bytes(hdr + good + b'SUP-0018,"Unclosed GmbH,Approved,2024-01-01,2025-12-31,LIMS,a,\n' + good + good)
    accepted, quarantined = run(get_source("csv", mapping="qms_suppliers"), p)
    assert len(accepted) == 1
    assert quarantined == [("s.csv:3", "malformed CSV row: unexpected end of data (lines 3-5, unclosed quote?)", False)]


def test_stray_quote_inside_a_field_is_data_but_after_a_quoted_field_is_an_error(tmp_path):
    hdr = b"Supplier ID,Supplier Name,Qualification Status,Contract Start,Contract End,Approved Scope,Owner,Next Review\n"
    p = tmp_path / "s.csv"
    p.write_bytes(hdr + b'SUP-1,5" Pipes Ltd,Approved,,,,,\n' + b'SUP-2,"Acme" Ltd,Approved,,,,,\n')
    accepted, quarantined = run(get_source("csv", mapping="qms_suppliers"), p)
    assert accepted[0][1].subject == '5" Pipes Ltd'
    assert quarantined == [("s.csv:3", "malformed CSV row: ',' expected after '\"'", False)]


def test_file_level_errors(tmp_path):
    src = get_source("csv", mapping="qms_training")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert [(c.error, c.file_level) for c in src.read(empty, "e")] == [("empty file: no header row", True)]
    header_only = tmp_path / "h.csv"
    header_only.write_bytes(b"Record ID,Trainee,Course,Completed On,Valid Until,Status\r\n\r\n")
    assert list(src.read(header_only, "h")) == []
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes((FIX / "qms_training.csv.gz").read_bytes()[:-40])
    chunks = list(src.read(truncated, "t"))
    assert chunks[-1].file_level and chunks[-1].error.startswith("cannot read file: ")
    missing = list(src.read(tmp_path / "nope.csv", "nope"))
    assert len(missing) == 1 and missing[0].file_level and missing[0].error.startswith("cannot open file")


def test_blank_lines_and_separator_only_rows_are_not_records(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"Record ID,Trainee,Course,Completed On,Valid Until,Status\n\n,,,,,\n"
                  b"TRN-1,a@example.com,GMP,2025-01-20,,Completed\n\n")
    accepted, quarantined = run(get_source("csv", mapping="qms_training"), p)
    assert [ch.position for ch, _ in accepted] == ["t.csv:4"] and quarantined == []


def test_header_matching_ignores_case_and_spaces(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"record id , TRAINEE,Course,Completed On,Valid Until,Status\nTRN-1,a@example.com,GMP,2025-01-20,,done\n")
    accepted, quarantined = run(get_source("csv", mapping="qms_training"), p)
    assert quarantined == [] and accepted[0][1].record_id == "TRN-1" and accepted[0][1].subject == "a@example.com"


def test_semicolon_delimiter_and_latin1_encoding(tmp_path):
    m = load_mapping(MAPPINGS / "qms_training.yaml").model_dump()
    m.update(delimiter=";", encoding="cp1252")
    p = tmp_path / "t.csv"
    p.write_bytes("Record ID;Trainee;Course;Completed On;Valid Until;Status\nTRN-1;j.gross@example.com;"
                  "Einführung GMP;2025-01-20;2026-01-20;Abgeschlossen\n".encode("cp1252"))
    accepted, quarantined = run(get_source("csv", mapping=m), p)
    assert quarantined == [] and accepted[0][1].course == "Einführung GMP"


# ---------------------------------------------------------------- JSON

def test_json_lines_variant_with_api_names_lists_and_nested_keys():
    src = get_source("json", mapping=FIX / "qms_exceptions_sf.yaml")
    accepted, quarantined = run(src, FIX / "qms_exceptions_sf.jsonl")
    assert [r.record_id for _, r in accepted] == ["EXC-0042", "EXC-0043"]
    exc = accepted[0][1]
    assert exc.approvers == ["anna.schmidt@example.com", "markus.weber@example.com"]
    assert exc.decided == utc(2025, 2, 14, 9, 30, 12)  # "+0000" offset, ISO 8601 declared for this column
    assert exc.expires == utc(2025, 3, 30, 22)
    assert exc.attributes == {"target_system": "SAP S/4HANA PRD", "risk": "3", "sobject": "CQ_Access_Exception__c"}
    assert quarantined == [("qms_exceptions_sf.jsonl:3",
                            "column 'CQ_Expiry_Date__c' value '31.12.2025' does not match format '%Y-%m-%d'",
                            False)]


def test_json_array_file(tmp_path):
    lines = (FIX / "qms_exceptions_sf.jsonl").read_bytes().splitlines()
    p = tmp_path / "export.json"
    p.write_bytes(b'{"value": [' + b",\n".join(lines[:2]) + b"]}")
    accepted, quarantined = run(get_source("json", mapping=FIX / "qms_exceptions_sf.yaml"), p)
    assert len(accepted) == 2 and quarantined == []


def test_format_and_source_type_must_agree():
    with pytest.raises(MappingError, match="declares format json but the source type is csv"):
        get_source("csv", mapping=FIX / "qms_exceptions_sf.yaml")


# ---------------------------------------------------------------- events, options, constants

EVENT_MAPPING = {
    "system": "pam:cyberark",
    "record": "event",
    "timezone": "UTC",
    "id": "Audit ID",
    "fields": {
        "time": {"column": "Time", "format": "%Y-%m-%d %H:%M:%S"},
        "action": {"column": "Action", "map": {"Add User": "account.create", "Retrieve Password": "other"}},
        "vendor_action": "Action",
        "actor.id": "User",
        "target.id": "Target User",
        "target.system": {"column": "Safe", "default": "cyberark"},
        "approval_ref": "Reason",
        "outcome": {"column": "Result", "lower": True},
        "attributes.ticket_tags": {"column": "Tags", "split": "|"},
    },
    "constants": {"environment": "prod", "actor.type": "human"},
}


def test_event_records(tmp_path):
    p = tmp_path / "audit.csv"
    p.write_bytes(b"Audit ID,Time,Action,User,Target User,Safe,Reason,Result,Tags\n"
                  b"A1,2025-03-01 10:00:00,Add User,admin1,jdoe,,per CHG0031337 approved,Success,a|b\n"
                  b"A2,2025-03-01 10:05:00,Delete Safe,admin1,,,,Success,\n"
                  b"A3,,Add User,admin1,jdoe,,,Success,\n"
                  b"A4,2025-03-01 10:06:00,Add User,admin1,jdoe,,,Partial,\n")
    accepted, quarantined = run(get_source("csv", mapping=EVENT_MAPPING), p)
    assert len(accepted) == 1
    ev = accepted[0][1]
    assert isinstance(ev, IdentityEvent)
    assert (ev.event_id, ev.source, ev.source_type, ev.time) == ("A1", "pam:cyberark", "csv", utc(2025, 3, 1, 10))
    assert (ev.action, ev.vendor_action, ev.class_uid, ev.activity_id) == ("account.create", "Add User", 3001, 1)
    assert (ev.actor.id, ev.actor.type, ev.target.id, ev.target.system) == ("admin1", "human", "jdoe", "cyberark")
    assert ev.approval_ref == "CHG0031337" and ev.outcome == "success" and ev.environment == "prod"
    assert ev.attributes == {"ticket_tags": ["a", "b"]}
    assert [r for _, r, _ in quarantined] == [
        "column 'Action' value 'Delete Safe' is not in the mapping's map (known: Add User, Retrieve Password)",
        "missing time (column 'Time' is empty)",
        "column 'Result' value 'partial' is not a outcome (success, failure, unknown); add it to the field's map",
    ]


def test_action_must_be_a_model_action(tmp_path):
    m = {**EVENT_MAPPING, "fields": {**EVENT_MAPPING["fields"], "action": "Action"}}
    p = tmp_path / "audit.csv"
    p.write_bytes(b"Audit ID,Time,Action,User,Target User,Safe,Reason,Result,Tags\n"
                  b"A1,2025-03-01 10:00:00,Add User,admin1,jdoe,,,Success,\n"
                  b"A2,2025-03-01 10:00:00,account.create,admin1,jdoe,,,Success,\n")
    accepted, quarantined = run(get_source("csv", mapping=m), p)
    assert len(accepted) == 1
    assert quarantined[0][1].startswith("column 'Action' value 'Add User' is not a action (account.create, ")


def test_map_default_and_null_and_constants(tmp_path):
    m = {
        "system": "qms:cq", "record": "workflow", "kind": "recertification_decision", "timezone": "Europe/Berlin",
        "id": "ID",
        "fields": {
            "subject": "User",
            "decision": {"column": "Decision", "map": {"Keep": "keep", "Remove": "revoke", "n/a": None},
                         "default": "keep"},
            "decided": {"column": "Decided", "format": "%d.%m.%Y %H:%M"},
        },
        "constants": {"environment": "prod", "business_unit": "Quality", "expires": "2025-12-31T23:59:59+01:00"},
        "required": ["subject", "environment"],
    }
    p = tmp_path / "r.csv"
    p.write_bytes(b"ID,User,Decision,Decided\nR1,a,Remove,01.03.2025 14:30\nR2,b,Whatever,\nR3,c,n/a,\nR4,d,,\n")
    accepted, quarantined = run(get_source("csv", mapping=m), p)
    assert quarantined == []
    recs = [r for _, r in accepted]
    assert [r.decision for r in recs] == ["revoke", "keep", "keep", "keep"]
    assert recs[0].decided == utc(2025, 3, 1, 13, 30)
    assert recs[0].environment == "prod" and recs[0].expires == utc(2025, 12, 31, 22, 59, 59)


def test_toml_mapping(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('system = "qms:cq"\nkind = "training_attestation"\ntimezone = "UTC"\ndate_format = "%Y-%m-%d"\n'
                 'id = "Record ID"\n[fields]\nsubject = "Trainee"\ncourse = "Course"\n'
                 'completed = "Completed On"\nstatus = { column = "Status", lower = true }\n')
    recs = [r for _, r in run(get_source("csv", mapping=p), FIX / "qms_training.csv.gz")[0]]
    assert len(recs) == 4 and recs[0].completed == utc(2025, 1, 20) and recs[0].status == "completed"


def test_normalize_rejects_a_non_object():
    src = get_source("json", mapping=FIX / "qms_exceptions_sf.yaml")
    with pytest.raises(Reject):
        src.normalize([1, 2], Context("json", "f", "f:1", "", "0" * 64))


def test_cli_ingest_accounts_for_every_row(tmp_path):
    from accessproof.cli import app

    res = CliRunner().invoke(app, ["ingest", "csv", str(FIX / "qms_exceptions_bad.csv"),
                                   "--mapping", str(MAPPINGS / "qms_exceptions.yaml"),
                                   "--json", "--store", str(tmp_path / "st")])
    assert res.exit_code == 0, res.output
    s = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert (s["read"], s["accepted"], s["quarantined"]) == (6, 2, 4)


# ---------------------------------------------------------------- bad mappings

@pytest.mark.parametrize(("fixture", "expected"), [
    ("unknown_field.yaml", "unknown field 'subjet' for record: workflow (did you mean 'subject'?)"),
    ("missing_id.yaml", "missing 'id': the column giving each record's id"),
    ("unknown_kind.yaml", "unknown kind 'waiver' (known: access_request, approval, "),
    ("bad_timezone.yaml", "timezone: unknown timezone 'Europe/Berln' (use an IANA name such as Europe/Berlin, or UTC)"),
    ("not_yaml.yaml", "not valid YAML: line "),
])
def test_bad_mapping_files_give_one_line_errors(fixture, expected):
    with pytest.raises(MappingError) as e:
        load_mapping(FIX / "bad_mappings" / fixture)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(FIX / "bad_mappings" / fixture) + ": ")
    assert expected in msg


BASE = {"system": "qms:cq", "kind": "exception", "id": "ID", "fields": {"subject": "S"}}


@pytest.mark.parametrize(("change", "expected"), [
    ({"record": "person", "kind": None}, None),
    ({"record": "ticket"}, "record: Input should be 'workflow', 'person' or 'event'"),
    ({"kind": None}, "record: workflow needs a kind"),
    ({"record": "person"}, "kind applies only to record: workflow, not record: person"),
    ({"colums": {}}, "unknown key 'colums'"),
    ({"fields": {"subject": {"colum": "S"}}}, "unknown key 'fields.subject.colum' (did you mean 'column'?)"),
    ({"fields": {"record_id": "ID"}}, "'record_id' comes from the 'id' key, not from fields"),
    ({"fields": {"subject": {"column": "S", "split": ";"}}}, "field 'subject': split applies only to list fields"),
    ({"fields": {"scope": {"column": "S", "format": "%Y"}}}, "field 'scope': format/timezone apply only to date"),
    ({"fields": {"expires": {"column": "E", "format": "DD.MM.YYYY"}}}, "is not a strptime format"),
    ({"fields": {"expires": {"column": "E", "timezone": "CEST+2"}}}, "unknown timezone 'CEST+2'"),
    ({"fields": {"decision": {"column": "D", "map": {"Yes": "ok"}}}}, "map gives 'ok', not one of approved"),
    ({"required": ["expires"]}, "required field 'expires' is not mapped in fields"),
    ({"constants": {"subject": "x"}}, "field 'subject' is both in fields and in constants"),
    ({"constants": {"expires": "2025-01-01"}}, "has no timezone and the mapping declares none"),
    ({"delimiter": ";;"}, "delimiter must be one character"),
    ({"encoding": "utf-16"}, "encoding 'utf-16' is not ASCII-compatible"),
    ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
    ({"id": ""}, "id: must not be empty"),
    ({"fields": {"attributes.": "X"}}, "needs a name after 'attributes.'"),
])
def test_bad_mappings(change, expected):
    data = {**BASE, **change}
    data = {k: v for k, v in data.items() if v is not None}
    if expected is None:
        data["fields"] = {"display_name": "N"}
        assert mapping_from_dict(data).record == "person"
        return
    with pytest.raises(MappingError) as e:
        mapping_from_dict(data)
    assert "\n" not in str(e.value)
    assert expected in str(e.value)


def test_person_mapping_cannot_have_attributes():
    with pytest.raises(MappingError, match="person records have no attributes"):
        mapping_from_dict({"system": "hr:x", "record": "person", "id": "ID", "fields": {"attributes.x": "X"}})


def test_yaml_yes_no_stay_text_and_duplicate_keys_are_errors(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("system: qms:cq\nkind: exception\nid: ID\nfields:\n  status: {column: S, map: {Yes: open, No: closed}}\n")
    assert load_mapping(p).fields["status"].map == {"Yes": "open", "No": "closed"}
    p.write_text("system: qms:cq\nkind: exception\nid: ID\nfields:\n  subject: A\n  subject: B\n")
    with pytest.raises(MappingError, match="key 'subject' given twice"):
        load_mapping(p)


def test_missing_or_absent_mapping():
    with pytest.raises(MappingError, match=r"mapping file not found: nope\.yaml"):
        load_mapping("nope.yaml")
    with pytest.raises(MappingError, match="the csv source needs a mapping file"):
        get_source("csv")


def test_gzip_fixture_is_really_gzip():
    assert gzip.decompress((FIX / "qms_training.csv.gz").read_bytes()).startswith(b"Record ID,Trainee")
