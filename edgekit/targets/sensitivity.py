"""Which decoder layers a low-bit recipe hurts most, measured on the calibration text.

Each decoder layer in turn has the weights of its linear layers rounded as a symmetric block
quantizer rounds them (blocks along the input, scale = the block's signed extreme / -2^(bits-1), the
rule of llama.cpp's q4_0 and of the ONNX int4 recipe), the rest of the model kept in float32. The
mean KL(float ‖ rounded) of the next-token distributions over the calibration tokens is what that
layer alone costs. A ``-mixN`` recipe keeps the N costliest layers at 8 bits, as llama.cpp's q4_k_m
keeps some of its tensors above 4 bits — by measurement, not by a fixed pattern.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MAX_TOKENS = 256  # enough to rank layers (SmolLM2-135M: the same two outliers as with 512); each costs one pass


@dataclass(frozen=True)
class Ranking:
    kl: tuple[float, ...]  # per decoder layer, in layer order
    tokens: int
    seconds: float

    def costliest(self, n: int) -> tuple[int, ...]:
        """The ``n`` layers whose rounding costs most, in layer order."""
        return tuple(sorted(sorted(range(len(self.kl)), key=lambda i: -self.kl[i])[:n]))


def round_blocks(w, bits: int, block: int):
    """``w`` [out, in] rounded to ``bits`` in symmetric blocks of ``block`` inputs and back to float;
    unchanged where the inputs do not split into whole blocks."""
    import torch

    rows, cols = w.shape
    if cols % block:
        return w
    g = w.reshape(rows, cols // block, block)
    extreme = g.gather(-1, g.abs().argmax(-1, keepdim=True))
    scale = extreme / -(2 ** (bits - 1))
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = (g / scale).round().clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return (q * scale).reshape(rows, cols)


def rank_layers(model, sequences: list[list[int]], bits: int, block: int) -> Ranking:
    """Per-layer KL of ``model`` (a transformers causal LM, float32) on ``sequences`` of token ids."""
    import torch
    from torch import nn

    started = time.perf_counter()
    layers = model.get_decoder().layers
    used, budget = [], MAX_TOKENS
    for seq in sequences:
        if budget <= 1:
            break
        used.append(seq[:budget])
        budget -= len(used[-1])
    used = [s for s in used if len(s) > 1]

    def log_probs(ids):
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)

    kl = []
    with torch.inference_mode():
        reference = [log_probs(ids) for ids in used]
        tokens = sum(len(ids) for ids in used)
        for layer in layers:
            linears = [m for m in layer.modules() if isinstance(m, nn.Linear)]
            saved = [m.weight.data for m in linears]
            for m in linears:
                m.weight.data = round_blocks(m.weight.data, bits, block)
            try:
                total = sum(float((ref.exp() * (ref - log_probs(ids))).sum()) for ids, ref in zip(used, reference))
            finally:
                for m, w in zip(linears, saved):
                    m.weight.data = w
            kl.append(total / tokens)
    return Ranking(tuple(kl), tokens, round(time.perf_counter() - started, 2))


def costliest_layers(source, calibration: tuple[list[list[int]], dict], n: int, bits: int, block: int
                     ) -> tuple[tuple[int, ...], dict]:
    """The ``n`` layers of ``source``'s model that 4-bit rounding hurts most, measured on the
    calibration sequences (``calibration.token_windows``), and what the manifest records of the
    measurement (every layer's KL, the text, tokens, seconds)."""
    import torch

    from edgekit.core.model import load_model
    from edgekit.runtime.machine import idle_threads

    sequences, text = calibration
    model = load_model(source)
    before, threads = torch.get_num_threads(), idle_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        ranking = rank_layers(model, sequences, bits, block)
    finally:
        torch.set_num_threads(before)
    kept = ranking.costliest(n)
    record = {
        "kept_layers": list(kept),
        "layer_kl": [round(k, 5) for k in ranking.kl],
        "calibration": {**text, "tokens": ranking.tokens},
        "seconds": ranking.seconds,
    }
    return kept, record
