from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit import targets
from edgekit.cli import bounded, command


# the documented flags that are aliases of --option NAME=VALUE, by the option they set (declared in
# their target's recipe file, checked there as any --option is)
ALIASES = {"exporter": "--exporter", "compute_units": "--compute-units"}


@command("export")
def export(
    model: Annotated[
        str, typer.Argument(help="HF hub id, local model folder, GGUF file, or builtin:NAME (see `edgekit models`)")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="artifact folder to write")],
    target: Annotated[str, typer.Option("--target", "-t", help="the target (see `edgekit recipes`)")] = targets.DEFAULT,
    recipe: Annotated[
        str | None, typer.Option("--recipe", "-r", help="e.g. fp32, fp16, int8, int4-g32, 8da4w-g32-emb4, q4_k_m")
    ] = None,
    revision: Annotated[str | None, typer.Option(help="hub revision: branch, tag or commit")] = None,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="allow model code from the repo")
    ] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="allow pickle (.bin) weights")] = False,
    max_context: Annotated[
        int | None,
        typer.Option(callback=bounded("max_context"),
                     help="context length of the artifact (KV cache size); default: the target's")
    ] = None,
    compute_units: Annotated[
        str | None, typer.Option(help="the same as --option compute_units=VALUE (Core ML's; see `edgekit recipes`)")
    ] = None,
    exporter: Annotated[
        str | None, typer.Option(help="the same as --option exporter=VALUE (ONNX's; see `edgekit recipes`)")
    ] = None,
    gguf_file: Annotated[
        str | None,
        typer.Option("--gguf-file", help="the GGUF file to convert, in a hub repo or a folder holding several"),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="a target option NAME=VALUE, as declared in the target's recipe file "
                                      "(e.g. exporter=optimum); repeatable"),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="calibration text of a calibrated recipe (e.g. gguf q4_0-imatrix, onnx int4-gptq); "
                          "default: the shipped one, never the evaluation text"),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing output folder")] = False,
    parity: Annotated[bool, typer.Option("--parity/--no-parity", help="check against the PyTorch fp32 model")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="print the manifest as JSON")] = False,
) -> None:
    """Convert a checkpoint into an on-device artifact (model files + tokenizer + edgekit.json)."""
    import time

    from edgekit import output as out

    begun = time.perf_counter()
    from edgekit import recipes
    from edgekit.export import check_inputs, export as run_export, source_for

    with out.progress(f"export {model} -> {target}") as update:
        aliased = {"exporter": exporter, "compute_units": compute_units}  # ALIASES' values
        options = recipes.option_values([*(option or ()), *(f"{k}={v}" for k, v in aliased.items() if v is not None)])
        rec = recipes.parse(target, recipe, max_context, options,
                            calibration=None if calibration is None else str(out.real("--calibration", calibration)))
        check_inputs(rec, output, overwrite, model)
        sourced = time.perf_counter()
        source = source_for(target, model, revision=revision, trust_remote_code=trust_remote_code,
                            allow_pickle=allow_pickle, gguf_file=gguf_file, on_stage=update)
        sourced = time.perf_counter() - sourced
        art = run_export(source, rec, output, overwrite=overwrite, parity=parity, on_stage=update)
    m = art.manifest
    # the source's own stage: finding the model, and converting a GGUF source (once: its cache keeps it)
    stage = "source (GGUF conversion)" if m.source.get("gguf") else "source"
    source_stage = {stage: sourced} if sourced >= 0.05 else {}
    if m.reference and not m.parity_skipped:
        out.note(f"note: the parity reference is {m.reference}: a quantized model itself, "
                 "not the original float weights")
    if json_out:
        out.emit_json(art.manifest.to_json())
        return
    p = m.parity
    reason = m.runtime.get("exporter_reason")
    rows = [
        ("artifact", str(art.path)),
        ("target / recipe", f"{art.target} / {art.recipe}"),
        *([("exporter", f"{m.exporter} ({reason})")] if reason else []),
        ("size", f"{art.size_bytes / 1e6:.2f} MB"),
        ("time", _times(time.perf_counter() - begun, {**source_stage, **m.stages})),
        ("peak RSS", f"{m.export['peak_rss_mb']:.0f} MB (export process)"),
    ]
    if m.parity_skipped:
        rows.append(("parity", "skipped" if m.parity_skipped is True else f"skipped: {m.parity_skipped}"))
    else:
        rows.append(
            (
                "parity",
                f"{'passed' if p['passed'] else 'FAILED'}: top-1 agree {p['top1_agree']:.3f}, "
                f"KL {p['kl_mean']:.2g}, max |dlogit| {p['max_abs_logit_diff']:.2g}, "
                f"greedy {p['greedy_match_tokens']}/{p['greedy_total_tokens']}",
            )
        )
    out.table(None, ("", ""), rows)


def _times(total: float, stages: dict) -> str:
    """The whole command's time and its stages; the rest is loading the libraries and the model."""
    rest = max(total - sum(stages.values()), 0.0)
    parts = ([f"{name} {s:.1f} s" for name, s in stages.items()]
             + [f"the rest (libraries, reading the model) {rest:.1f} s"])
    return f"{total:.1f} s in all: " + ", ".join(parts)
