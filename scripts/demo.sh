#!/usr/bin/env bash
# The main job on the shipped model: export builtin:tiny to ONNX (int4 and int8), then generate with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for recipe in int4 int8; do
  .venv/bin/edgekit export builtin:tiny -t onnx -r "$recipe" -o "out/tiny-$recipe" --overwrite
done
.venv/bin/edgekit run out/tiny-int4 --prompt "Once upon a time" --max-new-tokens 48
