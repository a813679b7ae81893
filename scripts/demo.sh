#!/usr/bin/env bash
# Quick start, command 1: set up .venv and run the main job — the demo organisation end to end
# (simulate, ingest, seal, link, controls, report) in an embedded store; no server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/accessproof demo --out accessproof-demo "$@"
