"""Identity resolution: accounts in enforcement systems → persons from HR, with the basis of each match."""

from accessproof.identity.resolve import (
    conflicts,
    list_identities,
    orphans,
    ownerless_service_accounts,
    person_of,
    resolve_identities,
)

__all__ = ["conflicts", "list_identities", "orphans", "ownerless_service_accounts", "person_of",
           "resolve_identities"]
