"""What runs an artifact: importable with only numpy and the target's own runtime installed.

Nothing here imports torch, transformers or the rest of edgekit (imports are relative), so this
folder is copied as it is to a board and runs there exactly as on the host. A backend exposes the
small ``LanguageModel`` protocol below; ``generate.greedy`` drives any of them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

MANIFEST = "edgekit.json"
BACKENDS = {"onnx": ".onnx", "executorch": ".executorch", "coreml": ".coreml"}  # target -> backend module of this package


class LanguageModel(Protocol):
    """A causal LM with its own KV cache."""

    vocab_size: int
    max_context: int

    def reset(self) -> None:
        """Forget the cache: the next ``forward`` starts a new sequence."""

    def forward(self, ids: list[int]) -> np.ndarray:
        """Append ``ids`` to the sequence; return float32 logits of shape (len(ids), vocab)."""


def load(folder: Path, threads: int | None = None) -> LanguageModel:
    """Open the artifact in ``folder`` with its target's backend."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    target = manifest["target"]
    if target not in BACKENDS:
        raise ValueError(f"no runtime backend for target '{target}'")
    backend = importlib.import_module(BACKENDS[target], __package__)
    return backend.open_artifact(Path(folder), manifest["runtime"], threads)


def in_windows(step: Callable[[list[int], int], np.ndarray], ids: list[int], length: int, max_context: int,
               window: int) -> np.ndarray:
    """Feed ``ids`` to a model that takes at most ``window`` tokens per call: ``step(chunk, position)``
    returns the chunk's logits ``(len(chunk), vocab)``; all of them, in order."""
    if length + len(ids) > max_context:
        raise ValueError(f"sequence of {length + len(ids)} tokens exceeds the context of {max_context}")
    out = [step(ids[i : i + window], length + i) for i in range(0, len(ids), window)]
    return out[0] if len(out) == 1 else np.concatenate(out)


def versions() -> dict:
    """Versions of what this runner runs on: numpy and every backend runtime importable here."""
    from importlib import metadata

    out = {"numpy": np.__version__}
    for dist in ("onnxruntime", "executorch", "coremltools"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
