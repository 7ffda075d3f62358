from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("inspect")
def inspect(
    artifact: Annotated[Path, typer.Argument(help="artifact folder written by `edgekit export`")],
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="read every file's sha256 again (by default read once, then remembered)")
    ] = False,
) -> None:
    """Inputs, outputs, states, op counts and stored weights of an artifact's model file."""
    from edgekit import output
    from edgekit.inspection import inspect as run_inspect
    from edgekit.report.formats import artifact_tables

    report = run_inspect(artifact, verify)
    if json_out:
        output.emit_json(report)
    else:
        for title, header, rows in artifact_tables(report):
            output.table(title, header, rows)
