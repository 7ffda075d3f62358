"""What runs an artifact: importable with only numpy and the target's own runtime installed.

Nothing here imports torch, transformers or the rest of edgekit's export stack, so the same code
runs on the host and on a board. A backend exposes the small ``LanguageModel`` protocol below;
``generate.greedy`` drives any of them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class LanguageModel(Protocol):
    """A causal LM with its own KV cache."""

    vocab_size: int
    max_context: int

    def reset(self) -> None:
        """Forget the cache: the next ``forward`` starts a new sequence."""

    def forward(self, ids: list[int]) -> np.ndarray:
        """Append ``ids`` to the sequence; return float32 logits of shape (len(ids), vocab)."""
