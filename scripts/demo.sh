#!/usr/bin/env bash
# The main job on the shipped model: export builtin:tiny to ONNX int4, ExecuTorch 8da4w, llama.cpp q4_0
# and Core ML int4 (each with its parity check against PyTorch), generate with them, profile the ones
# this machine runs, and print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
edgekit=.venv/bin/edgekit
$edgekit export builtin:tiny -t onnx -r int4 -o out/tiny-onnx-int4 --overwrite
$edgekit export builtin:tiny -t executorch -r 8da4w -o out/tiny-et-8da4w --overwrite
gguf=; .venv/bin/python -c "import llama_cpp" 2>/dev/null && gguf=tiny-gguf-q4_0  # when setup could build it
[ -n "$gguf" ] && $edgekit export builtin:tiny -t gguf -r q4_0 -o "out/$gguf" --overwrite
$edgekit export builtin:tiny -t coreml -r int4 -o out/tiny-coreml-int4 --overwrite   # runs on a Mac; checked here
$edgekit inspect out/tiny-coreml-int4
for art in tiny-onnx-int4 tiny-et-8da4w $gguf; do
  $edgekit run "out/$art" --prompt "Once upon a time" --max-new-tokens 48
  $edgekit profile "out/$art" --runs 3 -o "out/results/$art.json"
done
$edgekit report out/results
