"""The measurement protocol, run next to the model: latency runs and accuracy over an eval text.

Only numpy and the backend's runtime: this runs on the device.
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from . import LanguageModel
from .generate import greedy


def reset_peak_rss() -> bool:
    """Start a new peak: Linux lets a process reset its VmHWM to the current RSS. False elsewhere
    (the peak then stays the process's whole-life peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    Linux/Android: VmHWM of /proc/self/status, the peak of this program's own memory (getrusage's
    maxrss there keeps the parent's peak across fork and exec). Elsewhere: getrusage.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux, Android); None where /proc can't tell."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        import os

        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def latency_run(lm: LanguageModel, prompt: list[int], gen: int) -> dict:
    """One measured generation: exactly ``gen`` tokens after a prompt, no early stop."""
    g = greedy(lm, prompt, gen)
    ms = sorted(t * 1000 for t in g.token_s)
    return {
        "ttft_ms": g.prefill_s * 1000,
        "prefill_tok_s": len(prompt) / g.prefill_s,
        "decode_tok_s": g.decode_tok_s,
        "token_ms_p50": _percentile(ms, 50),
        "token_ms_p90": _percentile(ms, 90),
        "generated": len(g.tokens),
    }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return float(np.percentile(np.asarray(sorted_values), q))


def windows(ids: list[int], window: int) -> list[list[int]]:
    """Non-overlapping windows of ``window + 1`` tokens: inputs and, shifted by one, their targets."""
    out = []
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start : start + window + 1]
        if len(chunk) >= 2:
            out.append(chunk)
    return out


def top1(logits: np.ndarray) -> np.ndarray:
    """Each row's most likely token; -1 where the row is broken (a NaN, +inf, or nothing finite):
    such a row agrees with nothing (``agree``), even with another broken row."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(logits.max(-1)), logits.argmax(-1), -1)


def agree(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two ``top1`` answers agree: the same token, and a token at all (-1, a broken row, agrees with nothing)."""
    a, b = np.asarray(a), np.asarray(b)
    return (a == b) & (a >= 0) & (b >= 0)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def accuracy(lm: LanguageModel, ids: list[int], window: int, ref_topk: np.ndarray | None) -> dict:
    """Score ``ids`` window by window (one prefill each).

    Per scored position: the log-prob of the actual next token, the argmax (-1 on a NaN/inf row:
    ``top1``), and, when ``ref_topk``
    gives the reference's top-k token ids (positions, k), their log-probs plus the log of the
    remaining mass.
    """
    target_lp, argmax, topk_lp, rest_lp = [], [], [], []
    row = 0
    for chunk in windows(ids, window):
        lm.reset()
        lp = log_softmax(lm.forward(chunk[:-1]).astype(np.float64))
        n = len(chunk) - 1
        target_lp.extend(lp[np.arange(n), chunk[1:]].tolist())
        argmax.extend(top1(lp).tolist())
        if ref_topk is not None:
            picked = np.take_along_axis(lp, ref_topk[row : row + n], axis=-1)
            topk_lp.extend(picked.tolist())
            rest = 1.0 - np.exp(picked).sum(-1)
            rest_lp.extend(np.log(np.clip(rest, 1e-30, None)).tolist())
        row += n
    out = {"target_logprob": target_lp, "argmax": argmax}
    if ref_topk is not None:
        out.update(topk_logprob=topk_lp, rest_logprob=rest_lp)
    return out
