"""Two sets of results side by side: the change of every metric, and the regressions: worse by more
than the tolerance and by more than the measured noise, between results measured alike."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from edgekit.core.results import Metric, RunResult


@dataclass(frozen=True)
class Change:
    key: tuple[str, ...]  # (model, target, recipe, device), and the settings where one side has several of it
    metric: str
    unit: str
    base: float | None
    new: float | None
    change_pct: float | None  # relative change, new vs base
    regression: bool  # worse than base by more than the tolerance and the noise, settings alike
    noise_pct: float | None = None  # what the measurements' own spread allows (None: not measured)
    settings_differ: tuple[str, ...] = ()  # e.g. "eval_tokens 2048 vs 512": never a regression then
    verdict: str = ""  # why it is or is not a regression, in words
    base_se: float | None = None  # each side's uncertainty (standard error), in the metric's unit
    new_se: float | None = None
    across: tuple[str, ...] = ()  # what names two different artifacts ("target", "recipe"): never a regression

    def as_dict(self) -> dict:
        model, target, recipe, device = self.key[:4]
        return {
            "model": model, "target": target, "recipe": recipe, "device": device,
            **({"settings": self.key[4]} if len(self.key) > 4 else {}), "metric": self.metric,
            "unit": self.unit, "base": self.base, "new": self.new, "change_pct": self.change_pct,
            "regression": self.regression, "noise_pct": self.noise_pct, "settings_differ": list(self.settings_differ),
            "verdict": self.verdict, "base_se": self.base_se, "new_se": self.new_se, "across": list(self.across),
        }


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]  # every (result, metric) present in both
    only_base: list[tuple]  # keys of results only in base
    only_new: list[tuple]
    emulated: list[tuple[tuple, str]]  # (key, metric) left out: an emulator's figure on either side
    other_text: list[tuple[tuple, str]]  # (key, metric) left out: accuracy scored on two different evaluation texts
    settings_differ: dict  # key -> the settings its two results differ in (any metric)
    pairs: dict = field(default_factory=dict)  # key -> (base result, new result)
    # (key, side, the result compared, one left out): two results of one key and the same settings on
    # one side; the later one is compared, and the other said
    duplicates: list[tuple[tuple, str, RunResult, RunResult]] = field(default_factory=list)
    # key -> what differs between two different artifacts compared side by side (one result alone on
    # each side, of another model, target, recipe or device): their figures, never a regression
    across: dict = field(default_factory=dict)


def pair(base: list[RunResult], new: list[RunResult]) -> tuple[dict, dict, list]:
    """The results of both sides by what they measure: (model, target, recipe, device), with their
    settings label where one side holds that key measured with several settings (so that two results
    that differ only there are both compared, each with its like). Returns the base and new results by
    key, and the duplicates: two results of one key and label on one side (the later one is kept)."""
    from edgekit.profile.settings import label

    labels: dict = {}
    for i, side in enumerate((base, new)):
        for r in side:
            labels.setdefault((i, r.key), set()).add(label(r))
    several = {k for (_, k), found in labels.items() if len(found) > 1}
    duplicates = []

    def index(results: list[RunResult], side: str) -> dict:
        out: dict = {}
        for r in sorted(results, key=lambda r: r.finished or r.started or ""):
            k = r.key + ((label(r),) if r.key in several else ())
            if k in out:
                duplicates.append((k, side, r, out[k]))
            out[k] = r
        return out

    return index(base, "base"), index(new, "new"), duplicates


def compare(base: list[RunResult], new: list[RunResult], tolerance_pct: float, across: bool = False) -> Comparison:
    """Changes for every (result, metric) present in both. An emulator's figure (an emulated device's
    timings) is never compared, with anything, nor accuracy scored on two different evaluation texts:
    those are listed apart. A figure measured with other settings (tokens scored, P, G, threads,
    exporter, context) is shown, marked, and never called a regression. With ``across`` (``edgekit
    compare``; never a baseline gate), where each side is one result of another artifact (another
    recipe, target, model or device), the two are shown side by side, what differs said, and never
    called a regression: that is only called in one artifact's history."""
    from edgekit.profile.settings import differences

    by_key_base, by_key_new, duplicates = pair(base, new)
    only_base = sorted(by_key_base.keys() - by_key_new.keys())
    only_new = sorted(by_key_new.keys() - by_key_base.keys())
    found: dict = {"changes": [], "emulated": [], "other_text": []}
    differ, pairs, crossed = {}, {}, {}
    matched = [(k, by_key_base[k], by_key_new[k], ()) for k in sorted(by_key_base.keys() & by_key_new.keys())]
    if across and len(by_key_base) == len(by_key_new) == 1 and only_base:
        kb, kn = only_base.pop(), only_new.pop()
        names = ("model", "target", "recipe", "device")
        what = tuple(n for n, a, b in zip(names, kb, kn) if a != b)
        k = tuple(a if a == b else f"{a} -> {b}" for a, b in zip(kb[:4], kn[:4]))
        matched.append((k, by_key_base[kb], by_key_new[kn], what))
        crossed[k] = what
    for k, rb, rn, what in matched:
        pairs[k] = (rb, rn)
        if d := differences(rb, rn):
            differ[k] = d
        _changes(k, rb, rn, tolerance_pct, what, found)
    return Comparison(found["changes"], only_base, only_new, found["emulated"], found["other_text"], differ, pairs,
                      duplicates, crossed)


def _changes(k: tuple, rb: RunResult, rn: RunResult, tolerance_pct: float, across: tuple, found: dict) -> None:
    """The changes of every metric two results share, or why one is not compared, into ``found``."""
    from edgekit.profile.metrics import ACCURACY
    from edgekit.profile.settings import differences

    b, n = rb.figures(), rn.figures()
    texts_differ = rb.other_text(rn)
    for metric in [m for m in rb.metrics if m in rn.metrics]:
        if metric not in b or metric not in n:
            found["emulated"].append((k, metric))
        elif texts_differ and metric in ACCURACY:
            found["other_text"].append((k, metric))
        else:
            found["changes"].append(change(k, metric, b[metric], n[metric], tolerance_pct,
                                           tuple(differences(rb, rn, metric)), across))


def noise(record: Metric) -> float | None:
    """The uncertainty of a metric's value: its standard error (accuracy, over the scored tokens), else
    that of the mean over its runs (their standard deviation / sqrt(runs)); None from one sample."""
    if record.stderr is not None:
        return record.stderr
    samples = [s for s in record.samples if isinstance(s, (int, float)) and math.isfinite(s)]
    return statistics.stdev(samples) / math.sqrt(len(samples)) if len(samples) > 1 else None


def change(k: tuple, metric: str, b: Metric, n: Metric, tolerance_pct: float, settings_differ: tuple = (),
           across: tuple = ()) -> Change:
    """The change of one metric. A regression is worse than the base by more than ``tolerance_pct`` and
    by more than the noise: twice the standard error of the difference, sqrt(se_base² + se_new²);
    never between two different artifacts (``across``: what differs) nor with other settings."""
    bv, nv = b.value, n.value
    pct = noise_pct = None
    sb, sn = noise(b), noise(n)
    if bv is not None and nv is not None and bv != 0:
        pct = (nv - bv) / abs(bv) * 100.0
        if sb is not None or sn is not None:
            noise_pct = 2.0 * math.hypot(sb or 0.0, sn or 0.0) / abs(bv) * 100.0
    worse = None if pct is None else (-pct if b.higher_is_better else pct)
    beyond_tolerance = worse is not None and worse > tolerance_pct
    beyond_noise = worse is not None and (noise_pct is None or worse > noise_pct)
    spread = f"the noise ±{noise_pct:.1f}%" if noise_pct is not None else None
    if worse is None:
        verdict = "not comparable"
    elif across:
        verdict = ("better" if worse < 0 else "worse" if worse > 0 else "the same") + f" by {abs(worse):.1f}%, " + (
            "within" if noise_pct is not None and abs(worse) <= noise_pct else "beyond") + " the noise; another " + (
            ", ".join(across)) + ": side by side, not a regression"
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
    regression = beyond_tolerance and beyond_noise and not settings_differ and not across
    return Change(k, metric, b.unit, bv, nv, pct, regression, noise_pct, tuple(settings_differ), verdict, sb, sn,
                  tuple(across))
