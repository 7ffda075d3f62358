"""Quantization of the ExecuTorch decoder, in the forms ExecuTorch runs.

- ``8da4w[-gN]`` / ``8da8w``: torchao's int8 dynamic (per-token) activations with int4 grouped or
  int8 per-channel weights; XNNPACK runs these linears. Every scale is symmetric and positive (XNNPACK
  refuses a negative one, so llama.cpp's q4_0 rule, the signed extreme over -8, is not available):
  torchao's "no clipping error" mapping, max(-min / -qmin, max / qmax), which keeps each group's
  extreme weight exact where the plain rule (absmax / 7.5) clips it. The int4 groups are rounded
  against bfloat16 scales, which is what XNNPACK keeps of them. The output head is int8 per channel
  (as llama.cpp keeps its head above 4 bits); 8da4w quantizes the embedding table to int4 unless the
  recipe asks for ``-emb8``. ``-mixN`` keeps the N decoder layers most sensitive to 4 bits (measured
  on the calibration text, ``sensitivity``) at the head's int8 per channel. 8da8w first rotates the
  residual stream (``rotation``), which spreads the activation outliers per-token int8 suffers from.
- ``int8``: weight-only int8, per output channel. ExecuTorch 1.5's XNNPACK has no weight-only
  linear, so each call dequantizes the weights with the ``quantized`` kernel library and XNNPACK
  runs the float linear with those weights as an input: the file is a quarter of fp32, the speed
  is well below fp32 (the recipe's summary says so).
- ``-emb8`` / ``-emb4``: the embedding table as ``quantized_decomposed::embedding_byte`` /
  ``embedding_4bit`` (int8 per row, int4 in groups), gathered row by row without dequantizing the
  whole table, rounded as torchao rounds it (the same symmetric mapping).

Every linear layer is quantized, the output head included; a head tied to the embedding gets its own
quantized copy. The measurements behind these choices (SmolLM2-135M) are in the README.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe

EMBEDDING_GROUP = 32  # int4 embedding rows are quantized in groups of this many values
# a tied embedding at 8 bits (-emb8) of these schemes, whose head is XNNPACK's int8 per channel, reads the head's table
SHARED_TABLE_SCHEMES = ("8da4w", "8da8w")
SHARED_TABLE = "the head's and embedding's int8 table, stored once outside the program"


def calibration(source, recipe: Recipe) -> tuple[list[list[int]], dict] | None:
    """The calibration sequences of -mixN's measurement and their record (None: not calibrated); read
    before the weights load, so that a missing or empty text is said first."""
    from edgekit.calibration import token_windows

    return token_windows(source, recipe) if recipe.calibrated else None


def kept_layers(source, recipe: Recipe, calibration) -> tuple[tuple[int, ...], dict | None]:
    """-mixN: the N decoder layers most sensitive to 4 bits, measured on the calibration text
    (``sensitivity``), which keep 8-bit weights; and what the manifest records of the measurement."""
    if not recipe.mixed:
        return (), None
    from edgekit.targets import sensitivity

    return sensitivity.costliest_layers(source, calibration, recipe.mixed, 4, recipe.group_size)


def rotate(decoder: nn.Module, recipe: Recipe) -> dict | None:
    """The residual stream rotated (``rotation``) where the recipe's scheme asks for it and the
    decoder allows it; what the manifest records of it (None: not asked)."""
    from edgekit.recipes import target_spec
    from edgekit.targets import rotation

    if not target_spec(recipe.target).schemes[recipe.scheme].rotated:
        return None
    why = rotation.refusal(decoder)
    if why:
        return {"applied": False, "reason": why}
    record = {"applied": True, "residual": rotation.rotate(decoder)}
    mlp = rotation.rotate_mlp_hidden(decoder)
    return {**record, "mlp_hidden": mlp} if mlp else record


def importance(decoder: nn.Module, calibration: tuple[list[list[int]], dict]) -> tuple[dict[str, torch.Tensor], dict]:
    """-imatrix: the importance matrix of the decoder's linear layers (``imatrix``: the mean square of
    each input column) over the calibration sequences, by module name; and what the manifest records
    of it (the text, tokens, seconds)."""
    from edgekit.targets import imatrix

    sequences, text = calibration
    started = time.perf_counter()
    window = min(max(len(s) for s in sequences), decoder.max_context)

    def forward(tokens):  # a fresh window from position 0; every token's position: the head reads the last row only
        return decoder(tokens, torch.arange(tokens.shape[1]))

    ids = [t for s in sequences for t in s]
    with torch.no_grad():
        found = imatrix.collect(decoder, ids, lambda name: name if name.startswith("layers.") else None,
                                window, forward)
    record = {**text, "tokens": len(ids), "seconds": round(time.perf_counter() - started, 1)}
    return {name: torch.from_numpy(v) for name, v in found.items()}, record


def quantize(decoder: nn.Module, recipe: Recipe, release: Callable[[], object] = lambda: None,
             keep: tuple[int, ...] = (), importance: dict[str, torch.Tensor] | None = None) -> dict:
    """Quantize ``decoder`` in place. ``release()`` runs after each part (the head, each layer), once
    the float weights it read are no longer needed: the caller lets go of the checkpoint's pages there.
    ``keep``: the layers (-mixN's) whose linears get 8-bit weights, as the head's. ``importance``
    (-imatrix's, by module name): the 4-bit groups' scales chosen for the least rounding error weighted
    by it (``weighted_rounding``) instead of the no-clipping-error rule. Returns what the manifest
    records of it (how the weights, head and embedding are stored; seconds)."""
    if recipe.scheme == "int8" or recipe.embedding_bits:
        import executorch.kernels.quantized  # noqa: F401  (the dequantize / embedding kernels' out variants)
    started = time.perf_counter()
    quantize_part = _linear_quantizer(recipe)
    tied = _untie_head(decoder)
    info = {"weights": _describe(recipe)}
    fallback = _group_fallback(decoder, recipe)
    if fallback:
        info["group_fallback"] = fallback
    with torch.no_grad():
        if quantize_part is not None:
            # the head first: its float temporaries (vocab x hidden) come while little else is resident;
            # then layer by layer, so that one layer's float weights at a time are read
            _linear_quantizer(recipe, eight=True)(decoder, lambda m: m is decoder.lm_head)
            info["head"] = _describe(recipe, head=True)
            release()
            eight = _linear_quantizer(recipe, eight=True) if keep else None
            for i, layer in enumerate(decoder.layers):
                if i in keep:
                    eight(layer, lambda m: True)
                else:
                    chosen = _weighted(layer, f"layers.{i}.", recipe, importance) if importance else {}
                    quantize_part(layer, lambda m: True)
                    for lin, (q, scale) in chosen.items():  # torchao's tensor, with the searched integers and scales
                        lin.weight.qdata.copy_(q)
                        lin.weight.scale.copy_(scale)
                release()
            quantize_part(decoder, lambda m: True)  # any linear outside the layers
        if recipe.embedding_bits == 8 and tied and recipe.scheme in SHARED_TABLE_SCHEMES:
            # one table: the embedding gathers rows of the head's int8 table, which the export stores once
            decoder.embed = QuantizedEmbedding.from_head(decoder.lm_head.weight)
            info["embedding"] = "int8 per row, the head's table (" + SHARED_TABLE + ")"
            info["shared_table"] = SHARED_TABLE
        elif recipe.embedding_bits:
            decoder.embed = QuantizedEmbedding(decoder.embed, recipe.embedding_bits)
            info["embedding"] = decoder.embed.describe()
    release()
    _own_float_weights(decoder)
    if importance:
        info["scales"] = "imatrix-weighted search (weighted_rounding), positive, bfloat16"
    info["quantize_s"] = round(time.perf_counter() - started, 1)
    return info


def _weighted(layer: nn.Module, prefix: str, recipe: Recipe, importance: dict[str, torch.Tensor]) -> dict:
    """The 4-bit linears of ``layer`` (with an importance matrix) -> their integers and scales from the
    importance-weighted search, in torchao's layout (int8 values, bfloat16 scales per group)."""
    from edgekit.targets import weighted_rounding

    out = {}
    for name, lin in layer.named_modules():
        imp = importance.get(prefix + name)
        group = _group_for(lin.in_features, recipe) if isinstance(lin, nn.Linear) else None
        if imp is not None and group and type(lin.weight.data) is torch.Tensor:
            out[lin] = weighted_rounding.round_groups(lin.weight.data, imp, 4, group)
    return out


def _group_for(cols: int, recipe: Recipe) -> int | None:
    """The group size of a 4-bit linear with ``cols`` inputs: the recipe's where it divides them, else
    the largest smaller one of the scheme's that does (None: none does; the linear gets 8 bits)."""
    from edgekit.recipes import target_spec

    if cols % recipe.group_size == 0:
        return recipe.group_size
    sizes = target_spec(recipe.target).schemes[recipe.scheme].group_sizes
    return max((g for g in sizes if g < recipe.group_size and cols % g == 0), default=None)


def _group_fallback(decoder: nn.Module, recipe: Recipe) -> dict[str, str]:
    """What the manifest says of the linears whose inputs the recipe's groups do not split: by input
    size, the group size they get instead (or int8 per channel)."""
    if recipe.scheme != "8da4w":
        return {}
    out = {}
    for m in decoder.layers.modules():
        if isinstance(m, nn.Linear) and m.in_features % recipe.group_size:
            g = _group_for(m.in_features, recipe)
            out[f"{m.in_features} inputs"] = f"int4 in groups of {g}" if g else "int8 per channel"
    return out


def _describe(recipe: Recipe, head: bool = False) -> str:
    if recipe.scheme == "int8":
        return "int8 per channel, weight-only"
    if recipe.scheme == "8da4w" and not head:
        return f"int4 in groups of {recipe.group_size}, symmetric, bfloat16 scales; int8 activations per token"
    return "int8 per channel, symmetric; int8 activations per token"


def _linear_quantizer(recipe: Recipe, eight: bool = False):
    """``quantize_part(root, pick)``: quantize the float linears below ``root`` that ``pick`` selects.
    None for the float recipes. 8da4w's groups are the recipe's where they split a linear's inputs,
    else the largest smaller group size that does, else int8 per channel (``_group_for``).
    ``eight``: 8-bit weights per channel whatever the scheme (8da4w's output head, as llama.cpp's
    q4_0 keeps its head above 4 bits, and the layers -mixN keeps)."""

    def float_linear(module) -> bool:
        return isinstance(module, nn.Linear) and type(module.weight.data) is torch.Tensor

    if recipe.scheme == "int8":
        return lambda root, pick: _replace(root, lambda m: float_linear(m) and pick(m), Int8WeightOnlyLinear)
    if recipe.scheme in ("8da4w", "8da8w"):
        from torchao.quantization import quantize_

        if eight or recipe.scheme == "8da8w":
            config = _torchao_config(recipe, None)
            return lambda root, pick: quantize_(root, config, filter_fn=lambda m, fqn: float_linear(m) and pick(m))

        def quantize_part(root, pick):
            linears = [m for m in root.modules() if float_linear(m) and pick(m)]
            for group in {_group_for(m.in_features, recipe) for m in linears}:
                chosen = {id(m) for m in linears if _group_for(m.in_features, recipe) == group}
                quantize_(root, _torchao_config(recipe, group), filter_fn=lambda m, fqn: id(m) in chosen)
        return quantize_part
    if recipe.scheme in ("fp32", "fp16"):
        return None
    raise EdgekitError(f"executorch recipe '{recipe.name}' is not implemented")  # a scheme this module lacks


def _torchao_config(recipe: Recipe, group: int | None):
    """torchao's config: int4 in groups of ``group`` (8da4w), else int8 per channel."""
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, MappingType
    from torchao.quantization.granularity import PerAxis, PerGroup

    if group:
        return Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4, weight_granularity=PerGroup(group),
            weight_mapping_type=MappingType.SYMMETRIC_NO_CLIPPING_ERR,
            weight_scale_dtype=torch.bfloat16,  # what XNNPACK keeps of grouped scales: round against that
        )
    return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0),
                                                 weight_mapping_type=MappingType.SYMMETRIC_NO_CLIPPING_ERR)


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
    def __init__(self, emb: nn.Embedding | None, bits: int):
        super().__init__()
        if emb is None:  # from_head fills it
            return
        w = emb.weight.detach()
        self.bits = bits
        self.group = EMBEDDING_GROUP if bits == 4 and w.shape[1] % EMBEDDING_GROUP == 0 else None
        q, scales = _table(w, bits, self.group)
        if bits == 4:  # two values a byte, the first in the high nibble, stored offset by 8
            u = (q.to(torch.int16) + 8).to(torch.uint8).reshape(q.shape[0], -1, 2)
            q = u[..., 0] * 16 + u[..., 1]
        self.register_buffer("weight", q.contiguous())
        self.register_buffer("scales", (scales if self.group else scales[:, 0]).contiguous())

    @classmethod
    def from_head(cls, head_weight) -> QuantizedEmbedding:
        """An int8 embedding whose rows are those of a (tied) head quantized by torchao to int8 per
        output channel: its integers and scales, the same tensors (``embedding_byte`` takes them as
        they are)."""
        emb = cls(None, 8)
        emb.bits, emb.group, emb.head_table = 8, None, True
        emb.register_buffer("weight", head_weight.qdata.detach().clone())  # a constant of its own to torch.export
        emb.register_buffer("scales", head_weight.scale.detach().float().reshape(-1))
        return emb

    def describe(self) -> str:
        return f"int{self.bits} " + (f"in groups of {self.group}" if self.group else "per row") + ", symmetric"

    def forward(self, tokens):
        if self.bits == 4:
            return torch.ops.quantized_decomposed.embedding_4bit(self.weight, self.scales, None, -8, 7, tokens)
        return torch.ops.quantized_decomposed.embedding_byte(self.weight, self.scales, None, -128, 127, tokens)


def _table(w: torch.Tensor, bits: int, group: int | None):
    """The embedding table as torchao rounds it, with the linears' symmetric mapping: integer values
    [rows, cols] and float32 scales [rows, 1] or [rows, groups]."""
    from torchao.quantization import IntxWeightOnlyConfig, MappingType, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    holder = nn.Embedding(w.shape[0], w.shape[1], _weight=w.float(), _freeze=True)
    config = IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{bits}"),
                                  granularity=PerGroup(group) if group else PerAxis(0),
                                  mapping_type=MappingType.SYMMETRIC_NO_CLIPPING_ERR)
    quantize_(holder, config, filter_fn=lambda m, fqn: isinstance(m, nn.Embedding))
    t = holder.weight
    return t.qdata.to(torch.int8), t.scale.float().reshape(w.shape[0], -1)


def stored_weights(decoder: nn.Module) -> dict:
    """What the program stores of ``decoder`` (``inspect``'s stored weights): stored type -> bits,
    tensors, elements, bytes, 4-bit values as 4-bit with their group size (torchao keeps them in int8
    until XNNPACK packs them), their scales apart; the KV caches (state, not weights) and a table
    shared with the head (stored once) left out."""
    from edgekit.targets.weights import tally

    weights: dict[str, dict] = {}
    seen: set[int] = set()
    for module in decoder.modules():
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for name, t in tensors:
            if t is None or id(t) in seen or name in ("k_cache", "v_cache") or (
                    name == "weight" and getattr(module, "head_table", False)):
                continue
            seen.add(id(t))
            if getattr(t, "qdata", None) is not None:  # a torchao quantized tensor
                bits = {torch.int4: 4, torch.int8: 8}.get(getattr(t, "target_dtype", None), 8)
                block = (getattr(t, "block_size", None) or (0,))[-1]
                how = f"groups of {block}" if block and block < t.shape[-1] else "per channel"
                tally(weights, f"int{bits} ({how})", bits, t.numel())
                tally(weights, f"{str(t.scale.dtype).removeprefix('torch.')} (scales)", 8 * t.scale.element_size(),
                      t.scale.numel())
            elif isinstance(module, QuantizedEmbedding) and name == "weight" and module.bits == 4:
                how = f"groups of {module.group}" if module.group else "per row"
                tally(weights, f"int4 ({how})", 4, 2 * t.numel())  # two values a byte
            else:
                tally(weights, str(t.dtype).removeprefix("torch."), 8 * t.element_size(), t.numel())
    return dict(sorted(weights.items(), key=lambda kv: -kv[1]["bytes"]))


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


def _untie_head(decoder) -> bool:
    """A head tied to the embedding gets its own parameter object (same storage), so quantizing the
    head leaves the embedding float and torch.export sees two distinct constants. Returns whether it
    was tied (the same weights: not after a rotation, which gives each its own)."""
    head, emb = decoder.lm_head, decoder.embed
    if head.weight is emb.weight:
        head.weight = nn.Parameter(emb.weight.detach(), requires_grad=False)
        return True
    return head.weight.data_ptr() == emb.weight.data_ptr() and head.weight.shape == emb.weight.shape
