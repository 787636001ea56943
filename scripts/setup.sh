#!/usr/bin/env bash
# Prepare a checkout: system packages (scripts/install-deps.sh), then .venv with the Python packages the modules
# (requirements.txt) and the tests (requirements-test.txt) need. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.edgeforge-requirements.sha256
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt -r requirements-test.txt
    echo "$want" > "$stamp"
else
    echo "setup: .venv is up to date"
fi
