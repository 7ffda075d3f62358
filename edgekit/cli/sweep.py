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
    outcomes, results = run_matrix(cfg, fresh)
    failed = [o for o in outcomes if o.status == "failed"]
    parity = parity_failures(results)
    if failed or parity:
        from edgekit.errors import Failures

        parts = [f"{len(failed)} failed (their errors are in their result files)"] if failed else []
        parts += [f"{len(parity)} failed their export's parity check (see each artifact's edgekit.json)"] if parity else []
        raise Failures(f"{len(failed) + len(parity)} of {len(outcomes)} combination(s) failed: {'; '.join(parts)}")


def parity_failures(results: list[dict]) -> list[dict]:
    """The results whose artifact failed its parity check at export (measured all the same)."""
    return [r for r in results if r["artifact"].get("parity_passed") is False]


def run_matrix(cfg, fresh: bool) -> tuple[list, list[dict]]:
    """Run a sweep with progress over the whole matrix, a line per combination and a closing table;
    returns the outcomes and their results."""
    from edgekit import output as out
    from edgekit.report.formats import KEY, text_table
    from edgekit.report.results import load_results
    from edgekit.sweep import run

    total = len(cfg.combinations())
    out.note(f"sweep: {total} combination(s) -> {cfg.output} (exports cached in {cfg.cache})")

    def report(done: int, n: int, o) -> None:
        what = {"kept": "kept (complete result from an earlier run)", "measured": f"measured in {o.seconds:.1f} s",
                "failed": f"FAILED: {o.error}"}[o.status]
        export = {"exported": "exported, ", "cached": "export cached, "}.get(o.export, "")
        if o.status != "failed" and parity_failures(load_results(o.result)):
            what += "; its export FAILED the parity check"
        out.note(f"[{done}/{n}] {o.combination.label}: {export}{what}")

    with out.steps("sweep") as step:
        def listen(e) -> None:  # the sweep's events: a combination finished, or a step of one
            if e.outcome is not None:
                report(e.done, e.total, e.outcome)
            else:
                step(f"{e.label}: {e.text}" if e.label else e.text, e.done, e.total)

        outcomes = run(cfg, listen, fresh=fresh)
    results = [r for o in outcomes for r in load_results(o.result)]
    bad_parity = {r["_file"] for r in parity_failures(results)}
    # a combination whose export failed its parity check is measured all the same, and counted as failed
    status = ["failed" if o.status != "failed" and str(o.result) in bad_parity else o.status for o in outcomes]
    counts = {s: status.count(s) for s in ("measured", "kept", "failed")}
    exports = {s: sum(o.export == s for o in outcomes) for s in ("exported", "cached")}
    parity = len(bad_parity)
    failed = f"{counts['failed']} failed" + (f" ({parity} of them their parity check, measured all the same)" if parity else "")
    out.note(
        f"{total} combination(s): {counts['measured']} measured, {counts['kept']} kept, {failed}; "
        f"exports: {exports['exported']} exported, {exports['cached']} cached"
    )
    out.table(f"{len(results)} result(s) in {cfg.output}", *text_table(results), keep=len(KEY))
    return outcomes, results
