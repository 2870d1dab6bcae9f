#!/usr/bin/env bash
# The README's test command: install what the tests need, then lint and run the whole suite.
# With DATABASE_URL and REDIS_URL set (as .ci/run sets them) the suite runs against real
# PostgreSQL and Redis, and the tests that need them run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet --group test
# The diffusers engine's tests run a tiny real pipeline on the CPU: they need the gpu group.
.venv/bin/python -m pip install --quiet --group gpu

# The browser tests drive Debian's Chromium; install it when it is missing.
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests…"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
