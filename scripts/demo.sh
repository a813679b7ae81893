#!/usr/bin/env bash
# Quick start, command 1: set up .venv and run the main job on bundled data (embedded store, no server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ACCESSPROOF_STORE=${ACCESSPROOF_STORE:-.accessproof-samples}
rm -rf "$ACCESSPROOF_STORE"
for t in cloudtrail okta entra github; do
  .venv/bin/accessproof ingest "$t" "data/samples/$t"
done
.venv/bin/accessproof sources
