from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("check")
def check(
    config: Annotated[Path, typer.Argument(help="check file (TOML): a sweep plus [thresholds], [baseline], [reports]")],
    junit: Annotated[Path | None, typer.Option(help="write the checks as JUnit XML here")] = None,
    summary: Annotated[Path | None, typer.Option(help="write the markdown summary here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="measure every combination again (exports stay cached)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the verdicts and results as JSON")] = False,
) -> None:
    """The CI gate: sweep, then judge every result. Exit 0 all pass, 1 a check failed, 2 bad config."""
    from edgekit import output as out
    from edgekit.check import against_baseline, evaluate, load_check, preflight, report_paths, write_reports
    from edgekit.cli.sweep import run_matrix, unwritten
    from edgekit.errors import Failures

    cfg = load_check(config)
    paths = report_paths(cfg, junit=junit, summary=summary, html=html)
    baseline = preflight(cfg, paths, fresh)
    outcomes, results = run_matrix(cfg.sweep, fresh, table=not json_out)
    verdicts = evaluate(results, cfg.rules_for)
    if baseline:
        verdicts += against_baseline(results, baseline, cfg.tolerance_pct, cfg.baseline_metrics)
    from edgekit.speed_gates import confirm, measurer

    verdicts = confirm(verdicts, results, cfg, measurer(cfg, out.note), baseline)  # a failed speed verdict, again
    failed = [v for v in verdicts if v.passed is False]
    if json_out:
        from edgekit.report.fields import rows

        out.emit_json({"passed": not failed, "verdicts": [v.as_dict() for v in verdicts], "results": rows(results)})
    elif failed:
        out.table("failed checks", ("combination", "check", "why"),
                  [(v.combination, v.name, v.message) for v in failed])

    # what could not be written where asked (a full disk) was kept elsewhere: said after the verdicts
    problems = write_reports(paths, verdicts, results) + [o.error for o in unwritten(outcomes)]
    passed = sum(v.passed is True for v in verdicts)
    if failed:
        names = "; ".join(f"{v.combination}: {v.name}" for v in failed[:3]) + ("; ..." if len(failed) > 3 else "")
        raise Failures(f"{len(failed)} of {len(verdicts)} checks failed: {names}"
                       + "".join(f"; and {p}" for p in problems))
    if problems:
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"all {passed} checks passed, but " + "; and ".join(problems))
    out.note(f"edgekit check: all {passed} checks passed")
