from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("sweep")
def sweep(
    config: Annotated[Path, typer.Argument(help="sweep file (TOML): models, recipes per target, devices, profile settings")],
    fresh: Annotated[bool, typer.Option("--fresh", help="measure every combination again (exports stay cached)")] = False,
) -> None:
    """Export and profile every model x recipe x device; resumable, exports cached, one result file each."""
    from edgekit.sweep import load_config

    cfg, _ = load_config(config)
    outcomes, _ = run_matrix(cfg, fresh)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        from edgekit.errors import Failures

        raise Failures(f"{len(failed)} of {len(outcomes)} combination(s) failed; their errors are in their result files")


def run_matrix(cfg, fresh: bool) -> tuple[list, list[dict]]:
    """Run a sweep with progress over the whole matrix, a line per combination and a closing table;
    returns the outcomes and their results."""
    from edgekit import output as out
    from edgekit.report.formats import text_table
    from edgekit.report.results import load_results
    from edgekit.sweep import run

    total = len(cfg.combinations())
    out.note(f"sweep: {total} combination(s) -> {cfg.output} (exports cached in {cfg.cache})")

    def report(i: int, n: int, o) -> None:
        what = {"kept": "kept (complete result from an earlier run)", "measured": f"measured in {o.seconds:.1f} s",
                "failed": f"FAILED: {o.error}"}[o.status]
        export = {"exported": "exported, ", "cached": "export cached, "}.get(o.export, "")
        out.note(f"[{i + 1}/{n}] {o.combination.label}: {export}{what}")

    with out.steps("sweep") as step:
        outcomes = run(cfg, on_step=step, on_outcome=report, fresh=fresh)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("measured", "kept", "failed")}
    exports = {s: sum(o.export == s for o in outcomes) for s in ("exported", "cached")}
    out.note(
        f"{total} combination(s): {counts['measured']} measured, {counts['kept']} kept, {counts['failed']} failed; "
        f"exports: {exports['exported']} exported, {exports['cached']} cached"
    )
    results = [r for o in outcomes for r in load_results(o.result)]
    out.table(f"{len(results)} result(s) in {cfg.output}", *text_table(results))
    return outcomes, results
