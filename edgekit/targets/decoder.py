"""A decoder built on a HF model's own weights, for targets that trace or export one graph with a KV cache.

``Decoder`` holds the weights, rearranged; a target subclasses it with its ``forward(tokens[1, n],
input_pos[1]) -> logits[1, n, vocab]``, which keeps the cache in buffers and hands each layer an
``attend(layer, q, k, v) -> o`` (q/o ``[1, n, heads, head_dim]``, k/v ``[1, n, kv_heads, head_dim]``)
that writes the new keys and values into the cache and attends over it. Explicit causal masks, no
transformers mask or cache code in the graph: exporters see plain tensor ops.

One decoder serves every supported architecture: what differs between them is a row of
``decoder_arch.ARCHITECTURES`` (module names, fused projections, norms and where they sit, embedding
scale, rotary or learned positions, soft-capping); what a config says is read from it. A layer may
attend within a sliding window (``Layer.window``: the query at position p sees positions p - window + 1
to p), which the targets' masks apply over a cache of the full context; ``visible`` says which slots a
query sees, ``attention`` attends with soft-capped scores where a layer has them. The graph is written
to lower well on delegates (ExecuTorch's XNNPACK in particular):

- norms reduce over channels with a matmul by a constant ``1/D`` vector (XNNPACK's mean only pools
  4D tensors), epsilon its bias; they compute in float32 as the HF modules do;
- the rotary embedding's rotate-half is a matmul by a constant +-1 matrix (no slices), and partial
  rotary (Phi-2, Phi-3) pads cos/sin with 1/0;
- fused projections (Phi-3's qkv and gate/up, GPT-2's c_attn) are split into separate linears once,
  at build time, and GPT-2's Conv1D become linears, so quantizers see every projection;
- reshapes leave the sequence length as -1 (XNNPACK's reshape takes one inferred dimension, not a
  symbolic one).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.targets.decoder_arch import ARCHITECTURES, Arch

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
    """One HF decoder layer: ``window`` (None: global attention), ``rope`` (which rotary table),
    ``softcap`` (of the attention scores, or None) and ``scale`` say how it attends."""

    def __init__(self, hf_layer: nn.Module, arch: Arch, dims: dict, idx: int, window: int | None):
        super().__init__()
        attn = getattr(hf_layer, arch.attn)
        hf_mlp = hf_layer.mlp
        self.index = idx
        self.window = window
        self.rope = 1 if window and arch.local_rotary else 0
        self.softcap = dims["attn_softcap"]
        self.ln1 = _Norm(getattr(hf_layer, arch.ln1), arch.norm_offset)
        self.ln2 = _Norm(getattr(hf_layer, arch.ln2), arch.norm_offset) if arch.ln2 else None  # None: parallel
        self.attn_out_norm = (_Norm(getattr(hf_layer, arch.attn_out_norm), arch.norm_offset)
                              if arch.attn_out_norm else None)
        self.mlp_out_norm = _Norm(getattr(hf_layer, arch.mlp_out_norm), arch.norm_offset) if arch.mlp_out_norm else None
        self.heads, self.kv_heads, self.head_dim = dims["heads"], dims["kv_heads"], dims["head_dim"]
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if isinstance(arch.qkv, str):
            self.q_proj, self.k_proj, self.v_proj = _as_linears(getattr(attn, arch.qkv), [q_size, kv_size, kv_size])
        else:
            self.q_proj, self.k_proj, self.v_proj = (_as_linears(getattr(attn, n), [s])[0]
                                                     for n, s in zip(arch.qkv, (q_size, kv_size, kv_size)))
        (self.o_proj,) = _as_linears(getattr(attn, arch.out), [dims["hidden"]])
        q_norm, k_norm = (getattr(attn, n, None) for n in arch.qk_norm or ("", ""))
        self.q_norm = _Norm(q_norm, arch.norm_offset) if q_norm is not None else None
        self.k_norm = _Norm(k_norm, arch.norm_offset) if k_norm is not None else None
        inter = dims["intermediate"]
        if not arch.gated:
            self.gate_proj, (self.up_proj,) = None, _as_linears(getattr(hf_mlp, arch.mlp[1]), [inter])
        elif isinstance(arch.mlp, str):
            self.gate_proj, self.up_proj = _as_linears(getattr(hf_mlp, arch.mlp), [inter, inter])
        else:
            (self.gate_proj,), (self.up_proj,) = (_as_linears(getattr(hf_mlp, n), [inter]) for n in arch.mlp)
        (self.down_proj,) = _as_linears(getattr(hf_mlp, arch.mlp_out), [dims["hidden"]])
        # an orthogonal matrix the MLP's hidden state is multiplied by in blocks of its size before the
        # down projection (whose weights carry its inverse); None: none (rotation.rotate_mlp_hidden)
        self.register_buffer("mlp_rotation", None, persistent=False)
        self.act = getattr(hf_mlp, arch.act)
        scale = vars(attn).get("scaling") or dims["scale"]
        self.scale = scale / (idx + 1 if dims.get("scale_by_layer") else 1)

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
        a = self.o_proj(o)
        if self.attn_out_norm is not None:
            a = self.attn_out_norm(a)
        if self.ln2 is None:  # attention and MLP side by side on one norm's output (Phi-2)
            return a + self.mlp(h) + x
        x = x + a
        m = self.mlp(self.ln2(x))
        if self.mlp_out_norm is not None:
            m = self.mlp_out_norm(m)
        return x + m

    def mlp(self, h):
        if self.gate_proj is None:
            h = self.act(self.up_proj(h))
        else:
            h = self.act(self.gate_proj(h)) * self.up_proj(h)
        if self.mlp_rotation is not None:
            h = F.linear(h.reshape(1, -1, self.mlp_rotation.shape[0]), self.mlp_rotation).reshape(1, -1, h.shape[-1])
        return self.down_proj(h)


def visible(slots: torch.Tensor, positions: torch.Tensor, window: int | None) -> torch.Tensor:
    """keep[i, j]: the query at ``positions[i]`` sees the cache slot holding position ``slots[j]``
    (causal, and within ``window`` positions when there is one, as HF's sliding-window mask)."""
    ahead = positions.unsqueeze(1) - slots.unsqueeze(0)  # query position - key position
    keep = ahead >= 0
    if window:
        keep = keep & (ahead < window)
    return keep


def attention(q, k, v, mask, scale: float, softcap: float | None = None) -> torch.Tensor:
    """Attention of q ``[1, heads, n, d]`` over k/v ``[1, heads, s, d]`` with an additive ``mask``
    ``[n, s]``; scores soft-capped (``softcap * tanh(score / softcap)``, Gemma 2) before the mask when
    ``softcap`` is given, which fused attention kernels cannot do."""
    if softcap is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    scores = torch.matmul(q, k.transpose(2, 3)) * scale
    scores = torch.tanh(scores / softcap) * softcap + mask
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(q.dtype), v)


def layer_windows(config, count: int) -> list[int | None]:
    """Each layer's sliding window (None: global), as HF's modules read the config: ``layer_types``
    where the config has them, else one window for every layer (Mistral) or none."""
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if not window:
        return [None] * count
    if types:
        return [window if t == "sliding_attention" else None for t in types]
    return [window] * count


def _submodule(module: nn.Module, path: str) -> nn.Module:
    for name in path.split("."):
        module = getattr(module, name)
    return module


class Decoder(nn.Module):
    """The weights and the pieces of a forward; subclasses own the cache and the forward itself."""

    def __init__(self, hf_model: nn.Module, model_type: str, max_context: int):
        super().__init__()
        arch = ARCHITECTURES[model_type]
        config = hf_model.config.get_text_config() if arch.text_config else hf_model.config
        base = _submodule(hf_model, arch.base)
        hidden = config.hidden_size
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        dims = {
            "hidden": hidden,
            "intermediate": (getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
                             or 4 * hidden),
            "heads": heads,
            "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
            "head_dim": head_dim,
            "scale": head_dim**-0.5,
            "attn_softcap": getattr(config, "attn_logit_softcapping", None) if arch.attn_softcap else None,
        }
        if model_type == "gpt2":
            dims["scale"] = head_dim**-0.5 if config.scale_attn_weights else 1.0
            dims["scale_by_layer"] = config.scale_attn_by_inverse_layer_idx
        self.max_context = max_context
        self.kv_heads, self.head_dim = dims["kv_heads"], head_dim
        self.embed, scale = _embedding(getattr(base, arch.embed), math.sqrt(hidden) if arch.embed_scale else None)
        # a float32 constant, rounded to the weights' dtype in the forward, as HF does
        self.register_buffer("embed_scale", torch.tensor(scale) if scale else None, persistent=False)
        self.pos_embed = getattr(base, arch.positions) if arch.positions else None
        hf_layers = getattr(base, arch.layers)
        windows = layer_windows(config, len(hf_layers))
        self.layers = nn.ModuleList(Layer(layer, arch, dims, i, w)
                                    for i, (layer, w) in enumerate(zip(hf_layers, windows)))
        self.windows = sorted({w for w in windows if w}) + [None] * (None in windows)  # each kind of mask
        self.norm = _Norm(getattr(base, arch.norm), arch.norm_offset)
        head = hf_model.lm_head
        self.lm_head = head if isinstance(head, nn.Linear) else _as_linears(head, [config.vocab_size])[0]
        self.final_softcap = getattr(config, "final_logit_softcapping", None) if arch.final_softcap else None
        self.rotary = 0
        if arch.positions is None:
            modules = [base.rotary_emb] + ([getattr(base, arch.local_rotary)] if arch.local_rotary else [])
            for i, module in enumerate(modules):
                cos, sin, rot = _rotary_tables(module, max_context, head_dim)
                self.register_buffer(f"rope_cos{i or ''}", cos, persistent=False)
                self.register_buffer(f"rope_sin{i or ''}", sin, persistent=False)
            self.register_buffer("rope_rot", rot, persistent=False)  # the same rotated channels in every table
            self.rotary = len(modules)

    def embed_and_rope(self, tokens: torch.Tensor, positions: torch.Tensor, rows: Callable | None = None):
        """The input embeddings of ``tokens`` at ``positions`` and, for each rotary table, its rows for
        them (an empty tuple without rotary); ``rows(table)`` takes the positions' rows of a table
        (default: an index_select)."""
        rows = rows or (lambda table: table.index_select(0, positions))
        x = self.embed(tokens)
        if self.embed_scale is not None:
            x = x * self.embed_scale.to(x.dtype)
        if self.pos_embed is not None:
            x = x + self.pos_embed(positions).unsqueeze(0)
        ropes = []
        for i in range(self.rotary):
            cos = rows(getattr(self, f"rope_cos{i or ''}")).to(x.dtype).unsqueeze(1).unsqueeze(0)
            sin = rows(getattr(self, f"rope_sin{i or ''}")).to(x.dtype).unsqueeze(1).unsqueeze(0)
            ropes.append((cos, sin, self.rope_rot.to(x.dtype)))
        return x, tuple(ropes)

    def decode(self, x: torch.Tensor, ropes, attend: Attend, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Every layer, the final norm and the head: float32 logits, of the positions ``rows`` only
        when given (indices into the sequence)."""
        for layer in self.layers:
            x = layer(x, ropes[layer.rope] if ropes else None, attend)
        if rows is not None:
            x = x.index_select(1, rows)
        logits = self.lm_head(self.norm(x)).float()
        if self.final_softcap:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits


def _embedding(module: nn.Module, scale: float | None) -> tuple[nn.Module, float | None]:
    """The token embedding and the factor its rows are scaled by. An embedding that scales itself
    (Gemma 3's) becomes a plain one on the same table, its factor (a float32 value) returned."""
    own = getattr(module, "embed_scale", None)
    if own is None:
        return module, scale
    plain = nn.Embedding(module.num_embeddings, module.embedding_dim, device="meta")
    plain.weight = module.weight  # the same parameter: a tied head stays tied
    return plain, float(own)


def cache_length(config, max_context: int) -> int:
    """Slots of a static cache that does not apply a sliding window itself: ``max_context``, or the
    sliding window where the model has a shorter one (a full cache of ``window`` slots is exact; a
    longer one would need a ring buffer). The decoder's own caches apply windows (``Layer.window``)."""
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
