"""What a result was measured with, metric by metric: two results measured differently are never
compared as if alike (``compare``, ``check``'s baseline), and tables show the settings beside the figures."""

from __future__ import annotations

from edgekit.core.results import RunResult
from edgekit.profile.metrics import ACCURACY

# setting -> its label in a difference; read from the result's settings (the artifact's digest for older results)
LATENCY_SETTINGS = ("prompt_len", "gen", "threads", "exporter", "max_context")
ACCURACY_SETTINGS = ("eval_tokens", "window", "exporter", "max_context")  # the text itself: RunResult.other_text
SIZE_SETTINGS = ("exporter",)


def measured_with(result: RunResult) -> dict:
    """The settings of a result that change its figures (absent ones: not recorded, an older result)."""
    s = dict(result.settings or {})
    a = result.artifact
    for name in ("exporter", "max_context"):
        if s.get(name) is None and a.get(name) is not None:
            s[name] = a[name]
    metrics = result.metrics
    ppl = metrics.get("ppl")
    if isinstance(s.get("eval_tokens"), int) and ppl is not None and ppl.tokens is None:
        s["eval_tokens"] -= 1  # results before the count was exact recorded the tokens read, one more than scored
    # what peak_rss_mb covers: results before eval_peak_rss_mb measured the accuracy pass in it too
    if "peak_rss_mb" in metrics:
        s["peak_rss_mb covers"] = ("the accuracy pass too (older result)" if ppl and "eval_peak_rss_mb" not in metrics
                                   else "generation")
    return {k: s.get(k) for k in dict.fromkeys(LATENCY_SETTINGS + ACCURACY_SETTINGS + ("peak_rss_mb covers",))}


def relevant(metric: str) -> tuple[str, ...]:
    """The settings that change ``metric``."""
    if metric in ACCURACY or metric == "eval_peak_rss_mb":
        return ACCURACY_SETTINGS
    if metric == "file_mb":
        return SIZE_SETTINGS
    if metric == "peak_rss_mb":
        return LATENCY_SETTINGS + ("peak_rss_mb covers",)
    return LATENCY_SETTINGS


def differences(a: RunResult, b: RunResult, metric: str | None = None) -> list[str]:
    """The settings two results differ in (for ``metric``, or any), as ``"eval_tokens 2048 vs 512"``;
    a setting one of them does not record is not a difference."""
    sa, sb = measured_with(a), measured_with(b)
    names = relevant(metric) if metric else tuple(sa)
    return [f"{n} {sa[n]} vs {sb[n]}" for n in names if sa[n] is not None and sb[n] is not None and sa[n] != sb[n]]


def label(result: RunResult) -> str:
    """The settings in a few characters, for a table's column: ``genai P128 G128 t4 ctx2048 eval2048``."""
    s = measured_with(result)
    parts = [
        s["exporter"] or "",
        f"P{s['prompt_len']}" if s["prompt_len"] is not None else "",
        f"G{s['gen']}" if s["gen"] is not None else "",
        f"t{s['threads']}" if s["threads"] is not None else "",
        f"ctx{s['max_context']}" if s["max_context"] is not None else "",
        (f"eval{s['eval_tokens']}" if s["eval_tokens"] is not None and (result.settings or {}).get("accuracy", True)
         else ""),
    ]
    return " ".join(p for p in parts if p)
