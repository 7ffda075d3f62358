"""The module ExecuTorch exports: ``decoder.Decoder`` with a static KV cache in buffers.

``DecoderWithCache(tokens[1, n], input_pos[1]) -> logits`` appends ``n`` tokens at position
``input_pos`` and returns the logits of the last one, ``[1, vocab]`` (ExecuTorch's LLM export
convention, which its ``TextLLMRunner`` runs: a prefill runs the head on one row, not ``n``), or of
every one, ``[1, n, vocab]``, with ``all_logits``. The cache lives in buffers
(``[1, max_context, kv_heads, head_dim]`` per layer, the layout ExecuTorch's LLM custom ops use);
positions past the current one are masked, so the cache never needs clearing. With the custom ops
(``llama::update_cache``, ``llama::custom_sdpa``) the cache update and attention are one kernel
each; without them, ``index_copy_`` and a masked ``scaled_dot_product_attention`` over the cache
(then ``[1, kv_heads, max_context, head_dim]``).

A sliding-window layer keeps the full context too and masks what lies beyond its window; on the
custom-op path it reads only the slots its window still sees (``custom_sdpa`` with that mask, not the
causal flag), so its cost does not grow with the position. A layer with soft-capped attention
scores (Gemma 2) attends in plain ops over the slots written so far, masked.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.targets.decoder import Decoder, Layer, attention, visible


def custom_ops_available() -> bool:
    """ExecuTorch's LLM custom ops (llama::custom_sdpa, llama::update_cache), registered for export."""
    try:
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
    except Exception:  # missing library or a build without them: the plain path still exports
        return False
    return hasattr(torch.ops.llama, "custom_sdpa") and hasattr(torch.ops.llama, "update_cache")


class DecoderWithCache(Decoder):
    def __init__(self, hf_model: nn.Module, model_type: str, max_context: int, *, custom_ops: bool,
                 cache_dtype=torch.float32, all_logits: bool = False):
        super().__init__(hf_model, model_type, max_context)
        self.custom = custom_ops
        self.all_logits = all_logits
        self.cache_dtype = cache_dtype
        # soft-capped global layers attend in plain ops: they need the causal mask the custom op builds itself
        self.masked_global = any(layer.window is None and layer.softcap is not None for layer in self.layers)
        self.capped = any(layer.softcap is not None for layer in self.layers)
        # the custom ops' layout, [1, slots, kv_heads, head_dim]; the plain path's is [1, kv_heads, slots,
        # head_dim], read without a transpose (one after the cache update makes ExecuTorch 1.5's XNNPACK
        # partitioner group nodes into partitions that depend on each other: "found dependency cycles")
        if custom_ops:
            shape = (1, max_context, self.kv_heads, self.head_dim)
        else:
            shape = (1, self.kv_heads, max_context, self.head_dim)
        # custom_sdpa reads only the slots written so far: no need to touch (and make resident) zeros
        new = torch.empty if custom_ops else torch.zeros
        for layer in self.layers:
            layer.register_buffer("k_cache", new(shape, dtype=cache_dtype), persistent=False)
            layer.register_buffer("v_cache", new(shape, dtype=cache_dtype), persistent=False)

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
        n, k = tokens.shape[1], input_pos.shape[0]
        start = input_pos[0].item()
        torch._check_is_size(start)
        torch._check(start < self.max_context)
        torch._check(start + n <= self.max_context)
        end = start + n
        positions = torch.arange(n, dtype=torch.long) + input_pos[:1]
        x, ropes = self.embed_and_rope(tokens, positions)
        # window (None: global) -> (first slot read, additive mask over the slots read) for the layers that
        # attend with a mask: every slot on the plain path; with the custom ops the slots written so far,
        # from the first one the window still sees (from 0 for soft-capped layers: torch.export cannot
        # shape their matmuls over that span)
        masks = {}
        for window in (w for w in self.windows if not self.custom or w or self.masked_global):
            first = 0
            if self.custom and window and not self.capped:
                first = torch.sym_max(0, start - window + 1)
                torch._check(end - first >= 1)  # a fact torch.export does not see through the max
            slots = torch.arange(first, end if self.custom else self.max_context, dtype=torch.long)
            keep = visible(slots, positions, window)
            masks[window] = first, torch.where(keep, 0.0, float("-inf")).to(self.cache_dtype)

        def attend(layer: Layer, q, k, v):
            dtype = q.dtype
            q, k, v = (t.to(self.cache_dtype) for t in (q, k, v))
            if self.custom:
                torch.ops.llama.update_cache(k, layer.k_cache, start)
                torch.ops.llama.update_cache(v, layer.v_cache, start)
                if layer.window is None and layer.softcap is None:
                    o = torch.ops.llama.custom_sdpa(q, layer.k_cache, layer.v_cache, start, None, 0.0, True,
                                                    layer.scale)
                    return o.to(dtype)
                first, mask = masks[layer.window]
                kc, vc = layer.k_cache[:, first:end], layer.v_cache[:, first:end]
                if layer.softcap is None:
                    o = torch.ops.llama.custom_sdpa(q, kc, vc, start, mask, 0.0, False, layer.scale)
                    return o.to(dtype)
                kc, vc = kc.transpose(1, 2), vc.transpose(1, 2)
            else:
                layer.k_cache.index_copy_(2, positions, k.transpose(1, 2))
                layer.v_cache.index_copy_(2, positions, v.transpose(1, 2))
                kc, vc = layer.k_cache, layer.v_cache
            rep = layer.heads // layer.kv_heads
            kk, vv = kc.repeat_interleave(rep, dim=1), vc.repeat_interleave(rep, dim=1)
            o = attention(q.transpose(1, 2), kk, vv, masks[layer.window][1], layer.scale, layer.softcap)
            return o.transpose(1, 2).to(dtype)

        if self.all_logits:
            return self.decode(x, ropes, attend)
        # the last n - k + 2 positions (at most n): the last two where input_pos lists every token's
        # position (the runner's cache_position; it reads the last row), all of them where it gives the
        # start alone (edgekit's scoring). Not n - k + 1: torch.export takes k for at least 2, and would
        # plan the rows for one less than the window
        first = torch.sym_max(torch.sym_min(k, n) - 2, 0)
        return self.decode(x, ropes, attend, torch.arange(first, n, dtype=torch.long))
