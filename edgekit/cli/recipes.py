from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import command


@command("recipes")
def recipes(json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """List targets and their recipes."""
    from edgekit import output
    from edgekit.recipes import targets

    rows = []
    for name, spec in targets().items():
        for scheme, s in spec.schemes.items():
            options = " ".join(
                ([f"-g{{{','.join(map(str, s.group_sizes))}}} (default {s.group_size})"] if s.group_sizes else [])
                + ([f"-emb{{{','.join(map(str, s.embedding_bits))}}}"
                    + (f" (default {s.embedding_default})" if s.embedding_default else "")] if s.embedding_bits else [])
                + ([f"-mixN (calibrated, default {s.mixed_default})" if s.mixed_default else "-mixN (calibrated)"]
                   if s.mixed else [])
                + [f"-{m}" + (" (calibrated)" if m in s.calibrated else "") for m in s.methods]
            )
            rows.append((name, scheme + (" (default)" if scheme == spec.default else ""), options, s.summary))
    if json_out:
        output.emit_json(
            [{"target": t, "recipe": r.split()[0], "options": o, "summary": s} for t, r, o, s in rows]
        )
    else:
        output.table("targets and recipes", ("target", "recipe", "options", "summary"), rows)
