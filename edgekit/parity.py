"""Parity of an exported artifact with the fp32 PyTorch model it came from.

For each prompt the reference generates ``new_tokens`` greedily; the artifact then reads the same
sequence through its own KV cache (prompt as one prefill, the continuation one token at a time), so
every position's logits are compared, the cached decode path included. A second, free-running
greedy generation by the artifact counts how many tokens match the reference before they diverge
(and stops at the first that does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgekit.core.model import load_model
from edgekit.data import PARITY_PROMPTS
from edgekit.recipes import Thresholds
from edgekit.runtime import LanguageModel
from edgekit.runtime.measure import agree, log_softmax, top1
from edgekit.source import ModelSource

PROMPTS = PARITY_PROMPTS  # the prompts whose continuations are compared (shipped with the texts)


@dataclass(frozen=True)
class Reference:
    """The reference's token sequences (prompt + greedy continuation) and their fp32 logits."""

    prompt_lens: tuple[int, ...]
    sequences: tuple[tuple[int, ...], ...]
    logits: tuple[np.ndarray, ...]


NEW_TOKENS = 16  # the reference's greedy continuation of each prompt


def reference(
    source: ModelSource, tokenize: Callable[[str], list[int]], new_tokens: int = NEW_TOKENS, threads: int | None = None
) -> Reference:
    """The greedy continuations are generated through the model's own KV cache, one token per step
    for all prompts at once; the logits compared are those of one uncached pass over each whole
    sequence. ``threads``: torch's intra-op threads meanwhile (default: as they are)."""
    import torch

    model = load_model(source)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        lens, seqs, logits = _generate(model, tokenize, new_tokens)
    finally:
        torch.set_num_threads(before)
    return Reference(tuple(lens), tuple(seqs), tuple(logits))


def _generate(model, tokenize: Callable[[str], list[int]], new_tokens: int) -> tuple[list, list, list]:
    """The prompts' greedy continuations as one batch (left-padded, masked), so each step reads the
    weights once for every prompt; then each sequence's logits from a pass of its own."""
    import torch

    prompts = [list(tokenize(prompt)) for prompt in PROMPTS]
    seqs = [list(p) for p in prompts]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(ids, attention_mask=mask, position_ids=positions, use_cache=True)
        for step in range(new_tokens):
            chosen = out.logits[:, -1].argmax(-1)
            for seq, token in zip(seqs, chosen.tolist()):
                seq.append(token)
            if step < new_tokens - 1:
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
                positions = positions[:, -1:] + 1
                out = model(chosen[:, None], attention_mask=mask, position_ids=positions,
                            past_key_values=out.past_key_values, use_cache=True)
        logits = [model(torch.tensor([seq])).logits[0].float().numpy() for seq in seqs]
    return [len(p) for p in prompts], [tuple(seq) for seq in seqs], logits


def compare(ref: Reference, lm: LanguageModel, thresholds: Thresholds) -> dict:
    """Run the artifact over the reference sequences; measure agreement and judge it."""
    max_diff, agreed, kls, positions = 0.0, 0, [], 0
    matched, total = 0, 0
    for plen, seq, want in zip(ref.prompt_lens, ref.sequences, ref.logits):
        lm.reset()
        got = [lm.forward(list(seq[:plen]))]
        got += [lm.forward([t]) for t in seq[plen:]]
        got = np.concatenate(got)[: len(seq)]
        max_diff = float(np.max([max_diff, np.abs(got - want).max()]))  # a NaN stays NaN (max() would drop it)
        agreed += int(agree(top1(got), top1(want)).sum())  # a NaN row agrees with nothing
        kls.append(kl(want, got))
        positions += len(seq)

        cont = seq[plen:]
        matched += greedy_match(lm, list(seq[:plen]), cont, decoded=got[plen:])
        total += len(cont)
    measured = {
        "max_abs_logit_diff": max_diff,
        "top1_agree": agreed / positions,
        "kl_mean": float(np.concatenate(kls).mean()),
        "greedy_match_tokens": matched,
        "greedy_total_tokens": total,
        "prompts": len(ref.sequences),
        "positions": positions,
    }
    failures = thresholds.failures(measured)
    return {"passed": not failures, **measured, "thresholds": thresholds.as_dict(), "failures": failures}


def greedy_match(lm: LanguageModel, prompt: list[int], continuation, decoded: np.ndarray | None = None) -> int:
    """How many tokens of ``continuation`` the artifact generates greedily after ``prompt`` before its
    first other token (the generation stops there: what follows cannot change the count).

    ``decoded``: the artifact's logits for ``continuation`` read one token per call after the prompt
    (row i after token i), as ``compare`` has them. A generation that has matched so far feeds the
    artifact those same tokens, one per call, on the same cache: its rows are these, and are not
    computed again. Only the prompt's is: a prefill that keeps only its last row (as generation's
    does) may round that row otherwise than one that keeps them all."""
    lm.reset()
    logits = lm.forward(prompt, last_only=True)
    for i, want in enumerate(continuation):
        if int(top1(logits[-1])) != want:  # a NaN row (-1) matches no token
            return i
        if i + 1 < len(continuation):
            logits = decoded[i : i + 1] if decoded is not None else lm.forward([want], last_only=True)
    return len(continuation)


def kl(ref_logits: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """KL(reference || artifact) of each row's next-token distribution, in nats."""
    lp = log_softmax(ref_logits.astype(np.float64))
    lq = log_softmax(logits.astype(np.float64))
    return (np.exp(lp) * (lp - lq)).sum(-1)
