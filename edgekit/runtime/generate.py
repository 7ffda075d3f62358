"""The token loop of the generate feature, over any backend (greedy, or sampled where asked), with the
timings the metric definitions ask for; used by ``edgekit run`` (``edgekit.generate``) and by profiles,
which always generate greedily."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from . import LanguageModel


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # generated tokens, prompt excluded
    prefill_s: float  # prompt submitted -> first generated token's logits
    token_s: list[float]  # latency of each decode step after the first token

    @property
    def decode_tok_s(self) -> float | None:
        total = sum(self.token_s)
        return len(self.token_s) / total if total > 0 else None


def sampler(temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None) -> Callable[[np.ndarray], int]:
    """``pick(logits) -> token``: the argmax at temperature 0, else a draw from the softmax of
    logits / temperature, restricted to the smallest set of most likely tokens whose probability
    reaches ``top_p`` (nucleus sampling); ``seed`` makes the draws repeatable."""
    if temperature <= 0:
        return lambda logits: int(logits.argmax())
    rng = np.random.default_rng(seed)

    def pick(logits: np.ndarray) -> int:
        z = logits.astype(np.float64) / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        return int(rng.choice(keep, p=p[keep] / p[keep].sum()))

    return pick


def greedy(
    lm: LanguageModel,
    prompt: list[int],
    max_new_tokens: int,
    *,
    stop: Iterable[int] = (),
    on_token: Callable[[int], None] | None = None,
    pick: Callable[[np.ndarray], int] | None = None,
) -> Generation:
    """Generate up to ``max_new_tokens``, stopping early on a ``stop`` token or the context end; each
    token the argmax of its logits, or what ``pick(logits)`` chooses (``sampler``)."""
    pick = pick or (lambda logits: int(logits.argmax()))
    stop = set(stop)
    lm.reset()
    max_new_tokens = min(max_new_tokens, lm.max_context - len(prompt))
    if max_new_tokens <= 0:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in the context of {lm.max_context}")
    t0 = time.perf_counter()
    token = pick(lm.forward(prompt, last_only=True)[-1])
    prefill_s = time.perf_counter() - t0
    tokens, steps = [token], []
    if on_token:
        on_token(token)
    while len(tokens) < max_new_tokens and token not in stop:
        t = time.perf_counter()
        token = pick(lm.forward([token], last_only=True)[-1])
        steps.append(time.perf_counter() - t)
        tokens.append(token)
        if on_token:
            on_token(token)
    return Generation(tokens, prefill_s, steps)
