"""Scheduled testing: fire times from cron, a due run that runs and is sealed, missed fire times reported
(sealed rows and schedule.missed events), the schedules file, bad input, and the server's own jobs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from accessproof.ledger import open_ledger
from accessproof.server import config as C
from accessproof.server import outbox as O
from accessproof.server import scheduler as S
from accessproof.server.scheduler import Schedule, ScheduleError

NOW = datetime(2026, 7, 3, 2, 5, tzinfo=UTC)


def nightly(**over) -> Schedule:
    return Schedule(**{"name": "nightly", "kind": "assessment", "cron": "0 2 * * *",
                       "select": ["access_without_approval"], **over})


def created(store, name: str, when: datetime) -> None:
    store.execute("UPDATE schedules SET created = ? WHERE name = ?", [when, name])


def test_fire_times_follow_cron_in_the_schedules_time_zone():
    s = nightly(timezone="Europe/Berlin")
    times, n = s.fire_times(datetime(2026, 6, 30, 23, tzinfo=UTC), datetime(2026, 7, 3, 23, tzinfo=UTC))
    assert n == 3 and times == [datetime(2026, 7, d, 0, 0, tzinfo=UTC) for d in (1, 2, 3)]  # 02:00 CEST
    times, n = s.fire_times(datetime(2026, 6, 30, 23, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC), limit=5)
    # CET from 25 October; 02:00 on that night happens twice on the wall clock and fires once
    assert n == 183 and len(times) == 5 and times[-1] == datetime(2026, 12, 30, 1, 0, tzinfo=UTC)
    times, n = s.fire_times(datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC))
    assert times == [datetime(2026, 10, 25, 0, tzinfo=UTC), datetime(2026, 10, 26, 1, tzinfo=UTC)]


def test_plan_runs_the_latest_fire_time_within_grace_and_misses_the_rest(store):
    S.add_schedule(store, nightly(grace_seconds=900))
    created(store, "nightly", NOW - timedelta(days=3))
    due, missed = S.plan(store, NOW)
    assert [(s.name, t) for s, t in due] == [("nightly", datetime(2026, 7, 3, 2, tzinfo=UTC))]
    [(_, times, total)] = missed
    # created 30 June 02:05: the fire times since are 1, 2 and 3 July
    assert times == [datetime(2026, 7, 1, 2, tzinfo=UTC), datetime(2026, 7, 2, 2, tzinfo=UTC)] and total == 2
    due, missed = S.plan(store, NOW + timedelta(hours=1))  # past the grace: today's is missed too
    assert due == [] and missed[0][2] == 3


def test_missed_runs_are_recorded_sealed_and_announced_once(store, receiver):
    O.add_endpoint(store, O.Endpoint("ops", receiver.url, types=["schedule.missed"]))
    S.add_schedule(store, nightly())
    created(store, "nightly", NOW - timedelta(days=2, hours=1))
    report = S.run_due(store, NOW + timedelta(hours=1))  # two days down, and today's grace has passed
    assert report.ran == []
    assert [r["scheduled_for"] for r in report.missed] == [datetime(2026, 7, d, 2, tzinfo=UTC) for d in (1, 2, 3)]
    rows = S.schedule_runs(store, status="missed")
    assert len(rows) == 3 and all(r["ledger_index"] is not None for r in rows)
    assert all("past the misfire grace of 900s" in r["message"] for r in rows)
    ledger = open_ledger(store.dir, store.con)
    sealed = {ledger.storage.get_payloads("schedule_run", [r["run_id"]]).get(r["run_id"]) is not None for r in rows}
    assert sealed == {True}
    assert ledger.find(rows[0]["run_id"], "schedule_run") == [rows[0]["ledger_index"]]
    events = O.list_events(store, type_="schedule.missed")
    assert len(events) == 3 and {e["subject"] for e in events} == {"nightly"}
    assert sorted(datetime.fromisoformat(e["data"]["scheduled_for"]) for e in events) == [
        r["scheduled_for"] for r in report.missed]
    assert S.run_due(store, NOW + timedelta(hours=2)).missed == []  # reported once, not again
    assert O.deliver_due(store).delivered == 3
    assert len(receiver.requests) == 3


def test_a_due_run_assesses_seals_its_control_runs_and_itself(small_store):
    store = small_store
    S.add_schedule(store, nightly(cron="*/5 * * * *"))
    now = datetime.now(UTC)
    created(store, "nightly", now - timedelta(minutes=6))
    report = S.run_due(store, now)
    [run] = report.ran
    assert run["status"] == "completed", run["message"]
    runs = store.query_dicts("SELECT run_id, control_id, status FROM control_runs WHERE assessment_id = ?",
                             [run["result_id"]])
    assert [(r["control_id"], r["status"]) for r in runs] == [("access_without_approval", "completed")]
    ledger = open_ledger(store.dir, store.con)
    assert ledger.find(runs[0]["run_id"], "control_result")  # the control run is sealed ...
    assert ledger.find(run["run_id"], "schedule_run") == [run["ledger_index"]]  # ... and the schedule run
    cp = ledger.latest_checkpoint()
    assert cp is not None and cp.size == ledger.size  # signed after the run
    assert S.run_due(store, now).ran == []  # that fire time is done


def test_fire_times_that_pile_up_within_the_grace_run_once(store):
    S.add_schedule(store, Schedule("wt", "walkthrough", "*/5 * * * *", grace_seconds=3600))
    now = datetime(2026, 7, 3, 2, 1, tzinfo=UTC)
    created(store, "wt", now - timedelta(minutes=12))
    calls = []

    def walk(store, **kw):
        calls.append(kw)
        return {"walkthrough_id": "wt-1", "passed": True, "items": [{}], "ledger_index": 1}

    report = S.run_due(store, now, walkthrough=walk)
    assert [r["scheduled_for"] for r in report.ran] == [datetime(2026, 7, 3, 2, 0, tzinfo=UTC)]
    assert len(calls) == 1 and calls[0] == {"relink": True}
    assert report.ran[0]["message"].startswith("walkthrough wt-1 passed")
    assert [r["scheduled_for"] for r in report.missed] == [datetime(2026, 7, 3, 1, 50, tzinfo=UTC),
                                                          datetime(2026, 7, 3, 1, 55, tzinfo=UTC)]
    assert all("a later fire time came before it could run" in r["message"] for r in report.missed)


def test_a_failing_run_is_recorded_as_error_and_the_schedule_carries_on(store):
    S.add_schedule(store, Schedule("wt", "walkthrough", "*/5 * * * *"))
    now = datetime.now(UTC)
    created(store, "wt", now - timedelta(minutes=6))

    def broken(store, **kw):
        raise RuntimeError("no population in this store")

    [run] = S.run_due(store, now, walkthrough=broken).ran
    assert run["status"] == "error" and "no population" in run["message"]
    assert run["ledger_index"] is not None


@pytest.mark.parametrize(("schedule", "message"), [
    (nightly(cron="61 * * * *"), "61"),
    (nightly(cron="every night"), "Wrong number of fields"),
    (nightly(timezone="Mars/Olympus"), "Mars/Olympus"),
    (nightly(kind="audit"), "kind must be"),
    (nightly(name="my schedule"), "letters, digits"),
    (nightly(select=["no_such_control"]), "matches no control"),
    (nightly(grace_seconds=-1), ">= 0"),
    (Schedule("w", "walkthrough", "0 3 * * 1", params={"foo": 1}), "takes no foo"),
])
def test_bad_schedules_are_refused_with_one_line(store, schedule, message):
    with pytest.raises(ScheduleError, match=message) as e:
        S.add_schedule(store, schedule)
    assert "\n" not in str(e.value)
    assert S.list_schedules(store) == []


def test_schedule_changes_are_sealed_admin_actions(store):
    from accessproof.api.actions import admin_actions

    S.add_schedule(store, nightly())
    with pytest.raises(ScheduleError, match="exists"):
        S.add_schedule(store, nightly())
    S.add_schedule(store, nightly(cron="0 3 * * *"), replace=True)
    assert S.remove_schedule(store, "nightly") and not S.remove_schedule(store, "nightly")
    assert [a["action"] for a in admin_actions(store)] == ["schedule.add", "schedule.replace", "schedule.remove"]


def test_the_schedules_file_adds_and_replaces_and_reports_bad_entries(store, tmp_path, receiver):
    f = tmp_path / "jobs.toml"
    f.write_text(f"""
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
timezone = "Europe/Berlin"
select = ["soc2"]
params = {{ revocation_sla_hours = 48 }}

[[endpoint]]
name = "siem"
url = "{receiver.url}"
mode = "binary"
secret_env = "SIEM_SECRET"
types = "finding.*"
""")
    schedules, endpoints = C.apply(store, f)
    assert ([x.name for x in schedules], [x.name for x in endpoints]) == (["nightly"], ["siem"])
    [s] = S.list_schedules(store)
    assert (s.timezone, s.select, s.params) == ("Europe/Berlin", ["soc2"], {"revocation_sla_hours": 48})
    [ep] = O.endpoints(store)
    assert (ep.mode, ep.secret_env, ep.types) == ("binary", "SIEM_SECRET", ["finding.*"])
    C.apply(store, f)  # applying again replaces, it does not fail
    for text, message in (("[[schedule]]\nname = 'x'\n", "cron is required"),
                          ("[[schedule]]\nname = 'x'\ncron = '0 2 * * *'\nwhen = 1\n", "unknown key"),
                          ("[[schedule]]\nname = 'x'\ncron = '0 2 * * *'\ngrace_seconds = 'soon'\n", "must be int"),
                          ("[jobs]\n", "unknown section"), ("schedule = [", "not TOML")):
        f.write_text(text)
        with pytest.raises(C.ConfigFileError, match=message):
            C.read(f)


def test_cli_schedule_commands_give_one_line_errors(tmp_path):
    from accessproof.cli import app

    runner = CliRunner()
    store = str(tmp_path / "store")
    r = runner.invoke(app, ["schedule", "add", "nightly", "--cron", "0 25 * * *", "--store", store])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "error:" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["schedule", "add", "nightly", "--cron", "0 2 * * *", "--select", "sod_conflict",
                            "--store", store])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["schedule", "list", "--format", "jsonl", "--store", store])
    assert '"name":"nightly"' in r.output
    r = runner.invoke(app, ["schedule", "remove", "nope", "--store", store])
    assert r.exit_code == 2 and "no schedule named nope" in r.output
    r = runner.invoke(app, ["outbox", "endpoint", "add", "x", "file:///etc/passwd", "--store", store])
    assert r.exit_code == 2 and "not an http(s) URL" in r.output
    r = runner.invoke(app, ["schedule", "run-due", "--store", store])
    assert r.exit_code == 0 and "nothing due" in r.output


def test_the_server_jobs_run_a_due_schedule_and_report_a_missed_one(small_store):
    store = small_store
    S.add_schedule(store, nightly(cron="* * * * *", grace_seconds=50))
    created(store, "nightly", datetime.now(UTC) - timedelta(minutes=2, seconds=30))
    jobs = S.ServerJobs(store, poll_seconds=30).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with jobs.lock:
                done = S.schedule_runs(store, status="completed")
            if done:
                break
            time.sleep(0.2)
    finally:
        jobs.shutdown()
    assert done, "the due fire time did not run"
    assert len(S.schedule_runs(store, status="missed")) >= 1  # the older fire time was past its grace
    assert O.list_events(store, type_="schedule.missed")


def test_a_scheduled_walkthrough_runs_and_is_sealed(demo_store):
    store = demo_store
    S.add_schedule(store, Schedule("walk", "walkthrough", "*/5 * * * *", params={"seed": 7}))
    now = datetime.now(UTC)
    created(store, "walk", now - timedelta(minutes=6))
    [run] = S.run_due(store, now).ran
    assert run["status"] == "completed", run["message"]
    assert run["result_id"].startswith("wt-")
    ledger = open_ledger(store.dir, store.con)
    assert ledger.find(run["result_id"], "walkthrough_result")  # the walkthrough sealed its result ...
    assert ledger.find(run["run_id"], "schedule_run") == [run["ledger_index"]]  # ... and the run is sealed


def test_expiring_exceptions_are_announced_once_within_the_window(demo_store):
    from accessproof.server.changes import expiring_exception_events

    store = demo_store
    as_of = store.query("SELECT max(time) FROM events")[0][0]
    rows = store.query("SELECT record_id, expires FROM ctl_exceptions WHERE approval_state = 'approved'")
    for days in (30, 80, 120):
        expected = sorted(r for r, exp in rows if exp is not None and as_of < exp <= as_of + timedelta(days=days))
        events = expiring_exception_events(store, days)
        assert sorted(e.subject for e in events) == expected
        assert all(0 < e.data["days_left"] <= days for e in events)
    assert expiring_exception_events(store, 0) == []
    S.add_schedule(store, nightly(cron="*/5 * * * *", exception_days=80))
    now = datetime.now(UTC)
    created(store, "nightly", now - timedelta(minutes=6))
    S.run_due(store, now)
    announced = O.list_events(store, type_="exception.expiring")
    expected = sorted(r for r, exp in rows if exp is not None and as_of < exp <= as_of + timedelta(days=80))
    assert expected and sorted(e["subject"] for e in announced) == expected
    assert O.emit(store, expiring_exception_events(store, 80)) == 0  # once per exception and expiry
