#!/usr/bin/env bash
# Install the test dependencies and run the whole suite: lint, types, import contracts, then pytest
# (unit, integration on PostgreSQL and SQLite, e2e in headless Chromium).
# PostgreSQL: CASELOAD_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
# With CI=true, missing PostgreSQL or Chromium fails the run instead of skipping those tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'

# Browser and PHP for e2e and the Moodle plugin check (Debian packages; browser downloads are not used).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v php >/dev/null 2>&1 || need+=(php-cli)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${need[*]} from Debian packages ..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Note: ${need[*]} not installed (sudo apt-get install ${need[*]}); those tests will be skipped outside CI." >&2
  fi
fi

echo "== ruff";          .venv/bin/ruff check lti_app integrations tests bench migrations
echo "== import contracts"; .venv/bin/lint-imports
echo "== mypy";          .venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "pytest collected no tests: failing." >&2; exit 1; fi
exit "$rc"
