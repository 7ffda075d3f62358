"""What runs an artifact: importable with only numpy and the target's own runtime installed.

Nothing here imports torch, transformers or the rest of edgekit (imports are relative), so this
folder is copied as it is to a board and runs there exactly as on the host. A backend exposes the
small ``LanguageModel`` protocol below; ``generate.greedy`` drives any of them.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Protocol

import numpy as np

MANIFEST = "edgekit.json"
BACKENDS = {"onnx": ".onnx", "executorch": ".executorch"}  # target -> backend module of this package


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
