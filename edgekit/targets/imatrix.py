"""Importance matrices: how much each input column of a linear layer matters, from the model's own
activations on a calibration text.

For every linear layer picked, the mean over calibration tokens of the square of each input
column (what llama.cpp's ``llama-imatrix`` collects for each matrix multiplication: its quantizer
then weighs the rounding error of each weight by its column's value). Computed with forward
hooks on the PyTorch model, in windows of the text that each start afresh.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

WINDOW = 512  # tokens per forward pass (llama-imatrix's default context)


@torch.no_grad()
def collect(model: nn.Module, ids: list[int], name_of: Callable[[str], str | None], window: int = WINDOW,
            forward: Callable[[torch.Tensor], object] | None = None) -> dict[str, np.ndarray]:
    """``name_of(module name) -> key`` picks the layers (None: skip); returns key -> float32 mean
    square of each input column over the tokens of ``ids``. Layers that share a key (a head tied to
    the embedding is one matrix) are summed together. ``forward(tokens [1, n])`` runs the model on
    one window (default: ``model(tokens)``, a transformers model's call)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(key):
        def record(module, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            sums[key] = sums.get(key, 0) + (x * x).sum(0)
            counts[key] = counts.get(key, 0) + x.shape[0]
        return record

    handles = []
    for name, module in model.named_modules():
        key = name_of(name) if _is_linear(module) else None
        if key is not None:
            handles.append(module.register_forward_hook(hook(key)))
    try:
        for start in range(0, len(ids), window):
            chunk = ids[start : start + window]
            if len(chunk) > 1:
                (forward or model)(torch.tensor([chunk]))
    finally:
        for h in handles:
            h.remove()
    return {key: (sums[key] / counts[key]).float().numpy() for key in sums}


def _is_linear(module: nn.Module) -> bool:
    """nn.Linear, or transformers' Conv1D (GPT-2's linears, weight stored transposed)."""
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"
