from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import command


@command("models")
def models(json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """List the builtin models (builtin:NAME): what each is, its licence, and whether it is installed."""
    from edgekit import output
    from edgekit.builtins import BUILTINS

    rows = []
    for b in BUILTINS.values():
        installed = b.installed()
        rows.append(
            {
                "model": f"builtin:{b.name}",
                "description": b.description,
                "licence": b.licence,
                "installed": installed,
                "install": None if installed else b.install,
            }
        )
    if json_out:
        output.emit_json(rows)
        return
    output.table(
        "builtin models",
        ("model", "what it is", "licence", "installed"),
        [(r["model"], r["description"], r["licence"], "yes" if r["installed"] else f"no: {r['install']}")
         for r in rows],
    )
