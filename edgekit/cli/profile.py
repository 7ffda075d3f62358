from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit import devices
from edgekit.cli import bounded, command


@command("profile")
def profile(
    artifact: Annotated[Path, typer.Argument(help="artifact folder written by `edgekit export`")],
    device: Annotated[
        str, typer.Option("--device", "-d", help="device name (see `edgekit devices`) or profile file")
    ] = devices.DEFAULT,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the result JSON here")] = None,
    prompt_len: Annotated[int, typer.Option(callback=bounded("prompt_len"), help="prompt tokens (P)")] = 128,
    gen: Annotated[int, typer.Option(callback=bounded("gen"), help="tokens generated per run (G)")] = 128,
    runs: Annotated[int, typer.Option(callback=bounded("runs"), help="measured runs (R)")] = 5,
    warmup: Annotated[int, typer.Option(callback=bounded("warmup"), help="warm-up runs (W), not measured")] = 1,
    threads: Annotated[
        int | None, typer.Option(callback=bounded("threads"), help="runtime threads (default: the device profile's)")
    ] = None,
    eval_text: Annotated[
        Path | None, typer.Option(help="evaluation text for ppl/KL (default: the shipped one)")
    ] = None,
    eval_tokens: Annotated[
        int, typer.Option(callback=bounded("eval_tokens"), help="score at most this many tokens of it")
    ] = 2048,
    accuracy: Annotated[bool, typer.Option("--accuracy/--no-accuracy", help="measure ppl, top-1 and KL")] = True,
    timeout: Annotated[
        float | None,
        typer.Option(callback=bounded("timeout_s"), help="seconds each step may take (default: the profile's)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the result JSON")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="read every file's sha256 again (by default read once, then remembered)")
    ] = False,
    ops: Annotated[
        bool, typer.Option("--ops", help="per-operator times: one more generation under the runtime's profiler")
    ] = False,
    duration: Annotated[
        float | None, typer.Option("--duration", metavar="SECONDS", callback=bounded("duration_s"),
                                   help="after the runs, decode again and again this long (at most 3600): "
                                        "tok/s, temperature and CPU clock over time")
    ] = None,
) -> None:
    """Measure latency, memory and accuracy of an artifact on a device."""
    from edgekit import output as out
    from edgekit.devices import load_profile
    from edgekit.errors import EdgekitError, signalled
    from edgekit.profile.session import Interrupted, Settings, keep_result, profile as run_profile

    dev = load_profile(device)
    settings = Settings(
        prompt_len=prompt_len, gen=gen, runs=runs, warmup=warmup, threads=threads, eval_text=eval_text,
        eval_tokens=eval_tokens, accuracy=accuracy, timeout_s=timeout, ops=ops, duration_s=duration,
    )
    # before the work, not after it: -o can be written, and is none of what the profile reads
    out.check_paths([out.Read("the artifact", artifact), out.Read("--eval-text", eval_text),
                     out.Read("the device profile", dev.source)],
                    [out.Write("-o", output)])
    interrupted = False
    try:
        with out.steps(f"profile {artifact.name} on {dev.name}") as step:
            result = run_profile(artifact, dev, settings, on_step=step, verify=verify)
    except Interrupted as e:  # Ctrl-C or SIGTERM: what was measured is kept all the same
        result, interrupted = e.result, True
        signalled(False)  # accounted for: the message below says it, with where the runs are
    where, problem = keep_result(result, output)
    if json_out:
        out.emit_json(result.to_json())
    else:
        from edgekit.report.formats import metrics_table

        title, header, rows, hidden = metrics_table(result)
        out.table(title, header, rows)
        if hidden:
            out.note(hidden)
        _timings(result)
    if result.environment is not None and result.environment.busy:  # said with --json too (on stderr)
        out.note(f"warning: {result.environment.busy}")
    n = result.measured_runs
    kept = ((f"the {n} run(s) measured are in {where}" if n else f"the result (no run measured) is in {where}")
            if where else "")
    if problem:
        raise EdgekitError(f"{problem}; " + (f"{kept} instead" if where
                                             else "nothing else could be written (the figures are above)"))
    if interrupted or not result.complete:
        raise EdgekitError(f"{result.error}" + (f"; {kept}" if kept else ""))


def _timings(result) -> None:
    """The per-operator table (--ops) and the sustained run's summary (--duration), where the result has them."""
    from edgekit import output as out

    if result.ops is not None:
        if result.ops.source is None:
            out.note(result.ops.title)
        else:
            out.table(result.ops.title, *result.ops.table(), keep=1)
    if result.sustained is not None:
        out.note(result.sustained.summary())
