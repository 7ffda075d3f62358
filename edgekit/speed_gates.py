"""Speed verdicts that hold on a real, busy machine (``edgekit check``).

Absolute speed moves with the machine's load from one invocation to the next (ONNX fp32 decode 617 ->
2984 tok/s between two runs on a busy 2-core VM); a ratio to a yardstick measured beside it moves much
less. So:

- a limit may be a ratio to a yardstick of the same sweep, same model and device:
  ``decode_tok_s = { min = 0.9, of = "gguf/q4_0" }`` (``edgekit.check.judge_ratio``);
- a speed verdict that fails is measured again before it fails (``confirm``): a ratio with the
  candidate and its yardstick interleaved over ``ROUNDS`` rounds (the median of the rounds' ratios),
  an absolute limit or a baseline comparison once more; it fails only where it fails again;
- a speed comparison with a baseline (another session) is not judged where either side was measured
  on a busy machine: the load, not the artifact, would decide it. Size and accuracy stay exact.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edgekit.check import CheckConfig, Limit, Verdict, is_number, is_positive, judge_limit_ratio, yardstick
from edgekit.core.results import RunResult
from edgekit.profile.metrics import LATENCY
from edgekit.report.fields import fmt

ROUNDS = 3  # interleaved rounds when a failing ratio is measured again: candidate, yardstick, yardstick, ...


Measure = Callable[[RunResult], RunResult | None]  # a result's artifact profiled again (speed only)


def confirm(verdicts: list[Verdict], results: list[RunResult], config: CheckConfig, measure: Measure,
            baseline: list[RunResult] = ()) -> list[Verdict]:
    """The verdicts, each failed speed verdict measured again before it stands (see the module)."""
    by_key = {r.key: r for r in results}
    out = []
    for v in verdicts:
        r = by_key.get(v.key)
        metric = v.name.split()[0]
        if v.passed is not False or r is None or metric not in LATENCY:
            out.append(v)
        elif v.name.endswith(" vs baseline"):
            out.append(_again_baseline(v, r, metric, baseline, config, measure))
        else:
            limit = next((lim for lim in config.rules_for(r.target, r.recipe).limits if lim.name == v.name), None)
            out.append(v if limit is None else _again(v, r, limit, results, measure))
    return out


def _again(v: Verdict, r: RunResult, limit: Limit, results: list[RunResult], measure: Measure) -> Verdict:
    first = v.message
    if limit.of is None:  # an absolute limit: once more
        again = measure(r)
        m = again.figures().get(limit.metric) if again is not None else None
        if m is None:
            return v
        passed, message = limit.judge(m.value, m.unit)
        return replace(v, passed=passed, message=f"{message} (measured again; first: {first})")
    base = yardstick(limit, r, results)
    ratios = []
    for i in range(ROUNDS):  # interleaved, the order alternating: the load of the moment falls on both
        pair = (r, base) if i % 2 == 0 else (base, r)
        got = {id(x): measure(x) for x in pair}
        mine, theirs = (got[id(x)].figures().get(limit.metric) if got[id(x)] is not None else None for x in (r, base))
        if mine is not None and theirs is not None and is_positive(theirs.value) and is_number(mine.value):
            ratios.append(mine.value / theirs.value)
    if not ratios:
        return v
    passed, message = judge_limit_ratio(limit, statistics.median(ratios),
                             f"median of {len(ratios)} interleaved rounds: {', '.join(f'{x:.3g}' for x in ratios)}")
    return replace(v, passed=passed, message=f"{message}; first: {first}")


def _again_baseline(v: Verdict, r: RunResult, metric: str, baseline: list[RunResult], config: CheckConfig,
                    measure: Measure) -> Verdict:
    from edgekit.report.compare import change

    base = next((b for b in reversed(baseline) if b.key[:4] == r.key[:4]), None)
    if base is None:
        return v
    busy = [x.environment.busy for x in (base, r) if x.environment is not None and x.environment.busy]
    again = None if busy else measure(r)
    if again is not None and again.environment is not None and again.environment.busy:
        busy.append(again.environment.busy)
    if busy:
        return replace(v, passed=None, message=f"{metric} vs baseline not judged: {busy[0]} (a speed regression "
                                                f"against another session is only judged on a quiet machine)")
    b, n = base.figures().get(metric), again.figures().get(metric) if again is not None else None
    if b is None or n is None:
        return v
    c = change(r.key, metric, b, n, config.tolerance_pct)
    return replace(v, passed=not c.regression,
                   message=f"{metric} {fmt(n.value)} vs baseline {fmt(b.value)} {n.unit}: {c.verdict} "
                           f"(measured again; first: {v.message})")


def measurer(config: CheckConfig, note: Callable[[str], None]) -> Measure:
    """Profiles a result's artifact again on its device with the sweep's settings, speed only."""
    from edgekit.profile.session import profile

    devices = {d.name: d for d in config.sweep.devices}
    settings = replace(config.sweep.settings, accuracy=False)

    def measure(r: RunResult) -> RunResult | None:
        device, path = devices.get(r.device_name), r.artifact.get("path")
        if device is None or not path or not Path(path).is_dir():
            return None
        note(f"measuring {' / '.join(r.key[:4])} again")
        again = profile(Path(path), device, settings)
        return again if again.complete else None

    return measure
