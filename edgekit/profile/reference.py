"""The fp32 PyTorch side of the accuracy metrics, computed on the host and cached per model.

For every scored position of the evaluation windows the reference keeps the log-prob of the actual
next token, its argmax, and its top-k tokens with their log-probs. The device returns its own
log-probs for those same top-k tokens, so KL(reference || artifact) is computed over the top-k plus
one bucket for the remaining mass (exact as k grows; a lower bound otherwise) without moving whole
vocabulary-sized distributions between host and device.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.runtime.measure import agree, top1, windows

TOPK = 32


@dataclass(frozen=True)
class ReferenceStats:
    target_logprob: np.ndarray  # (positions,)
    argmax: np.ndarray  # (positions,)
    topk_ids: np.ndarray  # (positions, k)
    topk_logprob: np.ndarray  # (positions, k)


def cache_dir() -> Path:
    from edgekit.environment import cache_root

    return cache_root() / "reference"


def reference_stats(source, ids: list[int], window: int, k: int = TOPK) -> tuple[ReferenceStats, bool]:
    """Stats of the fp32 model on ``ids``; returns (stats, from_cache)."""
    key = hashlib.sha256(
        f"{source.content_sha256}|{window}|{k}|".encode() + np.asarray(ids, dtype=np.int64).tobytes()
    ).hexdigest()[:32]
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return ReferenceStats(*(z[f] for f in ("target_logprob", "argmax", "topk_ids", "topk_logprob"))), True
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    stats = _compute(source, ids, window, k)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    try:  # best effort: a cache that cannot be written ($EDGEKIT_CACHE_DIR a file, read-only, full) only
        path.parent.mkdir(parents=True, exist_ok=True)  # means the next profile computes them again
        np.savez(tmp, **stats.__dict__)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return stats, False


def _compute(source, ids: list[int], window: int, k: int) -> ReferenceStats:
    import torch

    from edgekit.core.model import load_model

    model = load_model(source)
    target, argmax, topk_ids, topk_lp = [], [], [], []
    with torch.inference_mode():
        for chunk in windows(ids, window):
            logits = model(torch.tensor([chunk[:-1]])).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            target.append(lp[torch.arange(len(chunk) - 1), torch.tensor(chunk[1:])].numpy())
            argmax.append(top1(lp.numpy()))
            values, indices = lp.topk(min(k, lp.shape[-1]), dim=-1)
            topk_ids.append(indices.numpy())
            topk_lp.append(values.numpy())
    return ReferenceStats(np.concatenate(target), np.concatenate(argmax), np.concatenate(topk_ids),
                          np.concatenate(topk_lp))


def accuracy_metrics(ref: ReferenceStats, device: dict) -> dict[str, tuple[float, float | None]]:
    """ppl, ppl_ref, dppl_pct, top1_agree, kl_mean from the reference and the device's arrays, each
    as (value, standard error).

    The errors are those of the mean over the scored positions, as llama-perplexity gives them: ppl's
    from the spread of the per-token NLL (ppl * SE(NLL)); dppl's from the paired per-token differences
    of the artifact's and the reference's NLL (ppl / ppl_ref = exp(mean difference)); top-1's the
    binomial one, sqrt(p (1 - p) / n); KL's from the per-token KL spread."""
    lp = np.asarray(device["target_logprob"], dtype=np.float64)
    if lp.shape != ref.target_logprob.shape:
        raise ValueError(f"device scored {lp.size} positions, the reference {ref.target_logprob.size}")
    n = lp.size
    nll, nll_ref = -lp, -ref.target_logprob
    ppl = float(np.exp(nll.mean()))
    ppl_ref = float(np.exp(nll_ref.mean()))
    ratio = float(np.exp((nll - nll_ref).mean()))
    p_ref = np.exp(ref.topk_logprob)
    rest_ref = np.clip(1.0 - p_ref.sum(-1), 0.0, 1.0)
    art_topk = np.asarray(device["topk_logprob"], dtype=np.float64)
    art_rest = np.asarray(device["rest_logprob"], dtype=np.float64)
    kl = (p_ref * (ref.topk_logprob - art_topk)).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl += np.where(rest_ref > 0, rest_ref * (np.log(np.where(rest_ref > 0, rest_ref, 1.0)) - art_rest), 0.0)
    top1 = float(agree(device["argmax"], ref.argmax).mean())  # a NaN row (argmax -1) is a disagreement
    return {
        "ppl": (ppl, ppl * sem(nll)),
        "ppl_ref": (ppl_ref, ppl_ref * sem(nll_ref)),
        "dppl_pct": ((ratio - 1.0) * 100.0, ratio * 100.0 * sem(nll - nll_ref)),
        "top1_agree": (top1, math.sqrt(top1 * (1.0 - top1) / n) if n else None),
        "kl_mean": (float(max(kl.mean(), 0.0)), sem(kl)),
    }


def sem(x: np.ndarray) -> float | None:
    """Standard error of the mean of ``x`` (None under two values)."""
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion ``p`` observed over ``n`` trials."""
    if n <= 0:
        return (0.0, 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))
