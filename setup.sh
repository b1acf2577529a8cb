#!/usr/bin/env bash
# Sets up a development/run environment from scratch: .venv with freqtrade-ratekit (editable),
# its test extras, and a redis-server binary for the shared-budget tests.
#   VENV=.venv FREQTRADE_VERSION=2026.9 CONSTRAINTS=file.txt ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel
pin=()
if [ -n "${FREQTRADE_VERSION:-}" ]; then
  pin=("freqtrade==${FREQTRADE_VERSION}")
fi
if [ -n "${CONSTRAINTS:-}" ]; then
  pin+=(-c "${CONSTRAINTS}")
fi
"$VENV/bin/python" -m pip install --quiet -e ".[test,redis,docs]" "${pin[@]}"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server (needed by the shared-budget tests)"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "setup: please install redis-server with your package manager" >&2
  fi
fi
"$VENV/bin/python" -c "import freqtrade, freqtrade_ratekit; print('setup: freqtrade', freqtrade.__version__, '+ freqtrade-ratekit', freqtrade_ratekit.__version__)"
