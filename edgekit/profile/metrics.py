"""Metric records: every figure with its unit, direction and samples (the result JSON's "metrics")."""

from __future__ import annotations

import statistics

# name -> (unit, higher_is_better)
METRICS = {
    "load_s": ("s", False),
    "ttft_ms": ("ms", False),
    "prefill_tok_s": ("tok/s", True),
    "decode_tok_s": ("tok/s", True),
    "token_ms_p50": ("ms", False),
    "token_ms_p90": ("ms", False),
    "peak_rss_mb": ("MiB", False),
    "eval_peak_rss_mb": ("MiB", False),
    "file_mb": ("MB", False),
    "ppl": ("", False),
    "ppl_ref": ("", False),
    "dppl_pct": ("%", False),
    "top1_agree": ("", True),
    "kl_mean": ("nats", False),
}
LATENCY = ("ttft_ms", "prefill_tok_s", "decode_tok_s", "token_ms_p50", "token_ms_p90")
# what an emulator measures of itself, not of the device: on an emulated device (a profile's
# ``emulated``) these carry ``"emulated": true``; tables, plots, comparisons and checks leave them out
EMULATED = ("load_s", *LATENCY, "peak_rss_mb", "eval_peak_rss_mb")
# scored on the evaluation text: figures on two different texts (the result's settings.eval_text_sha256)
# are never compared
ACCURACY = ("ppl", "ppl_ref", "dppl_pct", "top1_agree", "kl_mean")


def eval_text_sha256(result: dict) -> str | None:
    """The sha256 of the evaluation text a result was scored on (None: not recorded, older results)."""
    return result.get("settings", {}).get("eval_text_sha256")


def other_texts(a: dict, b: dict) -> bool:
    """Whether two results were scored on evaluation texts known to differ."""
    sa, sb = eval_text_sha256(a), eval_text_sha256(b)
    return sa is not None and sb is not None and sa != sb


def metric(name: str, samples: list[float], stderr: float | None = None, **extra) -> dict:
    """Median of the samples as the value, with the spread (min, max) kept beside it; ``stderr``, for a
    figure that is a mean over many scored tokens (accuracy), its standard error; ``extra`` fields
    (an interval, the count it was measured over) are kept as they are."""
    unit, higher = METRICS[name]
    values = [float(s) for s in samples if s is not None]
    record = {
        "value": statistics.median(values) if values else None,
        "unit": unit,
        "higher_is_better": higher,
        "samples": values,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }
    if stderr is not None:
        record["stderr"] = float(stderr)
    return {**record, **extra}


def stderr(record: dict | None) -> float | None:
    """A metric record's standard error (None: not a mean over tokens, or an older result)."""
    value = (record or {}).get("stderr")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def latency_metrics(runs: list[dict]) -> dict[str, dict]:
    """Latency figures over the measured (non-warm-up) runs."""
    measured = [r for r in runs if not r.get("warmup")]
    return {name: metric(name, [r[name] for r in measured]) for name in LATENCY}


def mark_emulated(metrics: dict[str, dict]) -> None:
    """Flag the figures an emulated device's result holds of the emulator (``EMULATED``)."""
    for name in EMULATED:
        if name in metrics:
            metrics[name]["emulated"] = True


def is_emulated(record: dict | None) -> bool:
    """Whether a metric record is an emulator's figure."""
    return bool(record and record.get("emulated"))
