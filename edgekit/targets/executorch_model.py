"""The module ExecuTorch exports: ``decoder.Decoder`` with a static KV cache in buffers.

``DecoderWithCache(tokens[1, n], input_pos[1], rows[m]) -> logits[1, m, vocab]`` appends ``n`` tokens
at position ``input_pos`` and returns the logits of the ``rows`` among them (indices into the ``n``):
every one for perplexity, the last only for a prefill, whose head then runs on one row, not ``n``. The cache lives in buffers
(``[1, max_context, kv_heads, head_dim]`` per layer, the layout ExecuTorch's LLM custom ops use);
positions past the current one are masked, so the cache never needs clearing. With the custom ops
(``llama::update_cache``, ``llama::custom_sdpa``) the cache update and attention are one kernel
each; without them, ``index_copy_`` and a masked ``scaled_dot_product_attention`` over the cache.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.targets.decoder import Decoder, Layer


def custom_ops_available() -> bool:
    """ExecuTorch's LLM custom ops (llama::custom_sdpa, llama::update_cache), registered for export."""
    try:
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
    except Exception:  # missing library or a build without them: the plain path still exports
        return False
    return hasattr(torch.ops.llama, "custom_sdpa") and hasattr(torch.ops.llama, "update_cache")


class DecoderWithCache(Decoder):
    def __init__(self, hf_model: nn.Module, model_type: str, max_context: int, *, custom_ops: bool,
                 cache_dtype=torch.float32):
        super().__init__(hf_model, model_type, max_context)
        self.custom = custom_ops
        self.cache_dtype = cache_dtype
        shape = (1, max_context, self.kv_heads, self.head_dim)
        # custom_sdpa reads only the slots written so far: no need to touch (and make resident) zeros
        new = torch.empty if custom_ops else torch.zeros
        for layer in self.layers:
            layer.register_buffer("k_cache", new(shape, dtype=cache_dtype), persistent=False)
            layer.register_buffer("v_cache", new(shape, dtype=cache_dtype), persistent=False)

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        start = input_pos[0].item()
        torch._check_is_size(start)
        torch._check(start < self.max_context)
        torch._check(start + n <= self.max_context)
        positions = torch.arange(n, dtype=torch.long) + input_pos
        x, rope = self.embed_and_rope(tokens, positions)
        mask = None
        if not self.custom:  # the cache holds max_context slots: hide the future ones
            slots = torch.arange(self.max_context, dtype=torch.long)
            keep = slots.unsqueeze(0) <= positions.unsqueeze(1)
            mask = torch.where(keep, 0.0, float("-inf")).to(self.cache_dtype)

        def attend(layer: Layer, q, k, v):
            dtype = q.dtype
            q, k, v = (t.to(self.cache_dtype) for t in (q, k, v))
            if self.custom:
                torch.ops.llama.update_cache(k, layer.k_cache, start)
                torch.ops.llama.update_cache(v, layer.v_cache, start)
                o = torch.ops.llama.custom_sdpa(q, layer.k_cache, layer.v_cache, start, None, 0.0, True, layer.scale)
            else:
                layer.k_cache.index_copy_(1, positions, k)
                layer.v_cache.index_copy_(1, positions, v)
                rep = layer.heads // layer.kv_heads
                kk = layer.k_cache.transpose(1, 2).repeat_interleave(rep, dim=1)
                vv = layer.v_cache.transpose(1, 2).repeat_interleave(rep, dim=1)
                o = F.scaled_dot_product_attention(q.transpose(1, 2), kk, vv, attn_mask=mask, scale=layer.scale)
                o = o.transpose(1, 2)
            return o.to(dtype)

        return self.decode(x, rope, attend, rows)
