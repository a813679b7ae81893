"""Small deterministic helpers of the simulator: ids drawn from a seeded RNG, time formats, names."""

from __future__ import annotations

import base64
import math
import random
import unicodedata
from datetime import UTC, date, datetime, timedelta

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER_NUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

# ------------------------------------------------------------------ ids


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID from the seeded RNG (same text as ``str(uuid.UUID(int=..., version=4))``)."""
    h = f"{(rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def okta_id(rng: random.Random, prefix: str) -> str:
    """Okta object ids: ``00u`` users, ``00g`` groups, ``0oa`` apps, 20 characters in all."""
    return prefix + "".join(rng.choices(_ALNUM, k=20 - len(prefix)))


_B64_ALNUM = bytes.maketrans(b"+/", b"Qz")


def okta_txn(rng: random.Random) -> str:
    """27 alphanumerics, like Okta request and transaction ids."""
    return base64.b64encode(rng.getrandbits(162).to_bytes(21, "big")).translate(_B64_ALNUM)[:27].decode()


def aws_id(rng: random.Random, prefix: str, total: int = 21) -> str:
    """IAM unique ids (``AIDA…`` users, ``AROA…`` roles, ``AKIA…`` / ``ASIA…`` keys)."""
    return prefix + "".join(rng.choices(_UPPER_NUM, k=total - len(prefix)))


def hex32(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def gh_doc_id(rng: random.Random) -> str:
    return base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()


def ct_suffix(rng: random.Random) -> str:
    return "".join(rng.choices(_ALNUM, k=16))


# ------------------------------------------------------------------ time


def utc(d: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, second, tzinfo=UTC)


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    day = min(d.day, [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
    return date(year, month, day)


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _last_sunday(year: int, month: int) -> date:
    d = add_months(date(year, month, 1), 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def berlin_offset(t: datetime) -> timedelta:
    """Europe/Berlin UTC offset (EU rule: summer time from 01:00 UTC on the last Sunday of March to
    01:00 UTC on the last Sunday of October). Computed here so output never depends on the host's tzdata."""
    y = t.year
    begin = utc(_last_sunday(y, 3), 1)
    end = utc(_last_sunday(y, 10), 1)
    return timedelta(hours=2) if begin <= t < end else timedelta(hours=1)


def iso_berlin(t: datetime) -> str:
    off = berlin_offset(t)
    local = (t + off).replace(tzinfo=None)
    h = int(off.total_seconds()) // 3600
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"+{h:02d}:00"


def berlin_date(t: datetime) -> date:
    return (t + berlin_offset(t)).date()


def iso_z_ms(t: datetime) -> str:
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
            f"{t.microsecond // 1000:03d}Z")


def iso_z(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def snow(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""


def epoch_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def aws_date(t: datetime) -> str:
    """The createDate style IAM puts in responseElements (``Jan 5, 2026 10:11:12 AM``)."""
    h = t.hour % 12 or 12
    return f"{t.strftime('%b')} {t.day}, {t.year} {h}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def is_workday(d: date) -> bool:
    return d.weekday() < 5


def next_workday(d: date) -> date:
    while not is_workday(d):
        d += timedelta(days=1)
    return d


def work_time(rng: random.Random, d: date, first_hour: int = 7, last_hour: int = 17) -> datetime:
    """A random moment of office hours (UTC) on ``d``."""
    span = (last_hour - first_hour) * 3600
    return utc(d) + timedelta(seconds=first_hour * 3600 + rng.randrange(span), milliseconds=rng.randrange(1000))


def random_workday(rng: random.Random, lo: date, hi: date) -> date:
    """A weekday in ``[lo, hi)`` (``lo`` itself when the range holds none)."""
    days = [lo + timedelta(days=i) for i in range(max(0, (hi - lo).days))]
    days = [d for d in days if is_workday(d)]
    return rng.choice(days) if days else lo


def business(rng: random.Random, t: datetime) -> datetime:
    """``t`` if it falls in office hours (weekdays 07:00-17:00 UTC), else early on the next working day."""
    d = t.date()
    if is_workday(d) and 7 <= t.hour < 17:
        return t
    if not (is_workday(d) and t.hour < 7):
        d = next_workday(d + timedelta(days=1))
    return utc(d, 7) + timedelta(seconds=rng.randrange(3 * 3600), milliseconds=rng.randrange(1000))


def hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(seconds=int(rng.uniform(lo, hi) * 3600), milliseconds=rng.randrange(1000))


# ------------------------------------------------------------------ names

FIRST = [
    "Anna", "Lukas", "Sophie", "Jonas", "Marie", "Felix", "Emma", "Paul", "Lena", "Maximilian", "Laura",
    "David", "Julia", "Simon", "Sarah", "Tobias", "Hannah", "Jan", "Lea", "Florian", "Katharina", "Moritz",
    "Johanna", "Niklas", "Clara", "Sebastian", "Nina", "Fabian", "Miriam", "Stefan", "John", "Emily",
    "Michael", "Olivia", "James", "Grace", "Daniel", "Chloe", "Robert", "Amelia", "Priya", "Arjun",
    "Mei", "Wei", "Sofia", "Mateo", "Lucía", "Pablo", "Chiara", "Luca", "Zoë", "Björn", "Jürgen", "Ayşe",
    "Mehmet", "Élodie", "Mathis", "Agnieszka", "Piotr", "Ingrid", "Olaf", "Fatima", "Omar", "Noah",
    "Elif", "Kateřina", "Tomáš", "Henrik", "Astrid", "Ravi", "Yuki", "Hiro", "Aisha", "Samuel",
]
LAST = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Braun", "Zimmermann", "Krüger",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Maier", "Herrmann", "König", "Walter",
    "Doe", "Smith", "Johnson", "Brown", "Taylor", "Anderson", "Clarke", "Evans", "Patel", "Sharma",
    "Chen", "Wang", "Garcia", "Rossi", "Bianchi", "Dubois", "Lefèvre", "Nowak", "Kowalski", "Novák",
    "Dvořák", "Yılmaz", "Öztürk", "Larsen", "Nilsson", "Haddad", "Tanaka", "Sato", "O'Brien", "Kim",
    "Ferreira", "Silva", "Jansen", "de Vries", "Horvat", "Popescu", "Ivanova", "Lindqvist", "Moreau",
]
HANDLE_A = ["pixel", "quiet", "rusty", "lunar", "binary", "swift", "amber", "cobalt", "nimble", "frosty",
            "crimson", "steady", "hollow", "static", "vivid", "gentle"]
HANDLE_B = ["fox", "otter", "falcon", "kernel", "lynx", "badger", "heron", "comet", "walrus", "raven",
            "circuit", "maple", "orbit", "tiger", "pepper", "quokka"]

_TRANSLIT = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ı": "i",
             "ø": "o", "å": "a", "æ": "ae", "ł": "l"}


def ascii_name(s: str) -> str:
    """Lower-case ASCII for mail addresses and usernames (``Müller`` -> ``mueller``, ``O'Brien`` -> ``obrien``)."""
    s = "".join(_TRANSLIT.get(c, c) for c in s)
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return "".join(c for c in s.lower() if c.isalnum())


def case_variant(email: str) -> str:
    """``john.doe@acme.com`` -> ``John.Doe@Acme.com``: how people type their address into forms."""
    local, _, domain = email.partition("@")
    return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain[:1].upper() + domain[1:]


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw: Knuth for small means, a rounded normal beyond (enough for volume)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam ** 0.5)))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
