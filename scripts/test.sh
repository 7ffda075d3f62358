#!/usr/bin/env bash
# Set up the environment and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check edgekit tests bench scripts
exec .venv/bin/python -m pytest "$@"
