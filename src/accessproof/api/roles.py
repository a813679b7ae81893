"""The server's roles, in a module of their own so the CLI can name them without importing FastAPI."""

ROLES = ("ingest", "analyst", "auditor", "admin")
