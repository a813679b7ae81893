"""Declarative column mappings: how a CSV or JSON export (QMS, HR, supplier register) becomes canonical records.

A mapping file (YAML, or TOML) names the source instance, the record type, the column holding the id and,
for each canonical field, the column it comes from with optional parsing options. The format is documented
in ``docs/MAPPINGS.md`` and shared with the demo simulator, so it is validated strictly here: a mistake in a
mapping is an operator error, reported as one ``MappingError`` line before any row is read, rather than
thousands of quarantined rows.

This module knows the canonical field names (from ``accessproof.model``) but nothing about reading files.
"""

from __future__ import annotations

import codecs
import difflib
import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, model_validator

from accessproof.model import Action, Outcome, WorkflowKind
from accessproof.sources.base import Reject, parse_date_or_time


class MappingError(ValueError):
    """A mapping file is unreadable or wrong. The message is one line naming the file and the problem."""


#: Canonical fields holding a point in time; parsed per ``format``/``timezone``, never guessed.
DATE_FIELDS = frozenset({
    "opened", "decided", "effective", "expires", "completed", "valid_until", "contract_start",
    "contract_end", "next_review", "hired", "terminated", "time",
})
#: Canonical fields holding a list: a cell is split on ``split`` (or is one item).
LIST_FIELDS = frozenset({"approvers", "emails", "usernames"})

WORKFLOW_FIELDS = (
    "subject", "scope", "requester", "approvers", "opened", "decided", "effective", "expires", "status",
    "parent_id", "decision", "environment", "business_unit", "owner", "compensating_control", "course",
    "completed", "valid_until", "qualification_status", "contract_start", "contract_end", "next_review",
    "event_type",
)
PERSON_FIELDS = (
    "display_name", "email", "emails", "usernames", "worker_type", "supplier_id", "manager_id",
    "business_unit", "title", "hired", "terminated",
)
EVENT_FIELDS = (
    "time", "action", "vendor_action", "actor.id", "actor.name", "actor.type", "target.system", "target.id",
    "target.name", "entitlement.type", "entitlement.id", "entitlement.name", "resource", "approval_ref",
    "environment", "business_unit", "outcome", "src_ip", "user_agent",
)
CANONICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "workflow": WORKFLOW_FIELDS, "person": PERSON_FIELDS, "event": EVENT_FIELDS,
}
#: Which record field the ``id`` column fills, per record type (for messages).
ID_FIELD = {"workflow": "record_id", "person": "person_id", "event": "event_id"}
#: Closed vocabularies: a value outside them would silently break linking, so it is rejected.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "action": tuple(a.value for a in Action),
    "outcome": tuple(o.value for o in Outcome),
    "worker_type": ("employee", "contractor", "supplier"),
    "event_type": ("hire", "termination", "transfer", "leave", "return"),
    "decision": ("approved", "rejected", "revoke", "keep"),
}
#: ``format`` values meaning "ISO 8601" (to override a file-wide ``date_format`` for one column).
ISO_FORMATS = frozenset({"iso", "iso8601", "iso 8601", "iso-8601"})
BUNDLED_DIR = "mappings"


class FieldSpec(BaseModel):
    """Where one canonical field comes from and how its cell is cleaned."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    column: str
    format: str | None = None
    timezone: str | None = None
    split: str | None = None
    lower: bool = False
    strip: bool = True
    map: dict[str, str | None] | None = None
    default: str | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _map_as_text(cls, v: Any) -> Any:
        # YAML/TOML may type keys and values (1, true); the cell is text, so compare as text.
        if isinstance(v, dict):
            return {_scalar_text(k): (None if x is None else _scalar_text(x)) for k, x in v.items()}
        return v

    @field_validator("default", mode="before")
    @classmethod
    def _default_as_text(cls, v: Any) -> Any:
        return v if v is None else _scalar_text(v)

    @field_validator("column")
    @classmethod
    def _column_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("column name is empty")
        return v


def _scalar_text(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return v


class Mapping(BaseModel):
    """One mapping file: which canonical records a CSV/JSON export becomes, column by column."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    system: str
    record: Literal["workflow", "person", "event"] = "workflow"
    kind: str | None = None
    format: Literal["csv", "json"] | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    timezone: str | None = None
    date_format: str | None = None
    id: str
    fields: dict[str, FieldSpec] = {}
    constants: dict[str, Any] = {}
    required: list[str] = []
    description: str | None = None

    _origin: str = PrivateAttr(default="<mapping>")

    @property
    def origin(self) -> str:
        """Where the mapping came from (a path or ``<mapping>``), for messages."""
        return self._origin

    @field_validator("fields", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        # `subject: "Subject Email"` is short for `subject: {column: "Subject Email"}`.
        if isinstance(v, dict):
            return {k: ({"column": _scalar_text(s)} if isinstance(s, str | int | float) else s)
                    for k, s in v.items()}
        return v

    @field_validator("system", "id")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        known = CANONICAL_FIELDS[self.record]
        if self.record == "workflow":
            if not self.kind:
                raise ValueError(f"record: workflow needs a kind ({', '.join(k.value for k in WorkflowKind)})")
            if self.kind not in {k.value for k in WorkflowKind}:
                raise ValueError(f"unknown kind {self.kind!r}{_suggest(self.kind, [k.value for k in WorkflowKind])}")
        elif self.kind is not None:
            raise ValueError(f"kind applies only to record: workflow, not record: {self.record}")
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise ValueError(f"delimiter must be one character other than a quote or newline, not {self.delimiter!r}")
        _check_encoding(self.encoding)
        if self.timezone is not None:
            _check_timezone(self.timezone, "timezone")
        if self.date_format is not None:
            _check_format(self.date_format, "date_format")
        for name in [*self.fields, *self.constants, *self.required]:
            _check_name(name, self.record, known)
        for name in self.constants:
            if name in self.fields:
                raise ValueError(f"field {name!r} is both in fields and in constants")
        for name in self.required:
            if name not in self.fields and name not in self.constants:
                raise ValueError(f"required field {name!r} is not mapped in fields")
        for name, spec in self.fields.items():
            _check_spec(name, spec)
        for name, value in self.constants.items():
            self._check_constant(name, value)
        if self.record == "event":
            for name in ("time", "action"):
                if name not in self.fields and name not in self.constants:
                    raise ValueError(f"record: event needs a {name!r} field")
        return self

    def _check_constant(self, name: str, value: Any) -> None:
        is_attr = name.startswith("attributes.")
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and name not in LIST_FIELDS and not is_attr:
            raise ValueError(f"constant {name!r} is a list but the field holds one value")
        if not is_attr and any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in items):
            raise ValueError(f"constant {name!r} must be text")
        vocab = VOCABULARIES.get(name)
        if vocab and value not in vocab:
            raise ValueError(f"constant {name!r}: {value!r} is not one of {', '.join(vocab)}")
        if name in DATE_FIELDS:
            fmt, tz = self.date_settings(name)
            try:
                parse_date_or_time(str(value), fmt=fmt, tz=tz, what=f"constant {name!r}")
            except Reject as e:
                raise ValueError(str(e)) from None

    def columns(self) -> list[str]:
        """Every column the mapping reads, id first, without duplicates (for the CSV header check)."""
        cols = [self.id, *(s.column for s in self.fields.values())]
        return list(dict.fromkeys(cols))

    def date_settings(self, name: str) -> tuple[str | None, str | None]:
        """The (strptime format or None for ISO 8601, timezone) that apply to field ``name``."""
        spec = self.fields.get(name)
        fmt = spec.format if spec and spec.format is not None else self.date_format
        tz = spec.timezone if spec and spec.timezone is not None else self.timezone
        if fmt is not None and fmt.strip().lower() in ISO_FORMATS:
            fmt = None
        return fmt, tz


def _check_name(name: str, record: str, known: tuple[str, ...]) -> None:
    if name.startswith("attributes."):
        if record == "person":
            raise ValueError(f"person records have no attributes: {name!r} cannot be mapped")
        if not name[len("attributes."):].strip():
            raise ValueError(f"{name!r} needs a name after 'attributes.'")
        return
    if name in ID_FIELD.values():
        raise ValueError(f"{name!r} comes from the 'id' key, not from fields")
    if name not in known:
        raise ValueError(f"unknown field {name!r} for record: {record}{_suggest(name, known)}")


def _check_spec(name: str, spec: FieldSpec) -> None:
    is_attr = name.startswith("attributes.")
    if (spec.format is not None or spec.timezone is not None) and name not in DATE_FIELDS and not is_attr:
        raise ValueError(f"field {name!r}: format/timezone apply only to date fields "
                         f"({', '.join(sorted(DATE_FIELDS))})")
    if spec.format is not None:
        _check_format(spec.format, f"field {name!r} format")
    if spec.timezone is not None:
        _check_timezone(spec.timezone, f"field {name!r} timezone")
    if spec.split is not None and name not in LIST_FIELDS and not is_attr:
        raise ValueError(f"field {name!r}: split applies only to list fields ({', '.join(sorted(LIST_FIELDS))}) "
                         "and attributes")
    if spec.split == "":
        raise ValueError(f"field {name!r}: split must not be empty")
    vocab = VOCABULARIES.get(name)
    if vocab and spec.map:
        bad = [v for v in spec.map.values() if v is not None and v not in vocab]
        if bad:
            raise ValueError(f"field {name!r}: map gives {bad[0]!r}, not one of {', '.join(vocab)}")
    if vocab and spec.default is not None and spec.default not in vocab:
        raise ValueError(f"field {name!r}: default {spec.default!r} is not one of {', '.join(vocab)}")


def _check_timezone(tz: str, what: str) -> None:
    if tz.upper() == "UTC":
        return
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{what}: unknown timezone {tz!r} (use an IANA name such as Europe/Berlin, or UTC)") from None


def _check_format(fmt: str, what: str) -> None:
    if fmt.strip().lower() in ISO_FORMATS:
        return
    if "%" not in fmt:
        raise ValueError(f"{what} {fmt!r} is not a strptime format (such as '%d.%m.%Y') nor 'iso8601'")


def _check_encoding(enc: str) -> None:
    try:
        codecs.lookup(enc)
    except LookupError:
        raise ValueError(f"unknown encoding {enc!r}") from None
    # Rows are cut on quote and newline bytes, so those must be single ASCII bytes in the encoding.
    if 'a,"\n'.encode(enc).lstrip(codecs.BOM_UTF8) != b'a,"\n':
        raise ValueError(f"encoding {enc!r} is not ASCII-compatible; convert the export to UTF-8")


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


# ---------------------------------------------------------------- loading

class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish: only true/false are booleans (``Yes``/``No``/``On`` stay text, as in a map of cell
    values), dates stay text, and a key given twice is an error instead of silently winning."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def bundled_mappings() -> list[str]:
    """Names of the example mappings shipped in ``accessproof/mappings``."""
    root = resources.files("accessproof").joinpath(BUNDLED_DIR)
    return sorted(p.name.rsplit(".", 1)[0] for p in root.iterdir() if p.name.endswith((".yaml", ".toml")))


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file (``.yaml``/``.yml``, ``.toml`` or ``.json``).

    A name without a file (``qms_exceptions``) loads the bundled example of that name.
    """
    p = Path(path)
    if not p.is_file():
        bundled = _bundled_path(str(path))
        if bundled is None:
            raise MappingError(f"mapping file not found: {path} (bundled: {', '.join(bundled_mappings())})")
        p = bundled
    origin = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(f"{origin}: cannot read mapping: {_one_line(str(e))}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader subclass
    except tomllib.TOMLDecodeError as e:
        raise MappingError(f"{origin}: not valid TOML: {_one_line(str(e))}") from None
    except json.JSONDecodeError as e:
        raise MappingError(f"{origin}: not valid JSON: {_one_line(str(e))}") from None
    except yaml.YAMLError as e:
        raise MappingError(f"{origin}: not valid YAML: {_yaml_reason(e)}") from None
    return mapping_from_dict(data, origin=origin)


def mapping_from_dict(data: Any, origin: str = "<mapping>") -> Mapping:
    """Validate an already-parsed mapping (a dict, as from YAML), raising a one-line ``MappingError``."""
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: a mapping must be a set of keys (system, record, id, fields…), "
                           f"not {type(data).__name__}")
    try:
        m = Mapping.model_validate(data)
    except ValidationError as e:
        raise MappingError(f"{origin}: {_pydantic_reason(e, data)}") from None
    m._origin = origin
    return m


def resolve_mapping(spec: str | Path | dict | Mapping) -> Mapping:
    """A mapping from whatever a caller holds: a ``Mapping``, a dict, a path or a bundled name."""
    if isinstance(spec, Mapping):
        return spec
    if isinstance(spec, dict):
        return mapping_from_dict(spec)
    return load_mapping(spec)


def _bundled_path(name: str) -> Path | None:
    if "/" in name or "\\" in name:
        return None
    stem = name.rsplit(".", 1)[0] if name.endswith((".yaml", ".yml", ".toml")) else name
    root = resources.files("accessproof").joinpath(BUNDLED_DIR)
    for ext in (".yaml", ".toml"):
        cand = root.joinpath(stem + ext)
        if cand.is_file():
            return Path(str(cand))
    return None


def _pydantic_reason(e: ValidationError, data: dict) -> str:
    # A misspelt key also makes the real one missing: report the misspelling, it is the cause.
    errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
    err = errs[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    if err["type"] == "missing":
        if loc == "id":
            return "missing 'id': the column giving each record's id" + more
        return f"missing {loc!r}" + more
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        allowed = FieldSpec.model_fields if parent else Mapping.model_fields
        return f"unknown key {loc!r}{_suggest(str(err['loc'][-1]), list(allowed))}" + more
    return _one_line(f"{loc}: {msg}" if loc else msg) + more


def _yaml_reason(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return _one_line(where + str(problem))


def _one_line(s: str) -> str:
    return " ".join(s.split())
