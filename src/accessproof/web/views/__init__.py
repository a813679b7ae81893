"""The dashboard's pages, one router per area (sign-in, overview, controls and findings, people, audit, admin)."""
