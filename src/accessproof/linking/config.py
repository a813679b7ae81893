"""Linking and identity configuration: ``defaults.yaml`` merged with a site file.

Configuration is data: the rules that made a match are named in the results, and the merged configuration
has a stable digest (``Config.digest``) so that a result can be tied to the rules that produced it.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file that cannot be read or is wrong; the message is one line."""


def _defaults() -> dict[str, Any]:
    text = resources.files("accessproof.linking").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            out[k] = _merge(base[k], v, f"{where}{k}.")
        else:
            out[k] = v
    return out


@dataclass
class Config:
    """The merged configuration (``data``) and the directory relative paths in it are read from."""

    data: dict[str, Any]
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def identity(self) -> dict[str, Any]:
        return self.data["identity"]

    @property
    def linking(self) -> dict[str, Any]:
        return self.data["linking"]

    @property
    def access(self) -> dict[str, Any]:
        return self.data["access"]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def path(self, p: str | Path) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.base_dir / p


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, merged with the YAML file at ``path`` (if any), then with ``overrides`` (a dict)."""
    data = _defaults()
    base_dir = Path.cwd()
    if path is not None:
        p = Path(path)
        try:
            site = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"{p}: cannot read ({e.strerror or e})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(site, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
        unknown = set(site) - set(data)
        if unknown:
            raise ConfigError(f"{p}: unknown section(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(data))}")
        data = _merge(data, site)
        base_dir = p.resolve().parent
    if overrides:
        data = _merge(data, copy.deepcopy(overrides))
    return Config(data=data, base_dir=base_dir)


def as_config(config: Config | str | Path | dict | None) -> Config:
    """Accept a ``Config``, a path, a dict of overrides or ``None`` (defaults)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return load_config(overrides=config)
    return load_config(config)


def read_rows(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> list[dict[str, str | None]]:
    """Rows of a small CSV or YAML (list of mappings) table, with the named columns (lower-cased keys)."""
    try:
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            if isinstance(raw, dict):
                raw = next((v for v in raw.values() if isinstance(v, list)), [])
            if not isinstance(raw, list):
                raise ConfigError(f"{path}: expected a list of mappings")
            rows = [{str(k).strip().lower(): v for k, v in r.items()} for r in raw if isinstance(r, dict)]
        else:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                rows = [{(k or "").strip().lower(): v for k, v in r.items()} for r in csv.DictReader(fh)]
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except (yaml.YAMLError, csv.Error) as e:
        raise ConfigError(f"{path}: unreadable ({str(e).splitlines()[0]})") from None
    out = []
    for i, r in enumerate(rows, start=1):
        row = {c: (str(r[c]).strip() or None) if r.get(c) is not None else None for c in columns}
        missing = [c for c in required if not row.get(c)]
        if missing:
            raise ConfigError(f"{path}: row {i} lacks {', '.join(missing)}")
        out.append(row)
    return out
