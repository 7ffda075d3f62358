#!/usr/bin/env bash
# The main job on the shipped models: export the real SmolLM2-135M-Instruct (builtin:smollm2-135m) to
# ONNX int4 and int4-imatrix beside llama.cpp's own q4_0 (the yardstick), and builtin:tiny to ONNX int4,
# ExecuTorch 8da4w, llama.cpp q4_0 and Core ML int4 (each with its parity check against PyTorch),
# generate with them, profile the ones this machine runs, and print the report. Every artifact is its
# runtime's standard form (GenAI folder, TextLLMRunner program, llama.cpp chat GGUF, swift-transformers
# package) with a model card; the export checks it in that runtime's own API where this machine runs it.
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
if [ -n "$gguf" ]; then  # the real model against llama.cpp's q4_0 of it, measured alike in one run
  for recipe in int4 int4-imatrix; do
    $edgekit export builtin:smollm2-135m -t onnx -r $recipe -o "out/smollm2-onnx-$recipe" --overwrite
  done
  $edgekit export builtin:smollm2-135m -t gguf -r q4_0 -o out/smollm2-gguf-q4_0 --overwrite
  for art in smollm2-onnx-int4 smollm2-onnx-int4-imatrix smollm2-gguf-q4_0; do
    $edgekit run "out/$art" --prompt "The capital of France is" --max-new-tokens 24
    $edgekit profile "out/$art" --runs 3 -o "out/results/$art.json"
  done
  # a deliverable: the chat answer stops at the end of the turn, and the export checked the artifact in
  # its runtime's own API (ONNX Runtime GenAI here; inspect's "loads in" line)
  $edgekit run out/smollm2-onnx-int4 --chat -p "What is the capital of France?"
  $edgekit inspect out/smollm2-onnx-int4 --json |
    .venv/bin/python -c "import json, sys; print('checked in:', json.load(sys.stdin)['standard_runtime'])"
fi
$edgekit report out/results
