"""Sources: one module per vendor format, each exposing ``SOURCE`` (see ``base.Source``).

The registry is lazy so that reading one format never imports the others.
"""

from __future__ import annotations

from importlib import import_module

from accessproof.sources.base import Source

#: source type (as typed on the command line) -> module holding its ``SOURCE``
REGISTRY: dict[str, str] = {
    "cloudtrail": "accessproof.sources.cloudtrail",
    "okta": "accessproof.sources.okta",
    "entra": "accessproof.sources.entra",
    "github": "accessproof.sources.github",
    "servicenow": "accessproof.sources.servicenow",
    "jira": "accessproof.sources.jira",
    "csv": "accessproof.sources.tabular",
    "json": "accessproof.sources.tabular",
}


class UnknownSource(ValueError):
    pass


def get_source(source_type: str, **options) -> Source:
    """The parser for ``source_type``; ``options`` (e.g. ``mapping=``) go to its factory if it has one."""
    try:
        module = import_module(REGISTRY[source_type])
    except KeyError:
        raise UnknownSource(
            f"unknown source type {source_type!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    factory = getattr(module, "make_source", None)
    if factory is not None:
        return factory(source_type=source_type, **options)
    return module.SOURCE
