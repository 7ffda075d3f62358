"""A decoder built on a HF model's own weights, for targets that trace or export one graph with a KV cache.

``Decoder`` holds the weights, rearranged; a target subclasses it with its ``forward(tokens[1, n],
input_pos[1]) -> logits[1, n, vocab]``, which keeps the cache in buffers and hands each layer an
``attend(layer, q, k, v) -> o`` (q/o ``[1, n, heads, head_dim]``, k/v ``[1, n, kv_heads, head_dim]``)
that writes the new keys and values into the cache and attends over it. Explicit causal masks, no
transformers mask or cache code in the graph: exporters see plain tensor ops.

One decoder serves every supported architecture: what differs between them is a row of
``ARCHITECTURES`` (module names, fused projections, norm kind, embedding scale, rotary or learned
positions). The graph is written to lower well on delegates (ExecuTorch's XNNPACK in particular):

- norms reduce over channels with a matmul by a constant ``1/D`` vector (XNNPACK's mean only pools
  4D tensors), epsilon its bias; they compute in float32 as the HF modules do;
- the rotary embedding's rotate-half is a matmul by a constant +-1 matrix (no slices), and partial
  rotary (Phi-3) pads cos/sin with 1/0;
- fused projections (Phi-3's qkv and gate/up, GPT-2's c_attn) are split into separate linears once,
  at build time, and GPT-2's Conv1D become linears, so quantizers see every projection;
- reshapes leave the sequence length as -1 (XNNPACK's reshape takes one inferred dimension, not a
  symbolic one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Arch:
    base: str = "model"  # the decoder stack inside the *ForCausalLM module
    layers: str = "layers"
    embed: str = "embed_tokens"
    positions: str | None = None  # learned position embedding (GPT-2); None: rotary
    norm: str = "norm"
    ln1: str = "input_layernorm"
    ln2: str = "post_attention_layernorm"
    norm_offset: float = 0.0  # RMSNorm scales by (offset + weight) (Gemma: 1)
    attn: str = "self_attn"
    qkv: str | tuple[str, str, str] = ("q_proj", "k_proj", "v_proj")  # a str: one fused projection
    out: str = "o_proj"
    qk_norm: bool = False  # per-head RMSNorm of q and k before the rotary (Qwen3)
    mlp: str | tuple[str, str] = ("gate_proj", "up_proj")  # gated: act(gate) * up; a str: fused gate/up
    mlp_out: str = "down_proj"
    gated: bool = True  # False: down(act(up(x))) with mlp = ("", up) (GPT-2)
    act: str = "act_fn"
    embed_scale: bool = False  # embeddings times sqrt(hidden) (Gemma)


ARCHITECTURES = {
    "llama": Arch(),
    "mistral": Arch(),
    "qwen2": Arch(),
    "qwen3": Arch(qk_norm=True),
    "gemma": Arch(embed_scale=True, norm_offset=1.0),
    "phi3": Arch(qkv="qkv_proj", mlp="gate_up_proj", act="activation_fn"),
    "gpt2": Arch(
        base="transformer", layers="h", embed="wte", positions="wpe", norm="ln_f", ln1="ln_1", ln2="ln_2",
        attn="attn", qkv="c_attn", out="c_proj", mlp=("", "c_fc"), mlp_out="c_proj", gated=False, act="act",
    ),
}

Attend = Callable[["Layer", torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        lin.bias = nn.Parameter(bias, requires_grad=False)
    return lin


def _as_linears(module: nn.Module, sizes: list[int]) -> list[nn.Linear]:
    """A (possibly fused) projection as one nn.Linear per output block. GPT-2's Conv1D computes
    x @ W + b with W [in, out]: transposed here."""
    from transformers.pytorch_utils import Conv1D

    w = module.weight.detach()
    w = w.t() if isinstance(module, Conv1D) else w
    b = module.bias.detach() if module.bias is not None else None
    if len(sizes) == 1:
        return [_linear(w.contiguous(), b)]
    ws = [t.contiguous() for t in w.split(sizes, dim=0)]
    bs = [t.contiguous() for t in b.split(sizes)] if b is not None else [None] * len(sizes)
    return [_linear(wi, bi) for wi, bi in zip(ws, bs)]


class _Norm(nn.Module):
    """RMSNorm or LayerNorm over the last dimension, in float32, the mean taken as a matmul.

    The mean square is the sum of (x / sqrt(D))^2: where a converter computes in float16 anyway
    (Core ML's fp16 precision drops the casts), squares overflow only past |x| = 256 sqrt(D), not 256.
    """

    def __init__(self, hf_norm: nn.Module, offset: float = 0.0):
        super().__init__()
        self.layer = isinstance(hf_norm, nn.LayerNorm)
        eps = getattr(hf_norm, "variance_epsilon", None)
        eps = float(eps if eps is not None else hf_norm.eps)
        w = hf_norm.weight.detach().float() + offset
        dim = w.shape[0]
        self.weight = nn.Parameter(w, requires_grad=False)
        b = getattr(hf_norm, "bias", None)
        self.bias = nn.Parameter(b.detach().float(), requires_grad=False) if self.layer and b is not None else None
        self.register_buffer("avg", torch.full((1, dim), 1.0 / dim), persistent=False)
        self.register_buffer("ones", torch.ones((1, dim)), persistent=False)
        self.root = dim**-0.5
        self.register_buffer("eps", torch.tensor([eps]), persistent=False)  # the mean's bias: mean(x^2) + eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        if self.layer:
            x = x - F.linear(x, self.avg)
        h = x * self.root
        x = x * torch.rsqrt(F.linear(h * h, self.ones, self.eps)) * self.weight
        if self.bias is not None:
            x = x + self.bias
        return x.to(dtype)


class Layer(nn.Module):
    def __init__(self, hf_layer: nn.Module, arch: Arch, dims: dict, idx: int):
        super().__init__()
        attn = getattr(hf_layer, arch.attn)
        hf_mlp = hf_layer.mlp
        self.index = idx
        self.ln1 = _Norm(getattr(hf_layer, arch.ln1), arch.norm_offset)
        self.ln2 = _Norm(getattr(hf_layer, arch.ln2), arch.norm_offset)
        self.heads, self.kv_heads, self.head_dim = dims["heads"], dims["kv_heads"], dims["head_dim"]
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if isinstance(arch.qkv, str):
            self.q_proj, self.k_proj, self.v_proj = _as_linears(getattr(attn, arch.qkv), [q_size, kv_size, kv_size])
        else:
            self.q_proj, self.k_proj, self.v_proj = (_as_linears(getattr(attn, n), [s])[0]
                                                     for n, s in zip(arch.qkv, (q_size, kv_size, kv_size)))
        (self.o_proj,) = _as_linears(getattr(attn, arch.out), [dims["hidden"]])
        self.q_norm = _Norm(attn.q_norm) if arch.qk_norm else None
        self.k_norm = _Norm(attn.k_norm) if arch.qk_norm else None
        inter = dims["intermediate"]
        if not arch.gated:
            self.gate_proj, (self.up_proj,) = None, _as_linears(getattr(hf_mlp, arch.mlp[1]), [inter])
        elif isinstance(arch.mlp, str):
            self.gate_proj, self.up_proj = _as_linears(getattr(hf_mlp, arch.mlp), [inter, inter])
        else:
            (self.gate_proj,), (self.up_proj,) = (_as_linears(getattr(hf_mlp, n), [inter]) for n in arch.mlp)
        (self.down_proj,) = _as_linears(getattr(hf_mlp, arch.mlp_out), [dims["hidden"]])
        self.act = getattr(hf_mlp, arch.act)
        self.scale = dims["scale"] / (idx + 1 if dims.get("scale_by_layer") else 1)

    def forward(self, x, rope, attend: Attend):
        h = self.ln1(x)
        q = self.q_proj(h).view(1, -1, self.heads, self.head_dim)
        k = self.k_proj(h).view(1, -1, self.kv_heads, self.head_dim)
        v = self.v_proj(h).view(1, -1, self.kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            cos, sin, rot = rope
            q = q * cos + F.linear(q, rot) * sin
            k = k * cos + F.linear(k, rot) * sin
        o = attend(self, q, k, v).reshape(1, -1, self.heads * self.head_dim)
        x = x + self.o_proj(o)
        h = self.ln2(x)
        if self.gate_proj is None:
            h = self.act(self.up_proj(h))
        else:
            h = self.act(self.gate_proj(h)) * self.up_proj(h)
        return x + self.down_proj(h)


class Decoder(nn.Module):
    """The weights and the pieces of a forward; subclasses own the cache and the forward itself."""

    def __init__(self, hf_model: nn.Module, model_type: str, max_context: int):
        super().__init__()
        arch = ARCHITECTURES[model_type]
        config = hf_model.config
        base = getattr(hf_model, arch.base)
        hidden = config.hidden_size
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        first_attn = getattr(getattr(base, arch.layers)[0], arch.attn)
        dims = {
            "hidden": hidden,
            "intermediate": getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden,
            "heads": heads,
            "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
            "head_dim": head_dim,
            "scale": vars(first_attn).get("scaling") or head_dim**-0.5,
        }
        if model_type == "gpt2":
            dims["scale"] = head_dim**-0.5 if config.scale_attn_weights else 1.0
            dims["scale_by_layer"] = config.scale_attn_by_inverse_layer_idx
        self.max_context = max_context
        self.kv_heads, self.head_dim = dims["kv_heads"], head_dim
        self.embed = getattr(base, arch.embed)
        self.pos_embed = getattr(base, arch.positions) if arch.positions else None
        self.embed_scale = math.sqrt(hidden) if arch.embed_scale else None
        self.layers = nn.ModuleList(Layer(layer, arch, dims, i) for i, layer in enumerate(getattr(base, arch.layers)))
        self.norm = _Norm(getattr(base, arch.norm), arch.norm_offset)
        head = hf_model.lm_head
        self.lm_head = head if isinstance(head, nn.Linear) else _as_linears(head, [config.vocab_size])[0]
        if arch.positions is None:
            cos, sin, rot = _rotary_tables(base.rotary_emb, max_context, head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
            self.register_buffer("rope_rot", rot, persistent=False)
        else:
            self.rope_cos = self.rope_sin = self.rope_rot = None

    def embed_and_rope(self, tokens: torch.Tensor, positions: torch.Tensor, rows: Callable | None = None):
        """The input embeddings of ``tokens`` at ``positions`` and the rotary tables for them (or None);
        ``rows(table)`` takes the positions' rows of a rotary table (default: an index_select)."""
        rows = rows or (lambda table: table.index_select(0, positions))
        x = self.embed(tokens)
        if self.embed_scale is not None:
            x = x * torch.tensor(self.embed_scale, dtype=x.dtype)
        if self.pos_embed is not None:
            x = x + self.pos_embed(positions).unsqueeze(0)
        rope = None
        if self.rope_cos is not None:
            cos = rows(self.rope_cos).to(x.dtype).unsqueeze(1).unsqueeze(0)
            sin = rows(self.rope_sin).to(x.dtype).unsqueeze(1).unsqueeze(0)
            rope = (cos, sin, self.rope_rot.to(x.dtype))
        return x, rope

    def decode(self, x: torch.Tensor, rope, attend: Attend, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Every layer, the final norm and the head: float32 logits, of the positions ``rows`` only
        when given (indices into the sequence)."""
        for layer in self.layers:
            x = layer(x, rope, attend)
        if rows is not None:
            x = x.index_select(1, rows)
        return self.lm_head(self.norm(x)).float()


def load_model(source, dtype: torch.dtype) -> nn.Module:
    """The HF model of ``source`` (a ``ModelSource``) in eval mode, in ``dtype``, with eager attention."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        source.path,
        dtype=torch.float32,  # load as the reference does; fp16 is a cast in place below
        trust_remote_code=source.trust_remote_code,
        use_safetensors=None if source.allow_pickle else True,
        attn_implementation="eager",
    )
    model.eval().requires_grad_(False)
    if dtype != torch.float32:
        model.to(dtype)
    return model


def cache_length(config, max_context: int) -> int:
    """Slots of the static cache: ``max_context``, or the sliding window where the model has a shorter
    one (a full cache of ``window`` slots is exact; a longer one would need a ring buffer)."""
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) and max_context > window:
        return window
    return max_context


@torch.no_grad()
def _rotary_tables(rotary_emb: nn.Module, max_context: int, head_dim: int):
    """cos/sin for positions 0..max_context-1 from the HF rotary module (its scaling included), padded
    to head_dim with cos 1 / sin 0 for channels a partial rotary leaves alone; and the rotate-half
    matrix R, with F.linear(x, R) = cat(-x2, x1) on the rotated channels."""
    pos = torch.arange(max_context, dtype=torch.long)[None, :]
    cos, sin = rotary_emb(torch.zeros(1, 1, head_dim, dtype=torch.float32), pos)
    cos, sin = cos[0].float(), sin[0].float()
    rot = cos.shape[-1]
    if rot < head_dim:
        cos = torch.cat([cos, torch.ones(max_context, head_dim - rot)], dim=-1)
        sin = torch.cat([sin, torch.zeros(max_context, head_dim - rot)], dim=-1)
    half = rot // 2
    r = torch.zeros(head_dim, head_dim)
    idx = torch.arange(half)
    r[idx, idx + half] = -1.0
    r[idx + half, idx] = 1.0
    return cos.contiguous(), sin.contiguous(), r
