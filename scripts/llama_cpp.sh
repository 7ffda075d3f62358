#!/usr/bin/env bash
# Install llama-cpp-python (the version pinned in pyproject.toml) into the given python's environment
# from a wheel built on and for this machine. PyPI has only its sdist: building llama.cpp takes
# minutes, and is done with llama.cpp's native CPU optimizations (GGML_NATIVE) for speed, so the
# wheel only runs on CPUs with the same instruction set. It is kept in
# ${EDGEKIT_WHEEL_CACHE:-~/.cache/edgekit/wheels}/llama_cpp_python-VERSION-KEY/, KEY a hash of the
# version, the build flags, the CPU's flags, the architecture and the compiler: the same machine
# (or one like it) reuses it, a different CPU builds its own. Never from pip's wheel cache, which
# knows nothing of the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
version=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
[ -n "$version" ] || { echo "llama_cpp.sh: no llama-cpp-python pin in pyproject.toml" >&2; exit 1; }
cmake_args="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF"  # native CPU kernels; no multimodal library (unused)
cpu_flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || sysctl -n machdep.cpu.brand_string machdep.cpu.features 2>/dev/null || true)
compiler=$( (c++ --version 2>/dev/null || true) | head -1)
key=$(printf '%s\n' "$version" "$cmake_args" "$(uname -sm)" "$cpu_flags" "$compiler" | sha256sum | cut -c1-16)
dir=${EDGEKIT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit/wheels}/llama_cpp_python-$version-$key
marker=$("$PY" -c 'import sys; print(sys.prefix)')/llama_cpp_python.build
if [ "$(cat "$marker" 2>/dev/null)" = "$version-$key" ] &&
   "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama_cpp_python') != '$version')" 2>/dev/null; then
  exit 0  # this environment has the wheel built for this CPU
fi
wheel=$(ls "$dir"/llama_cpp_python-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  command -v c++ >/dev/null ||  # (cmake: the system's, else scikit-build-core fetches one from PyPI)
    { echo "llama_cpp.sh: building llama-cpp-python needs a C++ compiler" >&2; exit 1; }
  echo "setup: building llama-cpp-python $version for this CPU (once; several minutes on 2 cores)" >&2
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)} \
    "$PY" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python==$version" -w "$tmp"
  mv "$tmp"/llama_cpp_python-*.whl "$dir"/
  wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -1)
fi
"$PY" -m pip install -q --force-reinstall --no-deps "$wheel"
"$PY" -m pip install -q "$wheel"  # its dependencies
echo "$version-$key" > "$marker"
