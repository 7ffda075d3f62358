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
    """Every metric of two result sets side by side; a regression is worse by more than the tolerance
    and than the measured noise (the spread over runs, accuracy's standard error), between results
    measured with the same settings (a difference of settings is said, never called a regression)."""
    from edgekit import output
    from edgekit.report.compare import compare as run_compare
    from edgekit.report.fields import fmt
    from edgekit.report.results import load_results

    result = run_compare(load_results(base), load_results(new), tolerance)
    if json_out:
        output.emit_json({
            "tolerance_pct": tolerance,
            "changes": [c.as_dict() for c in result.changes],
            "only_in_base": [list(k) for k in result.only_base],
            "only_in_new": [list(k) for k in result.only_new],
            "emulated_not_compared": [[*k, metric] for k, metric in result.emulated],
            "other_eval_text_not_compared": [[*k, metric] for k, metric in result.other_text],
            "settings_differ": [{"key": list(k), "differences": d} for k, d in result.settings_differ.items()],
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
        elif c.settings_differ:
            flag = Text("settings differ", style="yellow")
        elif c.verdict.startswith("worse") and "within the noise" in c.verdict:
            flag = "within the noise"
        else:
            flag = ""
        noise = "" if c.noise_pct is None else f"±{c.noise_pct:.1f}%"
        rows.append((" / ".join(c.key), c.metric, fmt(c.base), fmt(c.new), c.unit, pct, noise, flag))
    output.table(f"{base} -> {new} (tolerance {tolerance:g}%)",
                 ("model / target / recipe / device", "metric", "base", "new", "unit", "change", "noise", ""), rows)
    for k, differences in result.settings_differ.items():
        output.note(f"SETTINGS DIFFER: {' / '.join(k)}: {', '.join(differences)}: "
                    "the figures they change are shown, never called regressions")
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
    noisy = sum("within the noise" in c.verdict for c in result.changes)
    differ = sum(bool(c.settings_differ) for c in result.changes)
    output.note(f"{len(result.changes)} metrics compared, "
                f"{regressions} regression(s) beyond {tolerance:g}% and the noise"
                + (f"; {noisy} worse beyond {tolerance:g}% but within the noise" if noisy else "")
                + (f"; {differ} measured with other settings" if differ else ""))
