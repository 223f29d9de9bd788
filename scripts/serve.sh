#!/usr/bin/env bash
# Install Turnout into ./.venv (first run only) and start it with embedded storage.
# Arguments go to `turnout serve`, e.g. scripts/serve.sh --config turnout.toml
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/turnout ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
fi
exec .venv/bin/turnout serve "$@"
