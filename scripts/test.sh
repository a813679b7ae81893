#!/usr/bin/env bash
# Quick start, command 2: set up .venv with the test tools, make sure PostgreSQL runs, run lint and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/services.sh
bash scripts/browser.sh
.venv/bin/ruff check src tests bench/*
.venv/bin/python -m pytest "$@"
