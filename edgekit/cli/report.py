from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("report")
def report(
    results: Annotated[list[Path], typer.Argument(help="result files or folders")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="table, md, csv, json, junit, html or summary")
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
    emulated: Annotated[
        bool, typer.Option("--emulated", help="show emulated devices' timings too (left out by default)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON (--format json)")] = False,
) -> None:
    """Every result: speed, memory, size and accuracy per model, target, recipe and device.

    junit: a test case per result for its completion and its export's parity check; html: one
    self-contained page with a summary, speed/size and speed/accuracy plots and the table; summary: the
    markdown `edgekit check` writes. An emulated device's (arm64-emulated) timings and memory are the
    emulator's: left out unless --emulated."""
    import sys

    from edgekit import output as out
    from edgekit.errors import EdgekitError
    from edgekit.report import formats
    from edgekit.report.results import load_results

    if json_out:
        format = "json"
    if format != "table" and format not in formats.FORMATS:
        raise EdgekitError(f"unknown format '{format}'; formats: table, {', '.join(formats.FORMATS)}")
    if format == "table" and output is not None:
        raise EdgekitError("--format table prints to the terminal; use md, csv or json with --output")
    out.check_paths([out.Read("the result folder", path, shared=True) if path.is_dir() else
                     out.Read("the result file", path) for path in results],
                    [out.Write("-o", output)])
    loaded = [r for path in results for r in load_results(path)]
    if format == "table":
        if output is not None:
            raise EdgekitError("--format table prints to the terminal; use md, csv or json with --output")
        note = formats.reference_note(loaded)
        out.table(f"{len(loaded)} result(s)" + (f"; {note}" if note else ""), *formats.results_table(loaded, emulated),
                  **formats.RESULTS_LAYOUT)
        if busy := formats.busy_note(loaded):
            out.note(busy)
        return
    verdicts = []
    if format in ("junit", "html", "summary"):
        from edgekit.check import Rules, evaluate

        verdicts = evaluate(loaded, lambda target, recipe: Rules())
        if format == "html":  # no checks are set here: the page claims no "passed" check nobody set, only
            # whether each result completed and any failure the results carry (parity failed at export)
            verdicts = [v for v in verdicts if v.name == "completes" or v.passed is False]
    text = formats.render(format, loaded, verdicts, emulated)
    if output is None:
        sys.stdout.write(text)
    else:
        out.write_file(output, text)
