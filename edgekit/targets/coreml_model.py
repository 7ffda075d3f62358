"""The module Core ML converts: ``decoder.Decoder`` with its KV cache as two Core ML states.

``CoreMLDecoder(inputIds[1, n], causalMask[1, 1, n, p + n]) -> logits[1, n, vocab]`` appends ``n``
tokens after the ``p`` the cache holds and returns the logits of every one of them, so one model serves
prefill (a window of tokens) and decode (one). These are the names and the convention of Apple's
stateful Core ML LLM example (Mistral 7B, WWDC 2024), which Hugging Face's swift-transformers
(``LanguageModelWithStatefulKVCache``) loads: the position is the mask's width less the tokens' count.
The mask's values are not read: the model builds its own causal (and sliding-window) mask, so a
mask of zeros, as swift-transformers passes, gives the same logits. The caches are buffers
``keyCache``/``valueCache`` of shape
``[layers, kv_heads, max_context, head_dim]`` in float16 (the one state type Core ML has), which the
converter turns into states read and written in place.

The graph is traced (``torch.jit.trace``), so every position is a tensor: the cache is written and
read through slices whose bounds are tensors (the tracer records them as dynamic), and attention
covers the slots up to the last new position only, under an explicit causal mask (a sliding-window
layer only those from the first its window still sees, masked to the window). The mask is additive and
finite (a masked slot's score is pushed down by ``_MASKED``), which float16 holds.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.targets.decoder import Decoder, Layer, attention, visible

_MASKED = -1e4  # added to the score of a future slot; exp() of it is 0 in float16 and float32


class CoreMLDecoder(Decoder):
    def __init__(self, hf_model: nn.Module, model_type: str, max_context: int):
        super().__init__(hf_model, model_type, max_context)
        shape = (len(self.layers), self.kv_heads, max_context, self.head_dim)
        self.register_buffer("keyCache", torch.zeros(shape, dtype=torch.float16))
        self.register_buffer("valueCache", torch.zeros(shape, dtype=torch.float16))
        self.register_buffer("slots", torch.arange(max_context, dtype=torch.int32), persistent=False)

    def forward(self, inputIds: torch.Tensor, causalMask: torch.Tensor) -> torch.Tensor:  # noqa: N803 (Apple's names)
        tokens = inputIds
        past = causalMask.shape[-1] - tokens.shape[1]  # traced as sizes: the one converted graph serves every length
        start = self.slots[past : past + 1][0]
        end = start + tokens.shape[1]
        positions = self.slots[start:end]
        # rotary rows by slicing (not a gather): compression then sees only weights behind linear/gather ops
        x, ropes = self.embed_and_rope(tokens, positions, rows=lambda table: table[start:end])
        # window (None: global) -> (first slot read, the mask over the slots read): a sliding-window layer
        # reads only the slots its window still sees
        masks = {}
        for w in self.windows:
            first = torch.clamp(start - w + 1, min=0) if w else 0
            masks[w] = first, (~visible(self.slots[first:end], positions, w)).to(x.dtype) * _MASKED

        def attend(layer: Layer, q, k, v):
            i = layer.index
            first, mask = masks[layer.window]
            self.keyCache[i : i + 1, :, start:end] = k.transpose(1, 2).to(self.keyCache.dtype)
            self.valueCache[i : i + 1, :, start:end] = v.transpose(1, 2).to(self.valueCache.dtype)
            kk = self.keyCache[i : i + 1, :, first:end].to(q.dtype)
            vv = self.valueCache[i : i + 1, :, first:end].to(q.dtype)
            rep = layer.heads // layer.kv_heads
            if rep > 1:
                kk, vv = kk.repeat_interleave(rep, dim=1), vv.repeat_interleave(rep, dim=1)
            o = attention(q.transpose(1, 2), kk, vv, mask, layer.scale, layer.softcap)
            return o.transpose(1, 2)

        return self.decode(x, ropes, attend)
