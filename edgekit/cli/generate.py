"""``edgekit run``: the command of the generate feature (``edgekit.generate``, ``edgekit.runtime.generate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import bounded, command


@command("run")
def run(
    artifact: Annotated[Path, typer.Argument(help="artifact folder written by `edgekit export`")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to continue")] = "Once upon a time",
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", "-n", callback=bounded("max_new_tokens"), help="tokens to generate")
    ] = 64,
    threads: Annotated[
        int | None, typer.Option(callback=bounded("threads"), help="runtime threads (default: the runtime's)")
    ] = None,
    chat: Annotated[
        bool,
        typer.Option("--chat", help="the prompt is a user's message in the model's chat template; print the reply"),
    ] = False,
    temperature: Annotated[
        float, typer.Option(callback=bounded("temperature"), help="0 (default): greedy; above 0: sample")
    ] = 0.0,
    top_p: Annotated[
        float,
        typer.Option("--top-p", callback=bounded("top_p"),
                     help="sample from the most likely tokens up to this probability"),
    ] = 1.0,
    seed: Annotated[
        int | None, typer.Option(callback=bounded("seed"), help="seed of the sampling, for a repeatable draw")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="read every file's sha256 again (by default read once, then remembered)")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="print the text and its figures as JSON (nothing streamed)")
    ] = False,
) -> None:
    """Generate text with the artifact's own runtime and KV cache: greedily, or sampled (--temperature)."""
    from edgekit import output
    from edgekit.generate import Sampling, generate

    gen = generate(artifact, prompt, max_new_tokens, threads=threads, stream=None if json_out else output.out.file,
                   verify=verify, chat=chat, sampling=Sampling(temperature, top_p, seed))
    if json_out:
        from dataclasses import asdict

        output.emit_json(asdict(gen))
        return
    output.note(gen.summary())
