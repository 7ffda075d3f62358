"""Two sets of results side by side: the change of every metric, and the regressions: worse by more
than the tolerance and by more than the measured noise, between results measured alike."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from edgekit.report.results import key


@dataclass(frozen=True)
class Change:
    key: tuple[str, str, str, str]
    metric: str
    unit: str
    base: float | None
    new: float | None
    change_pct: float | None  # relative change, new vs base
    regression: bool  # worse than base by more than the tolerance and the noise, settings alike
    noise_pct: float | None = None  # what the measurements' own spread allows (None: not measured)
    settings_differ: tuple[str, ...] = ()  # e.g. "eval_tokens 2048 vs 512": never a regression then
    verdict: str = ""  # why it is or is not a regression, in words

    def as_dict(self) -> dict:
        model, target, recipe, device = self.key
        return {
            "model": model, "target": target, "recipe": recipe, "device": device, "metric": self.metric,
            "unit": self.unit, "base": self.base, "new": self.new, "change_pct": self.change_pct,
            "regression": self.regression, "noise_pct": self.noise_pct, "settings_differ": list(self.settings_differ),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]  # every (result, metric) present in both
    only_base: list[tuple]  # keys of results only in base
    only_new: list[tuple]
    emulated: list[tuple[tuple, str]]  # (key, metric) left out: an emulator's figure on either side
    other_text: list[tuple[tuple, str]]  # (key, metric) left out: accuracy scored on two different evaluation texts
    settings_differ: dict  # key -> the settings its two results differ in (any metric)


def compare(base: list[dict], new: list[dict], tolerance_pct: float) -> Comparison:
    """Changes for every (result, metric) present in both. An emulator's figure (an emulated device's
    timings) is never compared, with anything, nor accuracy scored on two different evaluation texts:
    those are listed apart. A figure measured with other settings (tokens scored, P, G, threads,
    exporter, context) is shown, marked, and never called a regression."""
    from edgekit.profile.metrics import ACCURACY, is_emulated, other_texts
    from edgekit.profile.settings import differences

    by_key_base = {key(r): r for r in base}
    by_key_new = {key(r): r for r in new}
    changes, emulated, other_text, differ = [], [], [], {}
    for k in sorted(by_key_base.keys() & by_key_new.keys()):
        rb, rn = by_key_base[k], by_key_new[k]
        b, n = rb["metrics"], rn["metrics"]
        texts_differ = other_texts(rb, rn)
        if d := differences(rb, rn):
            differ[k] = d
        for metric in [m for m in b if m in n]:
            if is_emulated(b[metric]) or is_emulated(n[metric]):
                emulated.append((k, metric))
            elif texts_differ and metric in ACCURACY:
                other_text.append((k, metric))
            else:
                changes.append(change(k, metric, b[metric], n[metric], tolerance_pct, tuple(differences(rb, rn, metric))))
    return Comparison(changes, sorted(by_key_base.keys() - by_key_new.keys()),
                      sorted(by_key_new.keys() - by_key_base.keys()), emulated, other_text, differ)


def noise(record: dict) -> float | None:
    """The uncertainty of a metric's value: its standard error (accuracy, over the scored tokens), else
    that of the mean over its runs (their standard deviation / sqrt(runs)); None from one sample."""
    from edgekit.profile.metrics import stderr

    se = stderr(record)
    if se is not None:
        return se
    samples = [s for s in record.get("samples") or [] if isinstance(s, (int, float)) and math.isfinite(s)]
    return statistics.stdev(samples) / math.sqrt(len(samples)) if len(samples) > 1 else None


def change(k: tuple, metric: str, b: dict, n: dict, tolerance_pct: float, settings_differ: tuple = ()) -> Change:
    """The change of one metric. A regression is worse than the base by more than ``tolerance_pct`` and
    by more than the noise: twice the standard error of the difference, sqrt(se_base² + se_new²)."""
    bv, nv = b.get("value"), n.get("value")
    pct = noise_pct = None
    if bv is not None and nv is not None and bv != 0:
        pct = (nv - bv) / abs(bv) * 100.0
        sb, sn = noise(b), noise(n)
        if sb is not None or sn is not None:
            noise_pct = 2.0 * math.hypot(sb or 0.0, sn or 0.0) / abs(bv) * 100.0
    worse = None if pct is None else (-pct if b.get("higher_is_better") else pct)
    beyond_tolerance = worse is not None and worse > tolerance_pct
    beyond_noise = worse is not None and (noise_pct is None or worse > noise_pct)
    spread = f"the noise ±{noise_pct:.1f}%" if noise_pct is not None else None
    if worse is None:
        verdict = "not comparable"
    elif settings_differ:
        verdict = "settings differ: " + ", ".join(settings_differ)
    elif beyond_tolerance and beyond_noise:
        verdict = (f"worse by {worse:.1f}%, beyond the tolerance {tolerance_pct:g}% "
                   + (f"and {spread}" if spread else "(no noise measured: one sample each)"))
    elif beyond_tolerance:
        verdict = f"worse by {worse:.1f}%, beyond the tolerance {tolerance_pct:g}% but within {spread}"
    elif worse > 0:
        verdict = f"worse by {worse:.1f}%, within the tolerance {tolerance_pct:g}%"
    else:
        verdict = "no worse"
    regression = beyond_tolerance and beyond_noise and not settings_differ
    return Change(k, metric, b.get("unit", ""), bv, nv, pct, regression, noise_pct, tuple(settings_differ), verdict)
