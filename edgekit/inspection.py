"""What an artifact holds (``edgekit inspect``), read from its model file by the target's ``inspect``.

Every target answers with the same keys where it can: ``inputs``/``outputs`` (and ``states``) as
name, shape and dtype; ``ops`` (op type -> count); ``weights`` (stored type -> bits, tensors,
elements, bytes); plus what is particular to it (ExecuTorch: ``delegation``; GGUF: ``metadata``, the
file's key/values, where a GGUF has no graph inputs, outputs or ops).
"""

from __future__ import annotations

from pathlib import Path

from edgekit import artifact, output, targets


def inspect(path: Path, verify: bool = False) -> dict:
    art = artifact.load(path)
    artifact.verify(art, full=verify)
    m = art.manifest
    parity = m.get("parity", {})
    return {
        "artifact": str(art.path),
        "target": art.target,
        "recipe": art.recipe,
        "model": m["source"]["model"],
        "model_type": m["source"]["model_type"],
        "size_bytes": art.size_bytes,  # the model files, tokenizer and config (a profile's file_mb)
        "other_bytes": art.other_bytes,  # anything else in the folder
        "max_context": m["runtime"].get("max_context"),
        "parity": "skipped" if parity.get("skipped") else ("passed" if parity.get("passed") else "failed"),
        **targets.get(art.target).inspect(art.path, m["runtime"]),
    }


def show(report: dict) -> None:
    """The report as tables on stdout."""
    head = ("artifact", "target", "recipe", "model", "model_type", "max_context", "parity")
    rows = [(k, report[k]) for k in head]
    rows.append(("size", f"{report['size_bytes'] / 1e6:.2f} MB (model files, tokenizer, config)"))
    if report.get("other_bytes"):
        rows.append(("other files", f"{report['other_bytes'] / 1e6:.2f} MB (not counted in the size)"))
    output.table(None, ("", ""), rows)
    if report.get("metadata"):
        output.table("metadata", ("key", "value"), list(report["metadata"].items()))
    for kind in ("inputs", "outputs", "states"):
        if report.get(kind):
            output.table(kind, ("name", "shape", "dtype"), [(f["name"], _shape(f["shape"]), f["dtype"]) for f in report[kind]])
    if report.get("weights"):
        output.table(
            "stored weights", ("dtype", "bits", "tensors", "elements", "MB"),
            [(d, w["bits"], w["tensors"], w["elements"], f"{w['bytes'] / 1e6:.3f}") for d, w in report["weights"].items()],
        )
    if report.get("delegation"):
        d = report["delegation"]
        output.table("delegation", ("", ""), [("delegated nodes", f"{d['delegated_nodes']} of {d['total_nodes']}"),
                                              ("share", d["share"])])
    if report.get("ops"):
        output.table("ops", ("op", "count"), list(report["ops"].items()))


def _shape(shape: list) -> str:
    """[1, [1, 128]] -> 1 x 1..128; symbolic dimensions by name."""
    return " x ".join(f"{d[0]}..{d[1]}" if isinstance(d, list) else str(d) for d in shape) or "(any)"
