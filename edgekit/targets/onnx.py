"""ONNX target: optimum-onnx's exporter (decoder with KV cache), then ONNX Runtime's quantizers."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.source import ModelSource

SUPPORTED = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gpt2")
MODEL_FILE = "model.onnx"
_EXTERNAL_DATA_ABOVE = 1_800_000_000  # protobuf's 2 GB limit, with margin


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    with stage("export"):
        _optimum_export(source, folder)
    if recipe.scheme != "fp32":
        with stage(f"quantize {recipe.name}"):
            _quantize(folder / MODEL_FILE, recipe)
    return {"model_file": MODEL_FILE, "runtime": "onnxruntime"}


def _optimum_export(source: ModelSource, folder: Path) -> None:
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


def _quantize(model_file: Path, recipe: Recipe) -> None:
    import onnx

    model = onnx.load(str(model_file))
    if recipe.scheme == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    elif recipe.scheme == "int8":
        model = _dynamic_int8(model, model_file.parent)
    elif recipe.scheme == "int4":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        _fold_weight_transposes(model)
        q = MatMulNBitsQuantizer(
            model,
            bits=4,
            block_size=recipe.group_size,
            is_symmetric=True,
            op_types_to_quantize=("MatMul", "Gather"),  # the embedding table too (GatherBlockQuantized)
            quant_axes=(("MatMul", 0), ("Gather", 1)),
        )
        q.process()
        model = q.model.model
    else:  # a recipe file names a scheme this module does not implement
        raise EdgekitError(f"onnx recipe '{recipe.name}' is not implemented")
    _save(model, model_file)


def _fold_weight_transposes(model) -> None:
    """Replace Transpose(initializer) feeding a MatMul with the transposed initializer.

    A tied output head is exported as MatMul(x, Transpose(embedding)); MatMulNBits only quantizes
    MatMuls with a constant weight, so without this the head stays float32.
    """
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        if not all(c.op_type == "MatMul" and c.input[1] == node.output[0] for c in consumers.get(node.output[0], [])):
            continue
        weight = numpy_helper.to_array(inits[node.input[0]])
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        model.graph.initializer.append(numpy_helper.from_array(weight.transpose(perm), name=node.output[0]))
        model.graph.node.remove(node)


def _dynamic_int8(model, workdir: Path):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = workdir / ".fp32.onnx", workdir / ".int8.onnx"
    _save(model, src)
    try:
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
        return onnx.load(str(dst))
    finally:
        for p in workdir.glob(".fp32.onnx*"):
            p.unlink()
        for p in workdir.glob(".int8.onnx*"):
            p.unlink()


def _save(model, model_file: Path) -> None:
    """Save in place: one file when it fits protobuf's limit, else with an external data file."""
    import onnx

    for old in model_file.parent.glob(model_file.name + "_data"):
        old.unlink()
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
