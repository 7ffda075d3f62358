from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import command


@command("recipes")
def recipes(json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """List targets, their recipes and their options."""
    from edgekit import output
    from edgekit.cli.export import ALIASES
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
    known = targets()
    if json_out:  # a target's own options (export --option NAME=VALUE) on each of its rows, where it has any
        output.emit_json([
            {"target": t, "recipe": r.split()[0], "options": o, "summary": s,
             **({"target_options": {n: opt.as_dict() for n, opt in known[t].options.items()}}
                if known[t].options else {})}
            for t, r, o, s in rows
        ])
        return
    output.table("targets and recipes", ("target", "recipe", "options", "summary"), rows)
    options = [(t, n + (f" ({ALIASES[n]})" if n in ALIASES else ""), ", ".join(opt.choices), opt.default, opt.help)
               for t, spec in known.items() for n, opt in spec.options.items()]
    if options:
        output.table("target options (export --option NAME=VALUE)", ("target", "option", "values", "default", "about"),
                     options)
