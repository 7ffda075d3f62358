"""`edgekit check`: a sweep judged against thresholds and an optional baseline (what CI runs).

``edgekit.toml`` is a sweep file (see ``edgekit.sweep``) with three more tables::

    [thresholds]                      # every combination
    parity = true                     # the export's parity check must have passed (default true)
    decode_tok_s = { min = 20 }       # any metric of edgekit.profile.metrics, with min and/or max
    dppl_pct = { max = 5 }
    prefill_tok_s = { min = 0.9, of = "gguf/q4_0" }  # a ratio to a yardstick of the same sweep (see speed_gates)
    [thresholds.onnx]                 # a target: overrides the global limits, metric by metric
    file_mb = { max = 20 }
    [thresholds."executorch/8da4w"]   # a target/recipe: overrides both
    dppl_pct = { max = 25 }

    [baseline]                        # optional: a result set to compare with
    results = "baseline/"             # file or folder (relative to edgekit.toml)
    tolerance_pct = 10                # worse by more than this is a regression
    metrics = ["decode_tok_s", "peak_rss_mb", "file_mb", "ppl"]

    [reports]                         # optional; relative to edgekit.toml; the CLI's options win
    junit = "reports/edgekit.xml"
    summary = "reports/edgekit.md"
    html = "reports/edgekit.html"
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgekit import recipes
from edgekit.config import known_keys, number, relative_to, string_list, typed
from edgekit.errors import EdgekitError
from edgekit.core.results import RunResult
from edgekit.profile.metrics import METRICS
from edgekit.report.fields import fmt
from edgekit.sweep import SweepConfig, load_config

BASELINE_METRICS = ("decode_tok_s", "prefill_tok_s", "peak_rss_mb", "file_mb", "ppl")
REPORTS = ("junit", "summary", "html")


@dataclass(frozen=True)
class Limit:
    metric: str
    min: float | None = None
    max: float | None = None
    of: str | None = None  # a ratio to this "target/recipe" of the same model and device, measured in the same run

    @property
    def name(self) -> str:
        times = f" x {self.of}" if self.of else ""
        parts = [f">= {self.min:g}{times}" if self.min is not None else "",
                 f"<= {self.max:g}{times}" if self.max is not None else ""]
        return f"{self.metric} {' and '.join(p for p in parts if p)}"

    def judge(self, value: float | None, unit: str) -> tuple[bool, str]:
        unit = f" {unit}" if unit else ""
        if value is None:
            return False, f"{self.metric} was not measured (or is not a number)"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False, f"{self.metric} is {value!r}, not a number"
        if self.min is not None and value < self.min:
            return False, f"{self.metric} {fmt(value)}{unit} is below the minimum {self.min:g}{unit}"
        if self.max is not None and value > self.max:
            return False, f"{self.metric} {fmt(value)}{unit} is above the maximum {self.max:g}{unit}"
        return True, f"{self.metric} {fmt(value)}{unit}"


@dataclass(frozen=True)
class Rules:
    """What one combination must meet. parity: True must have passed, None failures only, False not checked."""

    parity: bool | None = None
    limits: tuple[Limit, ...] = ()


@dataclass(frozen=True)
class Verdict:
    key: tuple[str, ...]  # (model, target, recipe, device), and the settings where a baseline holds several
    name: str
    passed: bool | None  # None: skipped
    message: str

    @property
    def combination(self) -> str:
        model, target, recipe, device = self.key[:4]
        return f"{model} {target}/{recipe} on {device}" + (f" ({self.key[4]})" if len(self.key) > 4 else "")

    def as_dict(self) -> dict:
        return {"combination": self.combination, "key": list(self.key), "check": self.name, "passed": self.passed,
                "message": self.message}


@dataclass(frozen=True)
class CheckConfig:
    sweep: SweepConfig
    scopes: dict  # "" | target | "target/recipe" -> {"parity": bool, metric: Limit}
    baseline: Path | None
    tolerance_pct: float
    baseline_metrics: tuple[str, ...]
    reports: dict  # "junit" | "summary" | "html" -> Path

    def rules_for(self, target: str, recipe: str) -> Rules:
        merged = {"parity": True}
        for scope in ("", target, f"{target}/{recipe}"):
            merged.update(self.scopes.get(scope, {}))
        parity = merged.pop("parity")
        return Rules(parity=parity, limits=tuple(merged.values()))


def load_check(path: Path) -> CheckConfig:
    sweep, extra = load_config(path, extra=("thresholds", "baseline", "reports"))
    where = str(path)
    scopes = _thresholds(typed(extra, "thresholds", dict, where, {}), sweep, f"{where} [thresholds]")
    base = typed(extra, "baseline", dict, where, {})
    known_keys(base, ("results", "tolerance_pct", "metrics"), f"{where} [baseline]")
    metrics = string_list(base, "metrics", f"{where} [baseline]", required=False) or BASELINE_METRICS
    for m in metrics:
        _metric_name(m, f"{where} [baseline] metrics")
    results = typed(base, "results", str, f"{where} [baseline]")
    if base and results is None:
        raise EdgekitError(f"{where} [baseline]: 'results' (a result file or folder) is required")
    tolerance = number(base, "tolerance_pct", f"{where} [baseline]", 5.0)
    reports = typed(extra, "reports", dict, where, {})
    known_keys(reports, REPORTS, f"{where} [reports]")
    config = CheckConfig(
        sweep=sweep, scopes=scopes, baseline=relative_to(path, results) if results else None,
        tolerance_pct=float(tolerance), baseline_metrics=metrics,
        reports={k: relative_to(path, typed(reports, k, str, f"{where} [reports]")) for k in reports},
    )
    wanted = [f"{r.target}/{r.name}" for r in sweep.recipes if config.rules_for(r.target, r.name).parity]
    if not sweep.parity and wanted:  # every such check would fail, after the whole sweep ran
        raise EdgekitError(f"{where}: parity = false skips the export's parity check, which [thresholds] parity = "
                           f"true (the default) requires of {', '.join(wanted)}; set [thresholds] parity = false "
                           "too, or leave the sweep's parity on")
    return config


def _thresholds(table: dict, sweep: SweepConfig, where: str) -> dict:
    scopes = {"": {}}
    for name, value in table.items():
        if name == "parity" or name in METRICS:
            scopes[""].update(_rule(name, value, where, sweep))
        elif "/" in name or name in recipes.targets():
            scope = _scope(name, sweep, where)
            if not isinstance(value, dict):
                raise EdgekitError(f"{where}: '{name}' must be a table of limits")
            rules = {}
            for metric, limit in value.items():
                rules.update(_rule(metric, limit, f"{where} [{name}]", sweep))
            scopes[scope] = rules
        else:
            _metric_name(name, where, scopes=True)
    return scopes


def _rule(name: str, value, where: str, sweep: SweepConfig | None = None) -> dict:
    if name == "parity":
        return {"parity": typed({name: value}, name, bool, where)}
    _metric_name(name, where)
    if not isinstance(value, dict):
        raise EdgekitError(f"{where}: '{name}' must be a table such as {{ min = 1 }} or {{ max = 5 }}, got {value!r}")
    known_keys(value, ("min", "max", "of"), f"{where} {name}")
    bounds = {k: typed(value, k, (int, float), f"{where} {name}") for k in ("min", "max") if k in value}
    of = typed(value, "of", str, f"{where} {name}")
    if not bounds:
        raise EdgekitError(f"{where}: '{name}' needs a min or a max")
    for k, bound in bounds.items():
        if not math.isfinite(bound):
            raise EdgekitError(f"{where}: '{name}' {k} must be a finite number, got {bound}")
    lo, hi = bounds.get("min"), bounds.get("max")
    floor, ceiling = _RANGE.get(name, (0.0, math.inf)) if of is None else (0.0, math.inf)
    impossible = "no value can pass"
    if lo is not None and hi is not None and lo > hi:
        raise EdgekitError(f"{where}: '{name}' min {lo:g} is above its max {hi:g}: {impossible}")
    if hi is not None and hi < floor:
        raise EdgekitError(f"{where}: '{name}' max {hi:g} is below {floor:g}, the least {name} can be: {impossible}")
    if lo is not None and lo > ceiling:
        raise EdgekitError(f"{where}: '{name}' min {lo:g} is above {ceiling:g}, the most {name} can be: {impossible}")
    if of is not None:  # the yardstick: a recipe of the same sweep, named as its results name it
        if "/" not in of or sweep is None:
            raise EdgekitError(f"{where}: '{name}' of = {of!r}: name a target/recipe of this sweep, e.g. \"gguf/q4_0\"")
        return {name: Limit(name, **bounds, of=_scope(of, sweep, f"{where} {name} of"))}
    return {name: Limit(name, **bounds)}


# the values a metric can take where they are not [0, inf): what a limit outside them can never meet
_RANGE = {"ppl": (1.0, math.inf), "ppl_ref": (1.0, math.inf), "dppl_pct": (-100.0, math.inf), "top1_agree": (0.0, 1.0)}


def _metric_name(name: str, where: str, scopes: bool = False) -> str:
    if name not in METRICS:
        extra = "; or a table for a target (onnx) or target/recipe (\"onnx/int4\")" if scopes else ""
        raise EdgekitError(f"{where}: unknown metric '{name}'; metrics: {', '.join(METRICS)}{extra}")
    return name


def _scope(name: str, sweep: SweepConfig, where: str) -> str:
    """A scope in the form results name it (``onnx/int4`` becomes ``onnx/int4-g64-mix1``); it must match a recipe."""
    target, _, recipe = name.partition("/")
    try:
        scope = f"{target}/{recipes.parse(target, recipe).name}" if recipe else recipes.target_spec(target).name
    except EdgekitError as e:
        raise EdgekitError(f"{where}: [{name}]: {e}") from None
    if not any(scope in (r.target, f"{r.target}/{r.name}") for r in sweep.recipes):
        raise EdgekitError(f"{where}: [{name}] matches none of the recipes to check")
    return scope


def report_paths(config: CheckConfig, **given: Path | None) -> dict:
    """The reports to write: the config's [reports], each replaced by a path given on the command line."""
    return {**config.reports, **{k: Path(v) for k, v in given.items() if v is not None}}


def preflight(config: CheckConfig, reports: dict | None = None, fresh: bool = False) -> list[RunResult]:
    """What can be known bad before any work: every report can be written; every device is set up on
    this machine (the emulated arm64 one's userland); every model resolves and suits its targets;
    the sweep's own plan (``edgekit.sweep.plan``, with ``fresh`` as the run will have it) finds nothing
    wrong with a combination it would measure — a device that cannot run its artifacts among them
    (``edgekit.devices.require_capable``, the line profile and sweep give); the baseline loads. Returns
    the baseline results (empty without one)."""
    from edgekit import sweep as sweeps, targets
    from edgekit.devices import connect
    from edgekit.output import Read, Write, check_paths
    from edgekit.report.results import load_results
    from edgekit.source import resolve
    from edgekit.sweep import plan

    # the rule for what a command writes (edgekit.output.check_paths): the sweep's paths, the baseline, the reports
    reads, writes = sweeps.paths(config.sweep, "the check file")
    reads.append(Read("[baseline] results", config.baseline))
    writes += [Write(f"[reports] {kind}" if config.reports.get(kind) == path else f"--{kind}", path)
               for kind, path in (reports or {}).items()]
    writes.append(Write("$GITHUB_STEP_SUMMARY", os.environ.get("GITHUB_STEP_SUMMARY") or None))  # appended to
    check_paths(reads, writes)

    sweep = config.sweep
    try:
        for device in sweep.devices:
            connect(device)  # nothing is reached yet: a transport only checks what it needs here
        for model in sweep.models:
            for target in dict.fromkeys(r.target for r in sweep.recipes):
                tgt = targets.get(target)
                resolve(model, supported=tgt.SUPPORTED, refusal=getattr(tgt, "refusal", None))
        failed = next((job.error for job in plan(sweep, fresh) if job.error), None)
        if failed:
            raise EdgekitError(failed)
    except EdgekitError as e:
        raise EdgekitError(f"{sweep.file}: {e}") from None
    return load_results(config.baseline) if config.baseline else []


def evaluate(results: list[RunResult], rules_for: Callable[[str, str], Rules]) -> list[Verdict]:
    """A verdict per result and rule: it ran to the end, its parity, every limit."""
    verdicts = []
    for r in results:
        k = r.key
        if not r.complete:
            verdicts.append(Verdict(k, "completes", False, r.error or "the result is incomplete"))
            continue
        verdicts.append(Verdict(k, "completes", True, "exported and profiled"))
        rules = rules_for(k[1], k[2])
        parity = r.parity_passed
        if rules.parity is not False:
            if parity:
                verdicts.append(Verdict(k, "parity", True, "parity check passed at export"))
            elif parity is False:
                verdicts.append(Verdict(k, "parity", False,
                                        f"parity check failed at export (see {r.artifact.get('path')}/edgekit.json)"))
            elif rules.parity:
                verdicts.append(Verdict(k, "parity", False,
                                        "parity was not checked at export (parity = false in the sweep)"))
            else:
                verdicts.append(Verdict(k, "parity", None, "parity was not checked at export"))
        shown = r.figures()
        for limit in rules.limits:
            if limit.metric in r.metrics and limit.metric not in shown:
                verdicts.append(Verdict(k, limit.name, None,
                                        f"{limit.metric} is an emulator's figure on {k[3]}: not judged"))
                continue
            if limit.of:
                passed, message = judge_ratio(limit, r, results)
            else:
                m = shown.get(limit.metric)
                passed, message = limit.judge(m and m.value, m.unit if m else METRICS[limit.metric][0])
            verdicts.append(Verdict(k, limit.name, passed, message + _busy(r, limit.metric)))
    return verdicts


def _busy(result: RunResult, metric: str) -> str:
    """What a speed verdict adds where the result was measured on a busy machine."""
    from edgekit.profile.metrics import LATENCY

    busy = result.environment.busy if result.environment is not None and metric in LATENCY else None
    return f" ({busy})" if busy else ""


def against_baseline(results: list[RunResult], baseline: list[RunResult], tolerance_pct: float,
                     metrics) -> list[Verdict]:
    """A verdict per metric compared with the baseline: worse by more than the tolerance fails."""
    from edgekit.report.compare import compare

    comparison = compare(baseline, results, tolerance_pct)
    verdicts = [Verdict(k, f"{metric} vs baseline", None, f"{metric} is an emulator's figure on {k[3]}: not compared")
                for k, metric in comparison.emulated if metric in metrics]
    verdicts += [Verdict(k, f"{metric} vs baseline", None,
                         f"{metric} was scored on another evaluation text than the baseline's: not compared")
                 for k, metric in comparison.other_text if metric in metrics]
    for c in comparison.changes:
        if c.metric not in metrics or not is_number(c.base):
            continue  # nothing to compare with
        if not is_number(c.new):
            verdicts.append(Verdict(c.key, f"{c.metric} vs baseline", False,
                                    f"{c.metric} is {c.new!r}, not a number (baseline {fmt(c.base)} {c.unit})"))
            continue
        if c.settings_differ:
            verdicts.append(Verdict(c.key, f"{c.metric} vs baseline", None,
                                    f"{c.metric} was measured with other settings than the baseline's "
                                    f"({', '.join(c.settings_differ)}): not compared"))
            continue
        pct = "" if c.change_pct is None else f", {c.change_pct:+.1f}%"
        message = (f"{c.metric} {fmt(c.new)} vs baseline {fmt(c.base)} {c.unit}{pct}: {c.verdict}"
                   + _busy(comparison.pairs[c.key][1], c.metric))
        verdicts.append(Verdict(c.key, f"{c.metric} vs baseline", not c.regression, message))
    for k, (b, r) in comparison.pairs.items():  # a figure the baseline has and a complete result lacks fails too
        if not r.complete:
            continue
        for metric in metrics:
            if metric in b.metrics and is_number(b.metrics[metric].value) and metric not in r.metrics:
                verdicts.append(Verdict(k, f"{metric} vs baseline", False, f"{metric} was not measured"))
    for k, side, kept, left_out in comparison.duplicates:
        verdicts.append(Verdict(k, "one result per combination", None,
                                f"the {side} holds two results measured alike; "
                                f"compared {kept.file}, not {left_out.file}"))
    return verdicts


def yardstick(limit: Limit, result: RunResult, results: list[RunResult]) -> RunResult | None:
    """The result a ratio limit of ``result`` divides by: its model and device, the limit's target/recipe."""
    model, _, _, device = result.key[:4]
    found = [r for r in results if r.key[0] == model and r.key[3] == device and f"{r.target}/{r.recipe}" == limit.of]
    return found[-1] if found else None


def judge_ratio(limit: Limit, result: RunResult, results: list[RunResult]) -> tuple[bool, str]:
    """A ratio limit: ``result``'s figure over its yardstick's, both measured in this run."""
    base = yardstick(limit, result, results)
    if base is None or not base.complete:
        return False, f"{limit.metric}: the yardstick {limit.of} was not measured on {result.key[3]}"
    mine, theirs = result.figures().get(limit.metric), base.figures().get(limit.metric)
    if mine is None or theirs is None or not is_positive(theirs.value) or not is_number(mine.value):
        return False, f"{limit.metric}: not measured on both {result.target}/{result.recipe} and {limit.of}"
    return judge_limit_ratio(limit, mine.value / theirs.value, f"{fmt(mine.value)} vs {fmt(theirs.value)} {mine.unit}")


def judge_limit_ratio(limit: Limit, ratio: float, how: str) -> tuple[bool, str]:
    passed, _ = limit.judge(ratio, "")
    return passed, f"{limit.metric} {ratio:.3g} x {limit.of} ({how})"


def is_positive(x) -> bool:
    return is_number(x) and x > 0


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def write_reports(paths: dict, verdicts: list[Verdict], results: list[RunResult]) -> list[str]:
    """Each report kind ("junit", "summary", "html": a format of ``edgekit.report.formats``) to its
    path; the markdown summary also to the job summary of a GitHub Actions run ($GITHUB_STEP_SUMMARY).
    A report that cannot be written (a full disk) is kept in the temporary folder: returns a line for
    each such."""
    from edgekit import output as out
    from edgekit.report.formats import render

    problems = []
    for kind, path in paths.items():
        where, problem = out.keep(path, render(kind, results, verdicts))
        if problem:
            problems.append(f"{problem}; " + (f"the {kind} report is in {where} instead" if where
                                              else f"the {kind} report could be written nowhere"))
        else:
            out.note(f"{kind}: {path}")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
                f.write(render("summary", results, verdicts) + "\n")
        except OSError as e:
            out.note(f"cannot append to $GITHUB_STEP_SUMMARY: {e.strerror or e}")
    return problems
