"""GPTQ for the ExecuTorch decoder's int4 linears (``8da4w-gptq``), learning from a calibration text.

GPTQ (Frantar et al., 2022) rounds a linear's weights one input channel at a time and carries each
channel's rounding error, weighted by the inverse Hessian of the layer's inputs on the calibration
text, over to the channels not yet rounded. Each group's scale is set when GPTQ reaches the group, from
its weights as they are then (carried errors included), by the rule and in the precision the recipe
stores: positive, max(-min / 8, max / 7), in bfloat16 (XNNPACK's grouped int4 weights). The
well-kept implementations do not fit this grid: torchao 0.18's GPTQ runs on CUDA only, for its
weight-only int4 layouts; ONNX Runtime's (``weight_only.gptq``, which ``onnx_quant`` runs) has a
symmetric grid of absmax / 7.5 that clips each group's positive extreme, and its error search measures
the integer codes, not the weights (on SmolLM2-135M, with its Cholesky factor corrected as
``onnx_quant`` does: +33.6 % ppl against +27.4 % here, eager PyTorch). So the loop is written here,
small, as the paper's Algorithm 1 with its lazy batch updates (one block per group).

The decoder runs the calibration text layer by layer (each sequence from position 0, attention causal
and within the layer's window): a hook on each linear of a layer sums xᵀx of its inputs, the layer's
linears are rounded, and the layer's outputs, computed with its linears quantized (activations
included, as at run time), are the next layer's inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

PERCDAMP = 0.01  # Hessian dampening, a share of its mean diagonal (GPTQ's default)


def gptq(decoder, sequences: list[list[int]], group: int, quantize_linear: Callable[[nn.Linear, tuple | None], None],
         release: Callable[[], object] = lambda: None) -> dict:
    """Round every layer's linears of ``decoder`` (edgekit's ``Decoder``) with GPTQ on ``sequences``
    (token ids), in groups of ``group`` input channels. ``quantize_linear(linear, rounded)`` makes a
    linear the recipe's int4 one from GPTQ's (integers, scales) (None: round-to-nearest, for a linear
    whose inputs are not whole groups). Returns what the manifest records (seconds, layers)."""
    started = time.perf_counter()
    window = decoder.max_context  # the rotary tables end at the artifact's context
    states = []
    with torch.no_grad():
        for ids in sequences:
            ids = ids[:window]
            states.append(decoder.embed_and_rope(torch.tensor([ids]), torch.arange(len(ids))))
        rounded = 0
        for layer in decoder.layers:
            linears = [m for m in layer.modules() if isinstance(m, nn.Linear) and type(m.weight.data) is torch.Tensor]
            hessians = _hessians(layer, [m for m in linears if m.in_features % group == 0], states)
            for lin in linears:
                h = hessians.get(lin)
                quantize_linear(lin, None if h is None else _round(lin.weight.detach(), h, group))
                rounded += h is not None
            del hessians
            states = [(layer(x, ropes[layer.rope] if ropes else None, _attend), ropes) for x, ropes in states]
            release()
    return {"linears": rounded, "percdamp": PERCDAMP, "block": group,
            "gptq_s": round(time.perf_counter() - started, 1)}


def _attend(layer, q, k, v):
    """Attention within one calibration sequence (no cache), causal and within the layer's window;
    q, k, v [1, n, heads, dim]."""
    from edgekit.targets.decoder import attention, visible

    n = q.shape[1]
    positions = torch.arange(n)
    mask = torch.where(visible(positions, positions, layer.window), 0.0, float("-inf")).to(q.dtype)
    rep = layer.heads // layer.kv_heads
    k, v = (t.transpose(1, 2).repeat_interleave(rep, dim=1) for t in (k, v))
    return attention(q.transpose(1, 2), k, v, mask, layer.scale, layer.softcap).transpose(1, 2)


def _hessians(layer, linears, states) -> dict:
    """2/N Σ xxᵀ of each linear's inputs over the calibration sequences (float64)."""
    sums, rows, hooks = {}, {}, []

    def hook(module, args):
        x = args[0].detach().reshape(-1, module.in_features).double()
        sums[module] = sums.get(module, 0) + x.T @ x
        rows[module] = rows.get(module, 0) + x.shape[0]

    hooks = [lin.register_forward_pre_hook(hook) for lin in linears]
    try:
        for x, ropes in states:
            layer(x, ropes[layer.rope] if ropes else None, _attend)
    finally:
        for h in hooks:
            h.remove()
    return {m: 2.0 * sums[m] / rows[m] for m in sums}


def _round(w: torch.Tensor, hessian: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """GPTQ's rounding of ``w`` [out, in] in groups of ``group`` inputs: integers [out, in] in [-8, 7]
    and bfloat16 scales [out, in / group], positive."""
    w = w.double().clone()
    h = hessian.double().clone()
    cols = w.shape[1]
    dead = torch.diag(h) == 0  # an input that is always zero: any weight will do
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += PERCDAMP * torch.mean(torch.diag(h)) * torch.eye(cols, dtype=h.dtype)
    # the upper Cholesky factor of H^-1: row i holds how channel i's error spreads to the later ones
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    ints = torch.zeros(w.shape, dtype=torch.int8)
    scales = torch.zeros(w.shape[0], cols // group, dtype=torch.bfloat16)
    for b, i1 in enumerate(range(0, cols, group)):
        i2 = i1 + group
        block = w[:, i1:i2].clone()
        errors = torch.zeros_like(block)
        scales[:, b] = _scale(block).to(torch.bfloat16)
        s = scales[:, b].double()
        for i in range(group):
            col = block[:, i]
            k = torch.clamp(torch.round(col / s), -8, 7)
            ints[:, i1 + i] = k.to(torch.int8)
            err = (col - k * s) / hinv[i1 + i, i1 + i]
            block[:, i:] -= err[:, None] * hinv[i1 + i, i1 + i : i2][None, :]
            errors[:, i] = err
        w[:, i2:] -= errors @ hinv[i1:i2, i2:]
    return ints, scales


def _scale(block: torch.Tensor) -> torch.Tensor:
    """The group's positive scale, torchao's no-clipping-error rule: max(-min / 8, max / 7)."""
    low = (-block.min(-1).values / 8).clamp(min=0)
    high = (block.max(-1).values / 7).clamp(min=0)
    s = torch.maximum(low, high)
    return torch.where(s > 0, s, torch.ones_like(s))
