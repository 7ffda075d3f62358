"""Metric records: every figure with its unit, direction and samples (the result JSON's "metrics")."""

from __future__ import annotations

import statistics

from edgekit.core.results import SPECS

# name -> (unit, higher_is_better), every metric a result may hold (declared once, in edgekit.core.results)
METRICS = {name: (s.unit, s.higher_is_better) for name, s in SPECS.items()}
LATENCY = tuple(name for name, s in SPECS.items() if s.latency)
# what an emulator measures of itself, not of the device: on an emulated device (a profile's
# ``emulated``) these carry ``"emulated": true``; RunResult.figures() leaves them out of tables,
# plots, comparisons and checks
EMULATED = tuple(name for name, s in SPECS.items() if s.emulated)
# scored on the evaluation text: figures on two different texts (RunResult.other_text) are never compared
ACCURACY = tuple(name for name, s in SPECS.items() if s.accuracy)


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


def latency_metrics(runs: list[dict]) -> dict[str, dict]:
    """Latency figures over the measured (non-warm-up) runs."""
    measured = [r for r in runs if not r.get("warmup")]
    return {name: metric(name, [r[name] for r in measured]) for name in LATENCY}


def mark_emulated(metrics: dict[str, dict]) -> None:
    """Flag the figures an emulated device's result holds of the emulator (``EMULATED``)."""
    for name in EMULATED:
        if name in metrics:
            metrics[name]["emulated"] = True
