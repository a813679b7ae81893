"""Finding governance decision ids inside enforcement events.

Where each source carries decision ids is configuration; these are the defaults: ServiceNow request items
and changes, Jira-style keys with an access/change project, and QMS record prefixes.
"""

from __future__ import annotations

import re

DEFAULT_PATTERNS = (
    r"\bRITM\d{5,}\b",
    r"\bREQ\d{5,}\b",
    r"\bCHG\d{5,}\b",
    r"\bINC\d{5,}\b",
    r"\b(?:ACCESS|IAM|SEC|CHG)-\d+\b",
    r"\b(?:EXC|CAPA|CR|QMS)-\d{2,}\b",
)
_DEFAULT = re.compile("|".join(f"(?:{p})" for p in DEFAULT_PATTERNS))


def compile_patterns(patterns: list[str] | tuple[str, ...] | None) -> re.Pattern[str]:
    if not patterns:
        return _DEFAULT
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def find_approval_ref(*values: object, pattern: re.Pattern[str] | None = None) -> str | None:
    """The first decision id found in any of ``values`` (strings, or dicts/lists searched as text)."""
    rx = pattern or _DEFAULT
    for v in values:
        if v is None:
            continue
        text = v if isinstance(v, str) else str(v)
        m = rx.search(text)
        if m:
            return m.group(0)
    return None
