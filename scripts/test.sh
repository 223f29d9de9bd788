#!/usr/bin/env bash
# Install everything the tests need (venv, package with its test extras, the real JavaScript
# SDKs, Chromium) and run the whole suite: lint, types, then pytest.
# Arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
# Customer.io's Data Pipelines SDK replaces the `customerio` Track client's package of the same
# name, so it lives apart and its test runs it in a process of its own.
if [ ! -d tests/compat/python-cdp/packages/customerio/analytics ]; then
  .venv/bin/pip install --quiet --target tests/compat/python-cdp/packages 'customerio-cdp-analytics==1.1.0'
fi
if [ -f tests/compat/node/package.json ] && command -v npm >/dev/null 2>&1; then
  (cd tests/compat/node && npm install --silent --no-audit --no-fund)
fi
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null))
fi
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
