"""Quantization of the ExecuTorch decoder, in the forms ExecuTorch runs.

- ``8da4w[-gN]`` / ``8da8w``: torchao's int8 dynamic (per-token) activations with int4 grouped or
  int8 per-channel weights; XNNPACK runs these linears.
- ``int8``: weight-only int8, per output channel. ExecuTorch 1.5's XNNPACK has no weight-only
  linear, so each call dequantizes the weights with the ``quantized`` kernel library and XNNPACK
  runs the float linear with those weights as an input: the file is a quarter of fp32, the speed
  is well below fp32 (the recipe's summary says so).
- ``-emb8`` / ``-emb4``: the embedding table as ``quantized_decomposed::embedding_byte`` /
  ``embedding_4bit`` (int8 per row, int4 in groups), gathered row by row without dequantizing the
  whole table.

Every linear layer is quantized, the output head included; a head tied to the embedding gets its own
quantized copy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe

EMBEDDING_GROUP = 32  # int4 embedding rows are quantized in groups of this many values


def quantize(decoder: nn.Module, recipe: Recipe, release: Callable[[], object] = lambda: None) -> None:
    """Quantize ``decoder`` in place. ``release()`` runs after each part (the head, each layer), once
    the float weights it read are no longer needed: the caller lets go of the checkpoint's pages there."""
    if recipe.scheme == "int8" or recipe.embedding_bits:
        import executorch.kernels.quantized  # noqa: F401  (the dequantize / embedding kernels' out variants)
    quantize_part = _linear_quantizer(recipe)
    _untie_head(decoder)
    with torch.no_grad():
        if quantize_part is not None:
            # the head first: its float temporaries (vocab x hidden) come while little else is resident;
            # then layer by layer, so that one layer's float weights at a time are read
            _linear_quantizer(recipe, head=True)(decoder, lambda m: m is decoder.lm_head)
            release()
            for layer in decoder.layers:
                quantize_part(layer, lambda m: True)
                release()
            quantize_part(decoder, lambda m: True)  # any linear outside the layers
        if recipe.embedding_bits:
            decoder.embed = QuantizedEmbedding(decoder.embed, recipe.embedding_bits)
    release()
    _own_float_weights(decoder)


def _linear_quantizer(recipe: Recipe, head: bool = False):
    """``quantize_part(root, pick)``: quantize the float linears below ``root`` that ``pick`` selects
    (grouped schemes: those with whole groups along the input). None for the float recipes. The
    output head of 8da4w gets 8-bit weights (as llama.cpp's q4_0 keeps its head above 4 bits)."""
    group = None if head and recipe.scheme == "8da4w" else recipe.group_size

    def float_linear(module) -> bool:
        return (isinstance(module, nn.Linear) and type(module.weight.data) is torch.Tensor
                and (group is None or module.in_features % group == 0))

    if recipe.scheme == "int8":
        return lambda root, pick: _replace(root, lambda m: float_linear(m) and pick(m), Int8WeightOnlyLinear)
    if recipe.scheme in ("8da4w", "8da8w"):
        from torchao.quantization import quantize_

        config = _torchao_config(recipe, head)
        return lambda root, pick: quantize_(root, config, filter_fn=lambda m, fqn: float_linear(m) and pick(m))
    if recipe.scheme in ("fp32", "fp16"):
        return None
    raise EdgekitError(f"executorch recipe '{recipe.name}' is not implemented")  # a scheme this module lacks


def _torchao_config(recipe: Recipe, head: bool = False):
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig
    from torchao.quantization.granularity import PerAxis, PerGroup

    if recipe.scheme == "8da4w" and not head:
        return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(recipe.group_size))
    return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))


def _replace(root: nn.Module, match, make) -> None:
    for name, child in list(root.named_children()):
        if match(child):
            setattr(root, name, make(child))
        else:
            _replace(child, match, make)


def _symmetric(w: torch.Tensor, bits: int, group: int | None):
    """Symmetric integer values and float32 scales of ``w`` [rows, cols], per row or per group."""
    rows, cols = w.shape
    g = w.float().reshape(rows, -1, group or cols)
    qmax = 2 ** (bits - 1) - 1
    scales = g.abs().amax(-1, keepdim=True).clamp(min=1e-10) / qmax
    q = torch.round(g / scales).clamp(-qmax - 1, qmax).to(torch.int8).reshape(rows, cols)
    return q, scales.squeeze(-1)


class Int8WeightOnlyLinear(nn.Module):
    def __init__(self, lin: nn.Linear):
        super().__init__()
        q, scales = _symmetric(lin.weight.detach(), 8, None)
        self.register_buffer("weight", q)
        self.register_buffer("scales", scales[:, 0].contiguous())
        self.register_buffer("zero_points", torch.zeros(q.shape[0], dtype=torch.long))
        self.bias = None if lin.bias is None else nn.Parameter(lin.bias.detach().float().clone(), requires_grad=False)

    def forward(self, x):
        w = torch.ops.quantized_decomposed.dequantize_per_channel(
            self.weight, self.scales, self.zero_points, 0, -128, 127, torch.int8
        )
        return F.linear(x, w, self.bias)


class QuantizedEmbedding(nn.Module):
    def __init__(self, emb: nn.Embedding, bits: int):
        super().__init__()
        w = emb.weight.detach()
        self.bits = bits
        group = EMBEDDING_GROUP if bits == 4 and w.shape[1] % EMBEDDING_GROUP == 0 else None
        q, scales = _symmetric(w, bits, group)
        if bits == 4:  # two values a byte, the first in the high nibble, stored offset by 8
            u = (q.to(torch.int16) + 8).to(torch.uint8).reshape(q.shape[0], -1, 2)
            q = u[..., 0] * 16 + u[..., 1]
        self.register_buffer("weight", q.contiguous())
        self.register_buffer("scales", (scales if group else scales[:, 0]).contiguous())

    def forward(self, tokens):
        if self.bits == 4:
            return torch.ops.quantized_decomposed.embedding_4bit(self.weight, self.scales, None, -8, 7, tokens)
        return torch.ops.quantized_decomposed.embedding_byte(self.weight, self.scales, None, -128, 127, tokens)


def _own_float_weights(decoder) -> None:
    """Copy the weights left float (embedding, norms) out of the checkpoint file.

    from_pretrained maps the safetensors file and its tensors view that mapping; every page the
    quantizer read stays resident while any tensor still views the file. Once the float leftovers
    are copies, the mapping (the whole float checkpoint) goes.
    """
    for module in decoder.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if type(p) is nn.Parameter and type(p.data) is torch.Tensor:
                setattr(module, name, nn.Parameter(p.detach().clone(), requires_grad=False))


def _untie_head(decoder) -> None:
    """A head tied to the embedding gets its own parameter object (same storage), so quantizing the
    head leaves the embedding float and torch.export sees two distinct constants."""
    head, emb = decoder.lm_head, decoder.embed
    if head.weight is emb.weight:
        head.weight = nn.Parameter(emb.weight.detach(), requires_grad=False)
