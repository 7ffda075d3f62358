from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import bounded, command


@command("compare")
def compare(
    base: Annotated[Path, typer.Argument(help="result file or folder: the baseline")],
    new: Annotated[Path, typer.Argument(help="result file or folder: the candidate")],
    tolerance: Annotated[
        float,
        typer.Option(callback=bounded("tolerance_pct"),
                     help="a metric worse by more than this many percent (and than its measured noise) "
                                 "is a regression"),
    ] = 5.0,
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Every metric of two result sets side by side, each figure with its uncertainty; a regression is
    worse by more than the tolerance and than the measured noise (the spread over runs, accuracy's
    standard error), between results of one artifact measured with the same settings (a difference of
    settings is said, never called a regression). Two results of different artifacts (another recipe,
    target, model or device: one alone on each side) are shown side by side, what differs said."""
    from edgekit import output
    from edgekit.report.compare import compare as run_compare
    from edgekit.report.results import load_results

    result = run_compare(load_results(base), load_results(new), tolerance, across=True)
    if json_out:
        output.emit_json({
            "tolerance_pct": tolerance,
            "changes": [c.as_dict() for c in result.changes],
            "only_in_base": [list(k) for k in result.only_base],
            "only_in_new": [list(k) for k in result.only_new],
            "emulated_not_compared": [[*k, metric] for k, metric in result.emulated],
            "other_eval_text_not_compared": [[*k, metric] for k, metric in result.other_text],
            "settings_differ": [{"key": list(k), "differences": d} for k, d in result.settings_differ.items()],
            "across_artifacts": [{"key": list(k), "differ_in": list(d)} for k, d in result.across.items()],
            "busy_machine": [{"key": list(k), "side": side, "why": r.environment.busy}
                             for k, (b, n) in result.pairs.items() for side, r in (("base", b), ("new", n))
                             if r.environment is not None and r.environment.busy],
            **({"duplicates_not_compared": [
                {"key": list(k), "side": side, "compared": kept.file, "left_out": dropped.file}
                for k, side, kept, dropped in result.duplicates]} if result.duplicates else {}),
        })
        return
    from rich.text import Text

    rows = []
    for c in result.changes:
        pct = "" if c.change_pct is None else f"{c.change_pct:+.1f}%"
        if c.regression:
            flag = Text("REGRESSION", style="bold red")
        elif c.across:
            flag = "another " + ", ".join(c.across)
        elif c.settings_differ:
            flag = Text("settings differ", style="yellow")
        elif c.verdict.startswith("worse") and "within the noise" in c.verdict:
            flag = "within the noise"
        else:
            flag = ""
        noise = "" if c.noise_pct is None else f"±{c.noise_pct:.1f}%"
        rows.append((" / ".join(c.key), c.metric, _with_se(c.base, c.base_se), _with_se(c.new, c.new_se), c.unit, pct,
                     noise, flag))
    output.table(f"{base} -> {new} (tolerance {tolerance:g}%)",
                 ("model / target / recipe / device", "metric", "base", "new", "unit", "change", "noise", ""), rows)
    for k, differences in result.settings_differ.items():
        output.note(f"SETTINGS DIFFER: {' / '.join(k)}: {', '.join(differences)}: "
                    "the figures they change are shown, never called regressions")
    for k, (b, n) in result.pairs.items():
        for side, r in (("base", b), ("new", n)):
            if r.environment is not None and r.environment.busy:
                output.note(f"BUSY MACHINE: {' / '.join(k)} ({side}): {r.environment.busy}")
    for k, what in result.across.items():
        output.note(f"ACROSS ARTIFACTS: {' / '.join(k)}: another {', '.join(what)}: the figures side by side; "
                    "a regression is only called between results of one artifact")
    for k, side, kept, dropped in result.duplicates:
        output.note(f"TWO RESULTS MEASURED ALIKE in {side}: {' / '.join(k)}: "
                    f"compared {kept.file} (the later), not {dropped.file}")
    for label, keys in (("only in base", result.only_base), ("only in new", result.only_new)):
        for k in keys:
            output.note(f"{label}: {' / '.join(k)}")
    left_out = (("an emulator's figures", result.emulated), ("scored on different evaluation texts", result.other_text))
    for why, pairs in left_out:
        skipped: dict[tuple, list[str]] = {}
        for k, metric in pairs:
            skipped.setdefault(k, []).append(metric)
        for k, metrics in skipped.items():
            output.note(f"not compared, {why}: {' / '.join(k)}: {', '.join(metrics)}")
    regressions = sum(c.regression for c in result.changes)
    noisy = sum("within the noise" in c.verdict and not c.across for c in result.changes)
    differ = sum(bool(c.settings_differ) for c in result.changes)
    crossed = sum(bool(c.across) for c in result.changes)
    output.note(f"{len(result.changes)} metrics compared"
                + (f" ({crossed} across artifacts, never regressions)" if crossed else "") + ", "
                f"{regressions} regression(s) beyond {tolerance:g}% and the noise"
                + (f"; {noisy} worse beyond {tolerance:g}% but within the noise" if noisy else "")
                + (f"; {differ} measured with other settings" if differ else ""))


def _with_se(value, se) -> str:
    """A figure with its standard error where it has one: ``17.59 ± 2.10``."""
    from edgekit.report.fields import fmt

    return fmt(value) if se is None or value is None else f"{fmt(value)} ± {fmt(se)}"
