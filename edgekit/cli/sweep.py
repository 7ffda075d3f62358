from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("sweep")
def sweep(
    config: Annotated[
        Path, typer.Argument(help="sweep file (TOML): models, recipes per target, devices, profile settings")
    ],
    fresh: Annotated[
        bool, typer.Option("--fresh", help="measure every combination again (exports stay cached)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the combinations and their results as JSON")] = False,
) -> None:
    """Export and profile every model x recipe x device; resumable, exports cached, one result file each."""
    from edgekit.sweep import load_config

    cfg, _ = load_config(config)
    outcomes, results = run_matrix(cfg, fresh, table=not json_out)
    if json_out:
        from edgekit import output
        from edgekit.report.fields import rows

        output.emit_json({"combinations": outcome_rows(outcomes, results), "results": rows(results)})
    failed = [o for o in outcomes if o.status == "failed"]
    parity = parity_failures(results)
    if failed or parity:
        from edgekit.errors import Failures

        parts = [f"{len(failed)} failed (their errors are in their result files)"] if failed else []
        parts += ([f"{len(parity)} failed their export's parity check (see each artifact's edgekit.json)"]
                  if parity else [])
        raise Failures(f"{len(failed) + len(parity)} of {len(outcomes)} combination(s) failed: {'; '.join(parts)}")


def unwritten(outcomes: list) -> list:
    """The combinations whose result could not be written to the sweep's output (a full disk): a measured
    one kept in the temporary folder or nowhere, a failed one with no record (a check cannot judge it)."""
    return [o for o in outcomes
            if o.unsaved is not None or o.result.name != o.combination.filename or not o.result.is_file()]


def parity_failures(results: list) -> list:
    """The results whose artifact failed its parity check at export (measured all the same)."""
    return [r for r in results if r.parity_passed is False]


def outcome_rows(outcomes: list, results: list) -> list[dict]:
    """What became of each combination, as JSON: its key, status (a failed parity check counts as
    failed), export, seconds, error and result file."""
    bad_parity = {r.file for r in parity_failures(results)}
    out = []
    for o in outcomes:
        c = o.combination
        status = "failed" if o.status != "failed" and str(o.result) in bad_parity else o.status
        out.append({"model": c.model, "target": c.recipe.target, "recipe": c.recipe.name, "device": c.device.name,
                    "status": status, "export": o.export, "seconds": o.seconds, "error": o.error,
                    "result": str(o.result)})
    return out


def run_matrix(cfg, fresh: bool, table: bool = True) -> tuple[list, list]:
    """Run a sweep with progress over the whole matrix, a line per combination and (``table``) a
    closing table; returns the outcomes and their results."""
    from edgekit import output as out
    from edgekit.report.formats import RESULTS_LAYOUT, results_table
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
    # a result that could be written nowhere is shown all the same; a failure whose record could not be
    # written has no figures to show
    results = [r for o in outcomes for r in ([o.unsaved] if o.unsaved is not None
                                             else load_results(o.result) if o.result.is_file() else [])]
    status = [o["status"] for o in outcome_rows(outcomes, results)]
    counts = {s: status.count(s) for s in ("measured", "kept", "failed")}
    exports = {s: sum(o.export == s for o in outcomes) for s in ("exported", "cached")}
    parity = len(parity_failures(results))
    failed = f"{counts['failed']} failed" + (
        f" ({parity} of them their parity check, measured all the same)" if parity else "")
    out.note(
        f"{total} combination(s): {counts['measured']} measured, {counts['kept']} kept, {failed}; "
        f"exports: {exports['exported']} exported, {exports['cached']} cached"
    )
    if table:
        from edgekit.report.formats import reference_note

        from edgekit.report.formats import busy_note

        note = reference_note(results)
        out.table(f"{len(results)} result(s) in {cfg.output}" + (f"; {note}" if note else ""), *results_table(results),
                  **RESULTS_LAYOUT)
        if busy := busy_note(results):
            out.note(busy)
    return outcomes, results
