#!/usr/bin/env bash
# Set up the environment and run the whole test suite. Extra arguments go to pytest; --fast first runs
# the fast tier only (-m "not slow": no ExecuTorch/Core ML lowering, sshd, emulated board, native build
# or real model; see SLOW_MODULES in tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check edgekit tests bench scripts
if [ "${1:-}" = "--fast" ]; then
  shift
  exec .venv/bin/python -m pytest -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"
