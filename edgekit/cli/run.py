from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import command


@command("run")
def run(
    artifact: Annotated[Path, typer.Argument(help="artifact folder written by `edgekit export`")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to continue")] = "Once upon a time",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=1, help="tokens to generate")] = 64,
    threads: Annotated[int | None, typer.Option(min=1, help="runtime threads (default: the runtime's)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="read every file's sha256 again (by default read once, then remembered)")] = False,
) -> None:
    """Generate text greedily with the artifact's own runtime and KV cache."""
    from edgekit import output
    from edgekit.generation import generate

    gen = generate(artifact, prompt, max_new_tokens, threads=threads, stream=output.out.file, verify=verify)
    output.note(gen.summary())
