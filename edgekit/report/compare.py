"""Two sets of results side by side: the change of every metric, regressions beyond a tolerance."""

from __future__ import annotations

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
    regression: bool  # worse than base by more than the tolerance

    def as_dict(self) -> dict:
        model, target, recipe, device = self.key
        return {
            "model": model, "target": target, "recipe": recipe, "device": device, "metric": self.metric,
            "unit": self.unit, "base": self.base, "new": self.new, "change_pct": self.change_pct,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]  # every (result, metric) present in both
    only_base: list[tuple]  # keys of results only in base
    only_new: list[tuple]
    emulated: list[tuple[tuple, str]]  # (key, metric) left out: an emulator's figure on either side
    other_text: list[tuple[tuple, str]]  # (key, metric) left out: accuracy scored on two different evaluation texts


def compare(base: list[dict], new: list[dict], tolerance_pct: float) -> Comparison:
    """Changes for every (result, metric) present in both. An emulator's figure (an emulated device's
    timings) is never compared, with anything, nor accuracy scored on two different evaluation texts:
    those are listed apart."""
    from edgekit.profile.metrics import ACCURACY, is_emulated, other_texts

    by_key_base = {key(r): r for r in base}
    by_key_new = {key(r): r for r in new}
    changes, emulated, other_text = [], [], []
    for k in sorted(by_key_base.keys() & by_key_new.keys()):
        b, n = by_key_base[k]["metrics"], by_key_new[k]["metrics"]
        texts_differ = other_texts(by_key_base[k], by_key_new[k])
        for metric in [m for m in b if m in n]:
            if is_emulated(b[metric]) or is_emulated(n[metric]):
                emulated.append((k, metric))
            elif texts_differ and metric in ACCURACY:
                other_text.append((k, metric))
            else:
                changes.append(change(k, metric, b[metric], n[metric], tolerance_pct))
    return Comparison(changes, sorted(by_key_base.keys() - by_key_new.keys()),
                      sorted(by_key_new.keys() - by_key_base.keys()), emulated, other_text)


def change(k: tuple, metric: str, b: dict, n: dict, tolerance_pct: float) -> Change:
    bv, nv = b.get("value"), n.get("value")
    pct = None
    if bv is not None and nv is not None and bv != 0:
        pct = (nv - bv) / abs(bv) * 100.0
    worse = pct is not None and (-pct if b.get("higher_is_better") else pct) > tolerance_pct
    return Change(k, metric, b.get("unit", ""), bv, nv, pct, worse)
