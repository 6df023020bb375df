#!/usr/bin/env bash
# Quick start: install Caseload into .venv, seed the demo district on SQLite, and serve it.
# Prints the URL of the practice LMS page; open it and click "Launch as teacher".
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Caseload needs Python 3.11 or newer (found: $("$PY" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..."
  "$PY" -m venv .venv
fi
echo "Installing Caseload and its dependencies into .venv (first run takes a minute) ..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .

export CASELOAD_ENV="${CASELOAD_ENV:-demo}"
PORT="${PORT:-5000}"
export CASELOAD_BASE_URL="${CASELOAD_BASE_URL:-http://127.0.0.1:${PORT}}"
exec .venv/bin/caseload demo --serve --host 127.0.0.1 --port "$PORT"
