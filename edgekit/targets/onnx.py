"""ONNX target: a decoder with a KV cache, written by ONNX Runtime GenAI's model builder or by
optimum-onnx, then ONNX Runtime's quantizers.

The builder's graph is the fast one: GroupQueryAttention with rotary embedding fused, the KV cache
updated in place (the runner binds past and present to the same buffer), fused norms and packed QKV, int4 MatMulNBits computing in int8. optimum covers more
architectures (gpt2 here) with a plain graph whose cache grows by concatenation. Either way the graph
gains a ``logits_to_keep`` input, so that prefill computes the head for the last position only.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.source import ModelSource

SUPPORTED = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gpt2")
GENAI_SUPPORTED = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma")  # checked by tests/targets/test_onnx.py
MODEL_FILE = "model.onnx"
LOGITS_TO_KEEP = "logits_to_keep"
_EXTERNAL_DATA_ABOVE = 1_800_000_000  # protobuf's 2 GB limit, with margin


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    exporter = _exporter(source, recipe)
    model_file = folder / MODEL_FILE
    with stage(f"export ({exporter})"):
        (_genai_export if exporter == "genai" else _optimum_export)(source, recipe, folder)
    with stage("logits_to_keep"):
        graph = _finish_graph(model_file)
    quantization = None
    if recipe.scheme != "fp32":
        with stage(f"quantize {recipe.name}"):
            quantization = _quantize(model_file, recipe, source)
    return {
        "model_file": MODEL_FILE,
        "runtime": "onnxruntime",
        "exporter": exporter,
        # shared: one buffer per layer that GroupQueryAttention updates in place (past and present bound
        # to it); concat: present = past + new, handed back as the next step's past
        "kv_cache": "shared" if graph["fused_attention"] else "concat",
        **({"quantization": quantization} if quantization else {}),
    }


def _exporter(source: ModelSource, recipe: Recipe) -> str:
    fits = source.model_type in GENAI_SUPPORTED and recipe.scheme in _GENAI_PRECISION
    if recipe.exporter in (None, "auto"):
        return "genai" if fits else "optimum"
    if recipe.exporter == "genai" and not fits:
        raise EdgekitError(
            f"--exporter genai takes recipes {', '.join(_GENAI_PRECISION)} of model types {', '.join(GENAI_SUPPORTED)}, "
            f"not {recipe.name} of '{source.model_type}' (use --exporter optimum)"
        )
    return recipe.exporter


# recipe -> the builder's precision: its fp32 graph, which ``onnx_quant`` quantizes as it does optimum's.
# No fp16: 0.11.4's fp16 graph for the CPU does not run (a cast it inserts reuses a buffer of another shape).
_GENAI_PRECISION = {"fp32": "fp32", "int8": "fp32", "int4": "fp32"}


def _genai_export(source: ModelSource, recipe: Recipe, folder: Path) -> None:
    """ONNX Runtime GenAI's model builder, for the CPU execution provider, its output quiet unless it fails."""
    import contextlib
    import io
    import shutil
    import tempfile

    options: dict = {"hf_token": "false", "hf_remote": source.trust_remote_code}
    log = io.StringIO()
    try:
        from onnxruntime_genai.models.builder import create_model

        with tempfile.TemporaryDirectory(dir=folder) as cache, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            create_model(None, str(source.path), str(folder), _GENAI_PRECISION[recipe.scheme], "cpu", cache, **options)
    except Exception as e:  # the builder raises whatever its steps raise
        last = (str(e).strip() or type(e).__name__).splitlines()[0]
        raise EdgekitError(f"ONNX export of {source.spec} (genai builder) failed: {last}") from None
    for extra in ("genai_config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        (folder / extra).unlink(missing_ok=True)  # ours come from the tokenizer stage; no genai runtime config
    for name in ("config.json", "generation_config.json"):  # as optimum's export has them
        if (source.path / name).is_file():
            shutil.copyfile(source.path / name, folder / name)
    if not (folder / MODEL_FILE).is_file():
        raise EdgekitError(f"ONNX export of {source.spec} (genai builder) produced no {MODEL_FILE}")


def _finish_graph(model_file: Path) -> dict:
    """One pass over the exported graph (weights stay on disk): give it an int64 input
    ``logits_to_keep`` [1], so the head runs on the last that many positions only (a prefill needs
    one; scoring a text needs all, and any count >= length gives all), and mend the builder's missing
    zero points. Returns what the export needs to know of it: ``fused_attention`` (the builder's
    GroupQueryAttention) and ``float_embedding`` (a float table gathered by the token ids)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_file), load_external_data=False)
    graph = model.graph
    _drop_missing_zero_points(graph)
    producer = {out: node for node in graph.node for out in node.output}
    node = producer.get("logits")
    while node is not None and node.op_type == "Cast":
        node = producer.get(node.input[0])
    if node is None or node.op_type not in ("MatMul", "MatMulNBits", "Gemm"):
        raise EdgekitError(f"{model_file.name}: cannot find the output head feeding 'logits'")
    hidden = node.input[0]
    kept = f"{hidden}/{LOGITS_TO_KEEP}"
    graph.input.append(helper.make_tensor_value_info(LOGITS_TO_KEEP, TensorProto.INT64, [1]))
    graph.initializer.extend([
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), f"{kept}/end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{kept}/axis"),
    ])
    at = list(graph.node).index(node)
    graph.node.insert(at, helper.make_node("Neg", [LOGITS_TO_KEEP], [f"{kept}/start"], name=f"{kept}/Neg"))
    graph.node.insert(at + 1, helper.make_node(
        "Slice", [hidden, f"{kept}/start", f"{kept}/end", f"{kept}/axis"], [kept], name=f"{kept}/Slice"))
    node.input[0] = kept
    onnx.save_model(model, str(model_file))  # external data, if any, stays where it is
    floats = {i.name for i in graph.initializer if i.data_type == TensorProto.FLOAT}
    return {
        "fused_attention": any(n.op_type == "GroupQueryAttention" for n in graph.node),
        "float_embedding": any(n.op_type == "Gather" and n.input[0] in floats for n in graph.node),
    }


def _drop_missing_zero_points(graph) -> None:
    """The builder (0.11.4) gives a symmetric shared embedding's GatherBlockQuantized a zero-point
    input it never writes; zero points are optional there (symmetric: the type's midpoint)."""
    known = {i.name for i in graph.initializer} | {i.name for i in graph.input}
    known |= {out for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "GatherBlockQuantized" and len(node.input) == 4 and node.input[3] not in known:
            del node.input[3]


def _optimum_export(source: ModelSource, recipe: Recipe, folder: Path) -> None:
    from optimum.exporters.onnx import main_export
    from optimum.utils import logging as optimum_logging

    optimum_logging.set_verbosity_error()  # its root logger is set up (at WARNING) on first use, after ours

    try:
        main_export(
            str(source.path),
            folder,
            task="text-generation-with-past",
            do_validation=False,
            trust_remote_code=source.trust_remote_code,
            local_files_only=True,
        )
    except (ValueError, KeyError, RuntimeError) as e:
        raise EdgekitError(f"ONNX export of {source.spec} failed: {str(e).strip().splitlines()[0]}") from None
    if not (folder / MODEL_FILE).is_file():
        raise EdgekitError(f"ONNX export of {source.spec} produced no {MODEL_FILE}")


def _quantize(model_file: Path, recipe: Recipe, source: ModelSource) -> dict | None:
    """The recipe's precision applied to the fp32 graph in place: fp16 by ONNX Runtime's converter,
    int8 and int4 by ``onnx_quant`` (what it did is returned for the manifest)."""
    import onnx

    model = onnx.load(str(model_file))
    info = None
    if recipe.scheme == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    elif recipe.scheme in ("int8", "int4"):
        from edgekit.targets import onnx_quant

        plan = onnx_quant.plan_for(recipe)
        calibration = onnx_quant.calibration(source, recipe) if plan.algorithm in onnx_quant.CALIBRATED else None
        model, info = onnx_quant.quantize(model, plan, calibration)
    else:  # a recipe file names a scheme this module does not implement
        raise EdgekitError(f"onnx recipe '{recipe.name}' is not implemented")
    _save(model, model_file)
    return info


def _save(model, model_file: Path) -> None:
    """Save in place: one file when it fits protobuf's limit, else with an external data file."""
    import onnx

    for old in (*model_file.parent.glob(model_file.name + "_data"), *model_file.parent.glob(model_file.name + ".data")):
        old.unlink()  # optimum's and the builder's names for it; the model in memory holds its weights
    external = model.ByteSize() > _EXTERNAL_DATA_ABOVE if _fits_bytesize(model) else True
    onnx.save_model(
        model,
        str(model_file),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=model_file.name + "_data",
    )


def _fits_bytesize(model) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # protobuf refuses to size messages over 2 GB
        return False


def inspect(folder: Path, runtime: dict) -> dict:
    """Graph inputs and outputs, op type counts (domain-qualified outside the default one) and the
    initializers by element type."""
    import onnx
    from onnx import helper

    from edgekit.inspect import tally

    path = folder / runtime["model_file"]
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a missing, truncated or foreign file
        raise EdgekitError(f"cannot read {path}: {str(e).strip().splitlines()[0]}") from None
    graph = model.graph
    ops: dict[str, int] = {}
    for node in graph.node:
        name = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        ops[name] = ops.get(name, 0) + 1
    weights: dict[str, dict] = {}
    for init in graph.initializer:
        dtype = onnx.TensorProto.DataType.Name(init.data_type).lower()
        elements = 1
        for d in init.dims:
            elements *= d
        bits = 4 if dtype in ("int4", "uint4") else 8 * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
        tally(weights, dtype, bits, elements)
    return {
        "inputs": [_value_info(v) for v in graph.input],
        "outputs": [_value_info(v) for v in graph.output],
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "weights": dict(sorted(weights.items(), key=lambda kv: -kv[1]["bytes"])),
    }


def _value_info(v) -> dict:
    import onnx

    t = v.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return {"name": v.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(t.elem_type).lower()}
