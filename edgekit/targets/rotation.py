"""An offline rotation of the shared decoder's residual stream (QuaRot / SpinQuant's R1).

Each norm's weight is folded into the linears that read its output (the norm then only normalizes,
and an RMS norm of ``x Q`` is the RMS norm of ``x`` times ``Q`` for an orthogonal ``Q``), and the
residual stream is rotated by a random Hadamard matrix ``Q`` (torchao's, from its SpinQuant
prototype): the embedding rows and the output head's inputs, each layer's q/k/v/gate/up inputs and
its o/down outputs. The float model computes the same logits (to rounding); what changes is what the
quantizers see: activation outliers, which a few channels of the residual stream carry, are spread
over every channel, so per-token int8 activations lose less. ``rotate_mlp_hidden`` does the same, online
and in blocks, for the MLP's hidden state (the down projection's input), which no offline rotation
reaches (the activation between gate/up and down is not linear).

A tied head gets its own table (the final norm's weight folded into it). Only decoders whose every
norm is an RMS norm before a layer's linears (no LayerNorm, no norm after the attention or the MLP,
no learned positions, no parallel attention) are rotated; ``refusal`` says why another is not.
"""

from __future__ import annotations

import time

import torch
from torch import nn

ROWS = 4096  # rows of a table rotated at a time (its float64 copy is what the rotation holds)
MLP_BLOCK = 64  # channels of the MLP's hidden state rotated together (rotate_mlp_hidden)
SEED = 0  # the random Hadamard matrix's sign pattern: fixed, so an export is reproducible


def _hadamard():
    """torchao's Hadamard utilities; their import prints a note about a GPU kernel we do not use."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from torchao.prototype.spinquant import hadamard_utils
    return hadamard_utils


def refusal(decoder) -> str | None:
    """Why ``decoder`` (edgekit's ``Decoder``) cannot be rotated; None when it can."""
    hidden = decoder.embed.weight.shape[1]
    try:
        _hadamard().get_hadK(hidden)
    except AssertionError:
        return f"no Hadamard matrix of size {hidden}"
    norms = [decoder.norm] + [n for layer in decoder.layers for n in (layer.ln1, layer.ln2) if n is not None]
    if any(n.layer for n in norms):
        return "LayerNorm (the mean it subtracts does not commute with a rotation)"
    if decoder.pos_embed is not None:
        return "learned positions"
    for layer in decoder.layers:
        if layer.ln2 is None:
            return "parallel attention and MLP"
        if layer.attn_out_norm is not None or layer.mlp_out_norm is not None:
            return "norms after the attention or the MLP"
    return None


@torch.no_grad()
def rotate(decoder, seed: int = SEED) -> dict:
    """Rotate ``decoder``'s residual stream in place; returns what the manifest records of it."""
    started = time.perf_counter()
    hidden = decoder.embed.weight.shape[1]
    q = _hadamard().random_hadamard_matrix(hidden, "cpu", seed=seed).double()

    def right(w: torch.Tensor, scale=None) -> torch.Tensor:  # (W diag(scale)) Q in float64, by row chunks
        out = torch.empty(w.shape, dtype=w.dtype)
        for i in range(0, w.shape[0], ROWS):
            chunk = w[i : i + ROWS].double()
            out[i : i + ROWS] = ((chunk if scale is None else chunk * scale.double()[None, :]) @ q).to(w.dtype)
        return out

    def inputs(lin: nn.Linear, norm=None):  # W' = (W diag(norm)) Q: reads the rotated, normalized stream
        w = right(lin.weight.detach(), None if norm is None else norm.weight.detach())
        lin.weight = nn.Parameter(w, requires_grad=False)

    def outputs(lin: nn.Linear):  # W' = Qᵀ W: writes the rotated stream
        lin.weight = nn.Parameter((q.T @ lin.weight.detach().double()).to(lin.weight.dtype), requires_grad=False)
        if lin.bias is not None:
            lin.bias = nn.Parameter((q.T @ lin.bias.detach().double()).to(lin.bias.dtype), requires_grad=False)

    def unit(norm):
        norm.weight = nn.Parameter(torch.ones_like(norm.weight), requires_grad=False)

    emb = decoder.embed.weight
    inputs(decoder.lm_head, decoder.norm)  # a new parameter: a tied head is untied here
    unit(decoder.norm)
    decoder.embed.weight = nn.Parameter(right(emb.detach()), requires_grad=False)
    for layer in decoder.layers:
        for lin in (layer.q_proj, layer.k_proj, layer.v_proj):
            inputs(lin, layer.ln1)
        unit(layer.ln1)
        for lin in (layer.gate_proj, layer.up_proj):
            if lin is not None:
                inputs(lin, layer.ln2)
        unit(layer.ln2)
        outputs(layer.o_proj)
        outputs(layer.down_proj)
    return {"method": "random Hadamard (torchao spinquant)", "size": hidden, "seed": seed,
            "seconds": round(time.perf_counter() - started, 1)}


@torch.no_grad()
def rotate_mlp_hidden(decoder, block: int = MLP_BLOCK, seed: int = SEED) -> dict | None:
    """The MLP's hidden state (the down projection's input, where SwiGLU's products peak) rotated
    online in blocks of ``block`` channels by a random Hadamard matrix (SpinQuant's R4, block-diagonal:
    a 64 x 64 float matmul per block, a few per cent of a layer's work), the down projection's
    weights rotated to match. None where the hidden size is not a whole number of blocks."""
    inter = decoder.layers[0].down_proj.in_features
    if inter % block:
        return None
    h = _hadamard().random_hadamard_matrix(block, "cpu", seed=seed).double()
    for layer in decoder.layers:
        w = layer.down_proj.weight.detach()
        # y = W x = (W B)(Bᵀ x), B = blockdiag(h): the weights take B, the input Bᵀ (x @ h per block)
        rotated = (w.double().reshape(w.shape[0], -1, block) @ h).reshape(w.shape)
        layer.down_proj.weight = nn.Parameter(rotated.to(w.dtype).contiguous(), requires_grad=False)
        layer.mlp_rotation = h.T.to(w.dtype).contiguous()  # F.linear(x, hᵀ) = x @ h
    return {"method": "random Hadamard in blocks (torchao spinquant)", "block": block, "seed": seed}
