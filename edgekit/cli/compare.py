from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("compare")
def compare(
    base: Annotated[Path, typer.Argument(help="result file or folder: the baseline")],
    new: Annotated[Path, typer.Argument(help="result file or folder: the candidate")],
    tolerance: Annotated[float, typer.Option(min=0, help="a metric worse by more than this many percent is a regression")] = 5.0,
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Every metric of two result sets side by side, regressions beyond the tolerance highlighted."""
    from edgekit import output
    from edgekit.report.compare import compare as run_compare
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
        })
        return
    from rich.text import Text

    rows = []
    for c in result.changes:
        pct = "" if c.change_pct is None else f"{c.change_pct:+.1f}%"
        flag = Text("REGRESSION", style="bold red") if c.regression else ""
        rows.append((" / ".join(c.key), c.metric, output.fmt(c.base), output.fmt(c.new), c.unit, pct, flag))
    output.table(f"{base} -> {new} (tolerance {tolerance:g}%)",
                 ("model / target / recipe / device", "metric", "base", "new", "unit", "change", ""), rows)
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
    output.note(f"{len(result.changes)} metrics compared, {regressions} regression(s) beyond {tolerance:g}%")
