"""Linking: governance decisions ↔ the enforcement events that executed them, removal triggers ↔ removals,
and point-in-time access. Set-based SQL over the store (see ``link``, ``access``, ``timeline``)."""
