"""Core ML backend: an ML program ``(inputIds[1, n], causalMask[1, 1, n, p + n]) -> logits[1, n, vocab]``
whose KV cache is Core ML state (``keyCache``, ``valueCache``), as Apple's stateful LLM example and
swift-transformers have it: the mask's width gives the position ``p``. This side keeps the state
object and the position. (Packages exported before took ``tokens`` and ``input_pos``.)

Runs through coremltools' prediction API (``MLModel.make_state``, ``MLModel.predict(..., state=)``),
which needs macOS 15 or later: Core ML itself is not on other systems.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import WindowedLM

COMPUTE_UNITS = {"all": "ALL", "cpu": "CPU_ONLY", "cpu-gpu": "CPU_AND_GPU", "cpu-ne": "CPU_AND_NE"}


class CoreMLLM(WindowedLM):
    def __init__(self, package: Path, *, max_context: int, max_prefill: int, vocab_size: int,
                 compute_units: str = "all"):
        if sys.platform != "darwin":
            raise ValueError(f"Core ML runs on macOS 15 or later only; this runner is on {sys.platform}")
        import coremltools as ct

        units = getattr(ct.ComputeUnit, COMPUTE_UNITS[compute_units])
        self.model = ct.models.MLModel(str(package), compute_units=units)
        self.max_context = max_context
        self.max_prefill = max_prefill
        self.vocab_size = vocab_size
        self.positional = "input_pos" in {f.name for f in self.model.get_spec().description.input}  # older packages
        self.reset()

    def reset(self) -> None:
        self.state = self.model.make_state()  # a fresh (zeroed) cache
        self.length = 0

    def _step(self, chunk: list[int], position: int, last_only: bool) -> np.ndarray:
        # the program returns every row: last_only is the caller's to apply
        ids = np.asarray([chunk], dtype=np.int32)
        if self.positional:
            inputs = {"tokens": ids, "input_pos": np.asarray([position], dtype=np.int32)}
        else:
            inputs = {"inputIds": ids, "causalMask": np.zeros((1, 1, len(chunk), position + len(chunk)), np.float16)}
        logits = self.model.predict(inputs, state=self.state)["logits"]
        return np.asarray(logits, dtype=np.float32)[0]


# ``ops``: why this backend has no per-operator times
OPS_UNAVAILABLE = "Core ML's Python API gives no per-operator times (Xcode's Core ML Instruments template does)"

def open_artifact(folder: Path, runtime: dict, threads: int | None) -> CoreMLLM:
    # Core ML schedules its own threads: ``threads`` has no setting to go to
    return CoreMLLM(
        folder / runtime["model_file"],
        max_context=runtime["max_context"],
        max_prefill=runtime["max_prefill"],
        vocab_size=runtime["vocab_size"],
        compute_units=runtime.get("compute_units", "all"),
    )
