"""The schedules-and-endpoints file: what ``accessproof schedule apply FILE`` writes into the store.

TOML, like the server's own settings (``accessproof serve --config``)::

    [[schedule]]
    name = "nightly"                 # letters, digits, - and _
    kind = "assessment"              # assessment | walkthrough
    cron = "0 2 * * *"               # crontab: minute hour day-of-month month day-of-week
    timezone = "Europe/Berlin"       # default UTC
    select = ["soc2"]                # controls (ids, frameworks, tag:…); default: all
    grace_seconds = 900              # a fire time older than this when noticed is reported missed
    exception_days = 14              # announce exceptions expiring within this many days (0: never)
    params = { revocation_sla_hours = 24 }   # control parameters (walkthrough: its arguments)

    [[endpoint]]
    name = "siem"
    url = "https://siem.example.com/hooks/accessproof"
    mode = "binary"                  # binary (ce-* headers) | structured (application/cloudevents+json)
    secret_env = "SIEM_HOOK_SECRET"  # or secret = "…": the HMAC key of Accessproof-Signature
    types = ["finding.*", "schedule.missed"]   # default: every event type
    max_attempts = 8

Entries are added, or replace the entry of the same name; entries the file does not name are left alone.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from accessproof.server.outbox import DEFAULT_MAX_ATTEMPTS, Endpoint, add_endpoint
from accessproof.server.scheduler import DEFAULT_EXCEPTION_DAYS, DEFAULT_GRACE, Schedule, add_schedule
from accessproof.store.base import Store


class ConfigFileError(ValueError):
    """A file that cannot be applied; the message names the entry and the problem."""


_SCHEDULE_KEYS = {"name", "kind", "cron", "timezone", "select", "grace_seconds", "exception_days", "params"}
_ENDPOINT_KEYS = {"name", "url", "mode", "secret", "secret_env", "types", "max_attempts"}


def read(path: str | Path) -> tuple[list[Schedule], list[Endpoint]]:
    """Parse and check the file without touching a store."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigFileError(f"{path}: not TOML ({str(e).splitlines()[0]})") from None
    unknown = set(doc) - {"schedule", "endpoint"}
    if unknown:
        raise ConfigFileError(f"{path}: unknown section(s) {', '.join(sorted(unknown))} (schedule, endpoint)")
    schedules = [_schedule(path, i, e) for i, e in enumerate(_entries(path, doc, "schedule"))]
    endpoints = [_endpoint(path, i, e) for i, e in enumerate(_entries(path, doc, "endpoint"))]
    for s in schedules:
        s.check()
    for ep in endpoints:
        ep.check()
    return schedules, endpoints


def apply(store: Store, path: str | Path, *, by: str = "cli") -> tuple[list[Schedule], list[Endpoint]]:
    """Read the file, then add or replace each schedule and endpoint it names."""
    schedules, endpoints = read(path)
    for s in schedules:
        add_schedule(store, s, by=by, replace=True)
    for ep in endpoints:
        add_endpoint(store, ep, by=by, replace=True)
    return schedules, endpoints


def _entries(path: str | Path, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise ConfigFileError(f"{path}: {key} must be an array of tables ([[{key}]])")
    return items


def _need(path: str | Path, where: str, entry: dict[str, Any], allowed: set[str], required: tuple[str, ...]) -> None:
    extra = set(entry) - allowed
    if extra:
        raise ConfigFileError(f"{path}: {where}: unknown key(s) {', '.join(sorted(extra))}")
    for k in required:
        if not isinstance(entry.get(k), str) or not entry[k]:
            raise ConfigFileError(f"{path}: {where}: {k} is required (a string)")


def _typed(path: str | Path, where: str, value: Any, kind: type, key: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigFileError(f"{path}: {where}: {key} must be {kind.__name__}")
    return value


def _strings(path: str | Path, where: str, value: Any, key: str) -> list[str]:
    """A string or a list of strings, as a list."""
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ConfigFileError(f"{path}: {where}: {key} must be a list of strings")
    return value


def _schedule(path: str | Path, i: int, e: dict[str, Any]) -> Schedule:
    where = f"schedule {e.get('name', i + 1)}"
    _need(path, where, e, _SCHEDULE_KEYS, ("name", "cron"))
    select = _strings(path, where, e.get("select", []), "select")
    return Schedule(name=e["name"], kind=str(e.get("kind", "assessment")), cron=e["cron"],
                    timezone=str(e.get("timezone", "UTC")), select=select,
                    params=_typed(path, where, e.get("params", {}), dict, "params"),
                    grace_seconds=_typed(path, where, e.get("grace_seconds", DEFAULT_GRACE), int, "grace_seconds"),
                    exception_days=_typed(path, where, e.get("exception_days", DEFAULT_EXCEPTION_DAYS), int,
                                          "exception_days"))


def _endpoint(path: str | Path, i: int, e: dict[str, Any]) -> Endpoint:
    where = f"endpoint {e.get('name', i + 1)}"
    _need(path, where, e, _ENDPOINT_KEYS, ("name", "url"))
    types = _strings(path, where, e.get("types", []), "types")
    for k in ("secret", "secret_env", "mode"):
        if k in e and not isinstance(e[k], str):
            raise ConfigFileError(f"{path}: {where}: {k} must be a string")
    return Endpoint(name=e["name"], url=e["url"], mode=e.get("mode", "structured"), secret=e.get("secret"),
                    secret_env=e.get("secret_env"), types=types,
                    max_attempts=_typed(path, where, e.get("max_attempts", DEFAULT_MAX_ATTEMPTS), int,
                                        "max_attempts"))
