"""Greedy generation over any backend, with the timings the metric definitions ask for."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import LanguageModel, last_logits


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # generated tokens, prompt excluded
    prefill_s: float  # prompt submitted -> first generated token's logits
    token_s: list[float]  # latency of each decode step after the first token

    @property
    def decode_tok_s(self) -> float | None:
        total = sum(self.token_s)
        return len(self.token_s) / total if total > 0 else None


def greedy(
    lm: LanguageModel,
    prompt: list[int],
    max_new_tokens: int,
    *,
    stop: Iterable[int] = (),
    on_token: Callable[[int], None] | None = None,
) -> Generation:
    """Generate up to ``max_new_tokens`` greedily, stopping early on a ``stop`` token or the context end."""
    stop = set(stop)
    lm.reset()
    max_new_tokens = min(max_new_tokens, lm.max_context - len(prompt))
    if max_new_tokens <= 0:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in the context of {lm.max_context}")
    t0 = time.perf_counter()
    token = int(last_logits(lm, prompt).argmax())
    prefill_s = time.perf_counter() - t0
    tokens, steps = [token], []
    if on_token:
        on_token(token)
    while len(tokens) < max_new_tokens and token not in stop:
        t = time.perf_counter()
        token = int(last_logits(lm, [token]).argmax())
        steps.append(time.perf_counter() - t)
        tokens.append(token)
        if on_token:
            on_token(token)
    return Generation(tokens, prefill_s, steps)
