"""Scheduled control testing: cron-style schedules of assessments and walkthroughs, each run sealed, and a
missed run reported rather than skipped.

Schedules live in the store (table ``schedules``; ``accessproof schedule add|remove|apply``). Fire times
come from APScheduler's ``CronTrigger`` (crontab syntax, a time zone per schedule). ``run_due(store, now)``
is the whole policy, used alike by the server and by ``accessproof schedule run-due`` (for a plain cron
job): for each schedule, the fire times since its last recorded one (or since it was created) —

* the latest fire time within the schedule's misfire grace runs now: an assessment (relinking first) whose
  control runs are sealed as ``assess`` seals them, or a walkthrough; the run's own ``schedule_runs`` row
  is sealed too (ledger record type ``schedule_run``), with the finding changes announced as
  ``finding.opened`` / ``finding.resolved`` and exceptions expiring within ``exception_days`` as
  ``exception.expiring`` in the same transaction;
* every other fire time (the server was down, or busy past the grace) gets a ``schedule_runs`` row with
  status ``missed``, sealed, and a ``schedule.missed`` CloudEvent.

In the server, ``start(app)`` runs this on an APScheduler ``BackgroundScheduler``: a job that wakes at the
next fire time of any schedule (at least every 30 s, so added schedules are picked up), the
event-driven re-tester (``retest``), and the outbox deliverer. Each takes the app's store lock only
while it touches the store.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from accessproof.server import db
from accessproof.server.changes import (
    checkpoint_events,
    expiring_exception_events,
    finding_changes,
    finding_events,
    finding_states,
)
from accessproof.server.outbox import Backoff, deliver_due, emit, new_event
from accessproof.store.base import Store

log = logging.getLogger("accessproof.server")

KINDS = ("assessment", "walkthrough")
DEFAULT_GRACE = 900
DEFAULT_EXCEPTION_DAYS = 14
#: missed fire times recorded one by one at most (older ones are counted in the oldest row's message)
MAX_MISSED_ROWS = 100
_SCAN_LIMIT = 100_000


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message is one line."""


@dataclass
class Schedule:
    name: str
    kind: str
    cron: str
    timezone: str = "UTC"
    select: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    grace_seconds: int = DEFAULT_GRACE
    exception_days: int = DEFAULT_EXCEPTION_DAYS
    created: datetime | None = None

    def trigger(self) -> CronTrigger:
        try:
            return CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except (ValueError, TypeError, LookupError) as e:
            raise ScheduleError(f"schedule {self.name}: cron {self.cron!r} in {self.timezone}: "
                                f"{(str(e).splitlines() or ['invalid'])[0]}") from None

    def check(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ScheduleError(f"schedule name {self.name!r}: letters, digits, - and _ only")
        if self.kind not in KINDS:
            raise ScheduleError(f"schedule {self.name}: kind must be {' or '.join(KINDS)} (got {self.kind!r})")
        if self.grace_seconds < 0 or self.exception_days < 0:
            raise ScheduleError(f"schedule {self.name}: grace_seconds and exception_days must be >= 0")
        self.trigger()
        if self.kind == "walkthrough":
            import inspect

            takes = set(inspect.signature(_walkthrough_fn()).parameters) - {"store", "seal"}
            unknown = sorted(set(self.params) - takes)
            if unknown:
                raise ScheduleError(f"schedule {self.name}: a walkthrough takes no {', '.join(unknown)} "
                                    f"(it takes {', '.join(sorted(takes))})")
        if self.kind == "assessment" and self.select:
            from accessproof.controls.engine import ControlError, load_catalogue, select_controls

            try:
                select_controls(load_catalogue(), self.select)
            except ControlError as e:
                raise ScheduleError(f"schedule {self.name}: {e}") from None

    def fire_times(self, after: datetime, until: datetime, limit: int = _SCAN_LIMIT) -> tuple[list[datetime], int]:
        """(fire times in (after, until], how many there were); at most the newest ``limit`` are listed."""
        trig = self.trigger()
        out: list[datetime] = []
        n = 0
        step = timedelta(microseconds=1)
        # stepped in UTC (a local time plus a microsecond is ambiguous when summer time ends); the hour that
        # repeats then fires once, as cron does, not at both of its instants
        t = trig.get_next_fire_time(None, after.astimezone(UTC) + step)
        wall = None
        while t is not None and t <= until and n < _SCAN_LIMIT:
            if t.replace(tzinfo=None) != wall:
                n += 1
                out.append(t.astimezone(UTC))
                if len(out) > limit:
                    out.pop(0)
            wall = t.replace(tzinfo=None)
            t = trig.get_next_fire_time(None, t.astimezone(UTC) + step)
        return out, n

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "cron": self.cron, "timezone": self.timezone,
                "select": self.select, "params": self.params, "grace_seconds": self.grace_seconds,
                "exception_days": self.exception_days, "created": self.created}


# ---------------------------------------------------------------- the schedules table

def list_schedules(store: Store) -> list[Schedule]:
    if not db.ensure_tables(store):
        return []
    rows = store.query("SELECT name, kind, cron, timezone, selector_json, params_json, grace_seconds, "
                       "exception_days, created FROM schedules ORDER BY name")
    return [Schedule(r[0], r[1], r[2], r[3], orjson.loads(r[4] or "[]"), orjson.loads(r[5] or "{}"), int(r[6]),
                     int(r[7]), r[8]) for r in rows]


def get_schedule(store: Store, name: str) -> Schedule | None:
    return next((s for s in list_schedules(store) if s.name == name), None)


def add_schedule(store: Store, schedule: Schedule, *, by: str = "cli", replace: bool = False) -> Schedule:
    """Add (or replace) a schedule; the change is sealed as an administrative action. A replaced schedule
    keeps its creation time and run history, so its fire times carry on."""
    schedule.check()
    db.ensure_tables(store)
    old = get_schedule(store, schedule.name)
    if old is not None and not replace:
        raise ScheduleError(f"schedule {schedule.name} exists (remove it first, or replace it)")
    schedule.created = old.created if old is not None else datetime.now(UTC)
    with db.transaction(store):
        store.execute("DELETE FROM schedules WHERE name = ?", [schedule.name])
        store.execute("INSERT INTO schedules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [schedule.name, schedule.kind, schedule.cron, schedule.timezone,
                       orjson.dumps(schedule.select).decode(), orjson.dumps(schedule.params, default=str).decode(),
                       schedule.grace_seconds, schedule.exception_days, schedule.created])
    db.admin_action(store, "schedule.replace" if old is not None else "schedule.add", by, schedule.as_dict())
    return schedule


def remove_schedule(store: Store, name: str, *, by: str = "cli") -> bool:
    """Remove a schedule (its run history stays); sealed as an administrative action."""
    if get_schedule(store, name) is None:
        return False
    store.execute("DELETE FROM schedules WHERE name = ?", [name])
    db.admin_action(store, "schedule.remove", by, {"name": name})
    return True


def schedule_runs(store: Store, *, name: str | None = None, status: str | None = None, limit: int | None = 100
                  ) -> list[dict[str, Any]]:
    """Runs newest first (missed ones included)."""
    if not db.ensure_tables(store):
        return []
    where, params = [], []
    for col, val in (("schedule", name), ("status", status)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    sql = "SELECT * FROM schedule_runs" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY scheduled_for DESC, started DESC NULLS LAST"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return store.query_dicts(sql, params)


def last_fire(store: Store, name: str) -> datetime | None:
    row = store.query("SELECT max(scheduled_for) FROM schedule_runs WHERE schedule = ?", [name])
    return row[0][0] if row else None


# ---------------------------------------------------------------- what is due, what was missed

@dataclass
class DueReport:
    ran: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ran": self.ran, "missed": self.missed}


def plan(store: Store, now: datetime) -> tuple[list[tuple[Schedule, datetime]], list[tuple[Schedule, list[datetime], int]]]:
    """(runs due now, missed fire times per schedule with their total count) at ``now``."""
    due, missed = [], []
    for s in list_schedules(store):
        since = last_fire(store, s.name) or s.created or now
        times, total = s.fire_times(since, now, limit=MAX_MISSED_ROWS + 1)
        if not times:
            continue
        latest = times[-1]
        if (now - latest).total_seconds() <= s.grace_seconds:
            due.append((s, latest))
            times, total = times[:-1], total - 1
        if times:
            missed.append((s, times[-MAX_MISSED_ROWS:], total))
    return due, missed


def run_due(store: Store, now: datetime | None = None, *, lock: AbstractContextManager | None = None,
            walkthrough: Any = None) -> DueReport:
    """Record what was missed, then run what is due (see the module docstring)."""
    guard = lock or nullcontext()
    now = now or datetime.now(UTC)
    report = DueReport()
    with guard:
        due, missed = plan(store, now)
        for s, times, total in missed:
            report.missed += record_missed(store, s, times, total, now)
    for s, when in due:
        with guard:
            report.ran.append(run_schedule(store, s, when, walkthrough=walkthrough))
    if report.missed or report.ran:
        with guard:
            db.sign_checkpoint(store)
            emit(store, checkpoint_events(store))
    return report


def record_missed(store: Store, schedule: Schedule, times: list[datetime], total: int, now: datetime
                  ) -> list[dict[str, Any]]:
    """A sealed ``missed`` run and a ``schedule.missed`` event per fire time, in one transaction."""
    rows = []
    earlier = total - len(times)
    with db.transaction(store):
        for i, t in enumerate(times):
            late = (now - t).total_seconds()
            if late > schedule.grace_seconds:
                message = (f"not run: noticed {late:.0f}s after its fire time, past the misfire grace of "
                           f"{schedule.grace_seconds}s (the server was not running or was busy)")
            else:
                message = "not run: a later fire time came before it could run (only the latest one runs)"
            if i == 0 and earlier > 0:
                message += f"; {earlier} earlier fire time(s) missed too"
            row = _run_row(schedule, t, None, now, "missed", None, message)
            row["ledger_index"] = db.seal_record(store, "schedule_run", row["run_id"], row, when=t, kind="missed")
            _insert_run(store, row)
            emit(store, [new_event(store, "schedule.missed", schedule.name,
                                   {**row, "cron": schedule.cron, "timezone": schedule.timezone,
                                    "grace_seconds": schedule.grace_seconds, "detected": now},
                                   id=f"missed-{row['run_id']}")])
            rows.append(row)
    return rows


def _run_row(schedule: Schedule, scheduled_for: datetime, started: datetime | None, finished: datetime | None,
             status: str, result_id: str | None, message: str | None) -> dict[str, Any]:
    return {"run_id": uuid.uuid4().hex[:20], "schedule": schedule.name, "kind": schedule.kind,
            "scheduled_for": scheduled_for, "started": started, "finished": finished, "status": status,
            "result_id": result_id, "ledger_index": None, "message": message}


def _insert_run(store: Store, row: dict[str, Any]) -> None:
    cols = [c for c, _ in db.TABLES["schedule_runs"]]
    store.execute(f"INSERT INTO schedule_runs VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols])


# ---------------------------------------------------------------- running one

def run_schedule(store: Store, schedule: Schedule, scheduled_for: datetime, *, walkthrough: Any = None
                 ) -> dict[str, Any]:
    """Run one fire time of a schedule now; returns its sealed ``schedule_runs`` row."""
    started = datetime.now(UTC)
    before = finding_states(store)
    run_ids: list[str] = []
    status, result_id, message = "completed", None, None
    try:
        if schedule.kind == "assessment":
            result_id, run_ids, message = _assessment(store, schedule)
        else:
            result_id, message = _walkthrough(store, schedule, walkthrough)
    except Exception as e:  # the run is recorded as failed; the schedule carries on
        status = "error"
        message = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:400]}"
        log.warning("schedule %s failed: %s", schedule.name, message)
    row = _run_row(schedule, scheduled_for, started, datetime.now(UTC), status, result_id, message)
    with db.transaction(store):
        row["ledger_index"] = db.seal_record(store, "schedule_run", row["run_id"], row, when=row["finished"],
                                             kind=schedule.kind)
        _insert_run(store, row)
        if run_ids:
            changes = finding_changes(store, before, run_ids)
            emit(store, finding_events(store, changes, trigger=f"schedule:{schedule.name}"))
        emit(store, expiring_exception_events(store, schedule.exception_days))
    return row


def _assessment(store: Store, schedule: Schedule) -> tuple[str, list[str], str]:
    from accessproof.controls import assess
    from accessproof.evidence import seal_control_runs

    a = assess(store, schedule.select or None, params=schedule.params or None, relink=True)
    first = seal_control_runs(store, a.runs)
    c = a.counts()
    message = (f"{len(a.runs)} controls: {c['alarm']} alarm, {c['ok']} ok, {c['skip']} skip, {len(a.errors)} "
               f"failed; control runs sealed from ledger index {first}")
    return a.assessment_id, [r["run_id"] for r in a.runs], message


def _walkthrough(store: Store, schedule: Schedule, fn: Any = None) -> tuple[str | None, str]:
    """A walkthrough by ``accessproof.audit.walkthrough.run_walkthrough`` (relinking first; the schedule's
    params are its keywords: scenarios, seed, item), which seals its own result."""
    fn = fn or _walkthrough_fn()
    result = fn(store, **{"relink": True, **schedule.params})
    data = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    wid = data.get("walkthrough_id")
    verdict = "passed" if data.get("passed") else "did not pass"
    return wid, (f"walkthrough {wid} {verdict}: {len(data.get('items') or [])} item(s) walked, "
                 f"sealed at ledger index {data.get('ledger_index')}")


def _walkthrough_fn() -> Any:
    try:
        from accessproof.audit.walkthrough import run_walkthrough
    except ImportError:
        raise ScheduleError("walkthroughs are not available in this build "
                            "(accessproof.audit.walkthrough.run_walkthrough is missing)") from None
    return run_walkthrough


# ---------------------------------------------------------------- in the server

class ServerJobs:
    """The background work of ``accessproof serve``: schedules, re-tests after ingest, outbox delivery."""

    def __init__(self, store: Store, lock: threading.Lock | None = None, *, poll_seconds: float = 30.0,
                 deliver_seconds: float = 2.0, retest_seconds: float = 10.0, retest_gap: float = 5.0,
                 backoff: Backoff = Backoff()):
        self.store = store
        self.lock = lock or threading.Lock()
        self.poll = poll_seconds
        self.deliver_every = deliver_seconds
        self.retest_every = retest_seconds
        self.retest_gap = retest_gap
        self._retested = datetime.min.replace(tzinfo=UTC)
        self.backoff = backoff
        # a tick that finds the previous one still running (waiting for the store) is skipped: that is the
        # point of max_instances=1, not worth APScheduler's warning every two seconds
        quiet = logging.getLogger("accessproof.server.jobs")
        quiet.setLevel(logging.ERROR)
        self.sched = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(1), "outbox": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}, logger=quiet)
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0

    def start(self) -> ServerJobs:
        from accessproof.server import retest

        with self.lock:
            db.ensure_tables(self.store)
        now = datetime.now(UTC)
        self.sched.add_job(self._job(self.schedules_tick), "interval", seconds=self.poll, id="schedules",
                           next_run_time=now)
        self.sched.add_job(self._job(self.retest_tick), "interval", seconds=self.retest_every, id="retest",
                           next_run_time=now)
        self.sched.add_job(self._job(self.outbox_tick), "interval", seconds=self.deliver_every, id="outbox",
                           executor="outbox", next_run_time=now)
        self.sched.start()
        retest.register(self.store, self.wake_retest)
        return self

    def shutdown(self, timeout: float = 300.0) -> None:
        """Stop taking work, then wait for the running jobs (an assessment may take a while) to end.

        APScheduler's own waiting shutdown holds its job-store lock while joining the job threads, and a job
        that wakes another (``modify_job``) needs that lock: so the scheduler stops without waiting and the
        jobs are drained here."""
        from accessproof.server import retest

        retest.register(self.store, None)
        self._stopping.set()
        if self.sched.running:
            self.sched.shutdown(wait=False)
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _job(self, fn: Any) -> Any:
        def run() -> None:
            if self._stopping.is_set():
                return
            with self._idle:
                self._busy += 1
            try:
                fn()
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        run.__name__ = fn.__name__
        return run

    def _wake(self, job: str) -> None:
        if self._stopping.is_set():
            return
        with suppress(JobLookupError, SchedulerNotRunningError):  # shutting down
            self.sched.modify_job(job, next_run_time=datetime.now(UTC))

    def wake_retest(self) -> None:
        """Re-test soon: now, or ``retest_gap`` seconds after the last pass ended (under a stream of
        deliveries the store is not held by re-tests all the time; deliveries queued meanwhile coalesce)."""
        if self._stopping.is_set():
            return
        when = max(datetime.now(UTC), self._retested + timedelta(seconds=self.retest_gap))
        with suppress(JobLookupError, SchedulerNotRunningError):
            self.sched.modify_job("retest", next_run_time=when)

    def schedules_tick(self) -> None:
        try:
            run_due(self.store, lock=self.lock)
            with self.lock:
                nxt = self.next_fire()
        except Exception:
            log.exception("scheduled runs failed")
            return
        soon = datetime.now(UTC) + timedelta(seconds=self.poll)
        if nxt is not None and nxt < soon and not self._stopping.is_set():
            with suppress(JobLookupError, SchedulerNotRunningError):
                self.sched.modify_job("schedules", next_run_time=nxt)
        self._wake("outbox")

    def next_fire(self) -> datetime | None:
        now = datetime.now(UTC)
        times = [t for s in list_schedules(self.store)
                 if (t := s.trigger().get_next_fire_time(None, now)) is not None]
        return min(times).astimezone(UTC) if times else None

    def retest_tick(self) -> None:
        from accessproof.server import retest

        try:
            with self.lock:
                if not retest.pending(self.store):
                    return
                t = time.perf_counter()
                result = retest.process_queue(self.store)
                self._retested = datetime.now(UTC)
            log.info("re-tested %d queued deliveries in %.2fs (%s): %d finding changes%s", result.queued,
                     time.perf_counter() - t, ", ".join(f"{k} {v:.2f}s" for k, v in result.steps.items()),
                     len(result.changes), f" (error: {result.error})" if result.error else "")
        except Exception:
            log.exception("re-test failed")
            return
        self._wake("outbox")

    def outbox_tick(self) -> None:
        try:
            with self.lock:
                emit(self.store, checkpoint_events(self.store))
            deliver_due(self.store, lock=self.lock, backoff=self.backoff)
        except Exception:
            log.exception("outbox delivery failed")


def start(app: Any) -> ServerJobs:
    """What ``accessproof.api.app.create_app`` calls on startup: the app's store and lock, jobs started."""
    return ServerJobs(app.state.store, getattr(app.state, "store_lock", None)).start()
