#!/usr/bin/env bash
# Create .venv with the accessproof command (and, with --dev, the test tools). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip >/dev/null 2>&1 || true
target="."
[ "${1:-}" = "--dev" ] && target=".[dev]"
# pip's exit status is kept (pipefail); only this machine's noisy index warnings are filtered.
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$target" 2>&1 | { grep -v "^WARNING: Location" || true; }
.venv/bin/accessproof --help >/dev/null
