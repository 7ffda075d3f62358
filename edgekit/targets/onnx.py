"""ONNX target: a decoder with a KV cache, written by ONNX Runtime GenAI's model builder or by
optimum-onnx, then ONNX Runtime's quantizers.

The builder's graph is the fast one: GroupQueryAttention with rotary embedding fused, the KV cache
updated in place (the runner binds past and present to the same buffer), fused norms and packed QKV,
int4 MatMulNBits computing in int8. It takes a few architectures, and ``auto`` uses it only where it
reproduces the model (``onnx_builder``). optimum takes every decoder-only architecture its registry
exports for text generation with a cache, with a plain graph whose cache grows by concatenation.
Either way the graph gains a ``logits_to_keep`` input, so that prefill computes the head for the
last position only; it has a default (0: every position, as transformers means it), so that a
runtime that does not know it need not give it.

The artifact is an ONNX Runtime GenAI model folder (``onnx_genai``): ``genai_config.json`` beside the
graph and the tokenizer, which ``onnxruntime_genai.Model`` loads; edgekit's runner reads the same
graph.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

from edgekit.core.model import model_context
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.source import ModelSource
from edgekit.targets import Target, onnx_builder, onnx_genai
from edgekit.targets.memory import release_heap
from edgekit.targets.onnx_genai import standard_check  # noqa: F401  (the target's check in GenAI's own API)

TARGET = Target(
    exporter=__name__, backend="edgekit.runtime.onnx",
    toolchain=("optimum", "optimum-onnx", "onnx", "onnxruntime", "onnxruntime-genai"), runtime=("onnxruntime",),
)

GENAI_SUPPORTED = onnx_builder.ARCHITECTURES
_OPTIMUM_TASK = "text-generation-with-past"


class _Architectures:
    """The model types this target takes: every decoder-only one optimum-onnx's registry exports for
    text generation with a cache. The registry loads (seconds) only when a model type is not one
    of the builder's."""

    def __contains__(self, model_type: object) -> bool:
        return model_type in GENAI_SUPPORTED or model_type in optimum_decoders()

    def __iter__(self) -> Iterator[str]:
        return iter(optimum_decoders())

    def __len__(self) -> int:
        return len(optimum_decoders())

    def __bool__(self) -> bool:
        return True


SUPPORTED = _Architectures()


@functools.cache
def optimum_decoders() -> tuple[str, ...]:
    """Model types optimum-onnx exports for text-generation-with-past, less the encoder-decoder ones
    (their decoder alone is not the model)."""
    from edgekit.environment import quiet_libraries

    quiet_libraries()  # torch's and torchao's import-time log lines stay off the terminal
    import optimum.exporters.onnx.model_configs  # noqa: F401  (fills the registry)
    from optimum.exporters.tasks import TasksManager
    from transformers import CONFIG_MAPPING

    names = TasksManager.get_supported_model_type_for_task(_OPTIMUM_TASK, exporter="onnx")
    return tuple(sorted(
        n for n in names if n not in CONFIG_MAPPING or not CONFIG_MAPPING[n]().is_encoder_decoder
    ))


MODEL_FILE = "model.onnx"
LOGITS_TO_KEEP = "logits_to_keep"
_EXTERNAL_DATA_ABOVE = 1_800_000_000  # protobuf's 2 GB limit, with margin


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    config = onnx_builder.load_config(source.path, source.trust_remote_code)
    exporter, reason = _exporter(source, recipe, config)
    model_file = folder / MODEL_FILE
    with stage(f"export ({exporter})"):
        if exporter == "genai":
            _genai_export(source, recipe, folder, config)
        else:
            _optimum_export(source, recipe, folder)
        release_heap()  # the exporter's PyTorch model and graph are gone, the heap they took is not
    with stage("logits_to_keep"):
        graph = _finish_graph(model_file, (source.model_type, config) if exporter == "genai" else None)
    quantization = None
    if recipe.scheme != "fp32":
        with stage(f"quantize {recipe.name}"):
            quantization = _quantize(model_file, recipe, source)
    limit = model_context(source.path)
    max_context = min(recipe.max_context or limit, limit)
    # shared: one buffer per layer that GroupQueryAttention updates in place (past and present bound
    # to it); concat: present = past + new, handed back as the next step's past
    shared = graph["fused_attention"]
    with stage("genai config"):
        onnx_genai.write_config(folder, source, config, graph["io"], model_file=MODEL_FILE,
                                max_context=max_context, shared=shared)
    return {
        "model_file": MODEL_FILE,
        "runtime": "onnxruntime",
        "exporter": exporter,
        "exporter_reason": reason,
        "kv_cache": "shared" if shared else "concat",
        "max_context": max_context,
        **({"quantization": quantization} if quantization else {}),
    }


def _exporter(source: ModelSource, recipe: Recipe, config) -> tuple[str, str]:
    """The exporter for this model and recipe, and why (recorded in the manifest)."""
    chosen = recipe.option("exporter")
    if chosen not in (None, "auto"):
        if chosen == "genai":
            if source.model_type not in GENAI_SUPPORTED or recipe.scheme not in _GENAI_PRECISION:
                raise EdgekitError(
                    f"--exporter genai takes recipes {', '.join(_GENAI_PRECISION)} of model types "
                    f"{', '.join(GENAI_SUPPORTED)}, not {recipe.name} of '{source.model_type}' (use --exporter optimum)"
                )
            if gaps := onnx_builder.gaps(source.model_type, config):
                raise EdgekitError(
                    f"--exporter genai: the builder does not reproduce {source.spec}'s {', '.join(gaps)} "
                    "(use --exporter optimum)"
                )
        return chosen, f"--exporter {chosen}"
    if recipe.scheme not in _GENAI_PRECISION:
        return "optimum", f"auto: the genai builder has no {recipe.name} CPU graph"
    if gaps := onnx_builder.gaps(source.model_type, config):
        return "optimum", f"auto: the genai builder does not reproduce {', '.join(gaps)}"
    return "genai", "auto: the genai builder reproduces it"


# recipe -> the builder's precision: its fp32 graph, which ``onnx_quant`` quantizes as it does optimum's.
# No fp16: 0.11.4's fp16 graph for the CPU does not run (a cast it inserts reuses a buffer of another shape).
_GENAI_PRECISION = {"fp32": "fp32", "int8": "fp32", "int4": "fp32"}


def _genai_export(source: ModelSource, recipe: Recipe, folder: Path, config) -> None:
    """ONNX Runtime GenAI's model builder, for the CPU execution provider (``onnx_builder.export``)."""
    import shutil

    options: dict = {"hf_token": "false", "hf_remote": source.trust_remote_code}
    onnx_builder.export(source, _GENAI_PRECISION[recipe.scheme], folder, config, options)
    for extra in (onnx_genai.CONFIG, "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        (folder / extra).unlink(missing_ok=True)  # ours come from the tokenizer and genai config stages
    for name in ("config.json", "generation_config.json"):  # as optimum's export has them
        if (source.path / name).is_file():
            shutil.copyfile(source.path / name, folder / name)
    if not (folder / MODEL_FILE).is_file():
        raise EdgekitError(f"ONNX export of {source.spec} (genai builder) produced no {MODEL_FILE}")


def _finish_graph(model_file: Path, builder: tuple | None = None) -> dict:
    """One pass over the exported graph (weights stay on disk): give it an int64 input
    ``logits_to_keep`` [1], so the head runs on the last that many positions only (a prefill needs
    one; scoring a text needs all, and 0 or any count >= length gives all), with an initializer of
    its name as its default, 0: a runtime that does not feed it (GenAI, optimum) gets every position,
    as it expects. For the builder's graph (``builder``: model type and config), mend what it does not
    reproduce (``onnx_builder.mend``). Returns what the export needs to know of it: ``fused_attention``
    (the builder's GroupQueryAttention) and its inputs and outputs (``onnx_genai.graph_io``)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_file), load_external_data=False)
    graph = model.graph
    if builder:
        onnx_builder.mend(graph, *builder)
    node = _output_head(graph)
    if node is None:
        raise EdgekitError(f"{model_file.name}: cannot find the output head feeding 'logits'")
    hidden = node.input[0]
    kept = f"{hidden}/{LOGITS_TO_KEEP}"
    graph.input.append(helper.make_tensor_value_info(LOGITS_TO_KEEP, TensorProto.INT64, [1]))
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], dtype=np.int64), LOGITS_TO_KEEP),  # the input's default: all
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), f"{kept}/end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{kept}/axis"),
    ])
    at = list(graph.node).index(node)
    graph.node.insert(at, helper.make_node("Neg", [LOGITS_TO_KEEP], [f"{kept}/start"], name=f"{kept}/Neg"))
    graph.node.insert(at + 1, helper.make_node(
        "Slice", [hidden, f"{kept}/start", f"{kept}/end", f"{kept}/axis"], [kept], name=f"{kept}/Slice"))
    node.input[0] = kept
    onnx.save_model(model, str(model_file))  # external data, if any, stays where it is
    return {"fused_attention": any(n.op_type == "GroupQueryAttention" for n in graph.node),
            "io": onnx_genai.graph_io(graph)}


# position-wise steps between the head's MatMul and the logits: casts, its bias, final soft-capping
_AFTER_HEAD = ("Cast", "Add", "Sub", "Mul", "Div", "Tanh")


def _output_head(graph):
    """The MatMul (or Gemm) computing the logits, found back from the output through position-wise
    steps whose other inputs are constants."""
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    producer = {out: node for node in graph.node for out in node.output}
    node = producer.get("logits")
    while node is not None and node.op_type in _AFTER_HEAD:
        flowing = [i for i in node.input if i and i not in constants]
        if len(flowing) != 1:
            return None
        node = producer.get(flowing[0])
    return node if node is not None and node.op_type in ("MatMul", "MatMulNBits", "Gemm") else None


def _optimum_export(source: ModelSource, recipe: Recipe, folder: Path) -> None:
    """optimum-onnx's export of the model as the parity reference loads it (``edgekit.core.model.load_model``:
    fp32, eager attention, which keeps what SDPA drops, such as Gemma 2's attention soft-capping)."""
    from optimum.exporters.onnx import onnx_export_from_model
    from optimum.utils import logging as optimum_logging

    from edgekit.core.model import load_model

    optimum_logging.set_verbosity_error()  # its root logger is set up (at WARNING) on first use, after ours

    try:
        model = load_model(source)
        model.config.use_cache = True
        onnx_export_from_model(model, folder, task=_OPTIMUM_TASK, do_validation=False)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise EdgekitError(f"ONNX export of {source.spec} failed: {str(e).strip().splitlines()[0]}") from None
    if not (folder / MODEL_FILE).is_file():
        raise EdgekitError(f"ONNX export of {source.spec} produced no {MODEL_FILE}")


def _quantize(model_file: Path, recipe: Recipe, source: ModelSource) -> dict | None:
    """The recipe's precision applied to the fp32 graph in place: fp16 by ONNX Runtime's converter,
    int8 and int4 by ``onnx_quant`` (what it did is returned for the manifest). One model at a time
    in memory: -mixN's PyTorch model is measured and let go before the graph is read."""
    import onnx

    if recipe.scheme not in ("fp16", "int8", "int4"):  # a recipe file names a scheme this module does not implement
        raise EdgekitError(f"onnx recipe '{recipe.name}' is not implemented")
    info = None
    if recipe.scheme == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(model_file)), keep_io_types=True, disable_shape_infer=True)
    else:
        from edgekit.targets import onnx_quant

        from edgekit.calibration import token_windows

        plan = onnx_quant.plan_for(recipe)
        # the calibration text, read once for what learns from it: -mixN's measurement, a calibrated method
        calibration = token_windows(source, recipe) if recipe.calibrated else None
        mixed = None
        if recipe.mixed:  # the layers most sensitive to the plan's bits, measured before any is rounded
            from dataclasses import replace

            from edgekit.targets import sensitivity

            layers, mixed = sensitivity.costliest_layers(source, calibration, recipe.mixed, plan.bits, plan.block_size)
            plan = replace(plan, keep_layers=layers)
            release_heap()
        model, relative = _read_graph(model_file)
        model, info = onnx_quant.quantize(model, plan, calibration if plan.algorithm in onnx_quant.CALIBRATED else None)
        _read_rest(model, model_file.parent, relative)
        if mixed:
            info["mixed"] = mixed
    _save(model, model_file)
    del model
    release_heap()  # for the stages after this one
    return info


def _read_graph(model_file: Path):
    """The graph with its weights left in their external data file (if it has one), each initializer's
    location made absolute: the quantizers read a weight from a mapping of the file that closes once
    it is quantized, so the float weights are never all in memory. Returns the model and {initializer:
    its relative location}."""
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    folder = model_file.parent.resolve()
    relative = {}
    for init, entry in _locations(model):
        relative[init.name] = entry.value
        entry.value = str(folder / entry.value)
    return model, relative


def _read_rest(model, folder: Path, relative: dict[str, str]) -> None:
    """Load into ``model`` the external data still referenced (the float initializers left: norms,
    biases), as ``onnx.load`` would have: the model then holds all its weights."""
    from onnx.external_data_helper import load_external_data_for_model

    for init, entry in _locations(model):
        entry.value = relative[init.name]
    load_external_data_for_model(model, str(folder))


def _locations(model):
    """(initializer, its external data's ``location`` entry) for each initializer kept in a data file."""
    import onnx

    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            yield from ((init, entry) for entry in init.external_data if entry.key == "location")


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
    """Graph inputs and outputs, op type counts (domain-qualified outside the default one), the
    initializers by stored type (a block-quantized weight as its real bit width, not its uint8 bytes)
    and the quantized layers by bits and block size."""
    import onnx
    from onnx import helper

    from edgekit.targets.weights import tally

    path = folder / runtime["model_file"]
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a missing, truncated or foreign file
        raise EdgekitError(f"cannot read {path}: {str(e).strip().splitlines()[0]}") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    ops: dict[str, int] = {}
    packed: dict[str, tuple] = {}  # initializer -> (bits, block size) its op reads it at
    layers: dict[tuple, list[str]] = {}  # (bits, block size) -> layer names
    for node in graph.node:
        name = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        ops[name] = ops.get(name, 0) + 1
        weight = _QUANTIZED_WEIGHT.get(node.op_type)
        if weight is not None and len(node.input) > weight and node.input[weight] in initializers:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            bits = int(attrs.get("bits", 8))
            packed[node.input[weight]] = (bits, attrs.get("block_size"))
            layers.setdefault((bits, attrs.get("block_size")), []).append(_layer_name(node))
    weights: dict[str, dict] = {}
    for init in graph.initializer:
        dtype = onnx.TensorProto.DataType.Name(init.data_type).lower()
        elements = 1
        for d in init.dims:
            elements *= d
        bits = 4 if dtype in ("int4", "uint4") else 8 * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
        if init.name in packed:  # n-bit values packed into bytes, in blocks with their own scales
            n, block = packed[init.name]
            elements, bits, dtype = elements * bits // n, n, f"int{n}" + (f" (blocks of {block})" if block else "")
        tally(weights, dtype, bits, elements)
    return {
        "inputs": [_value_info(v) for v in graph.input],
        "outputs": [_value_info(v) for v in graph.output],
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "weights": dict(sorted(weights.items(), key=lambda kv: -kv[1]["bytes"])),
        "quantized": [{"bits": bits, "block_size": block, "layers": names}
                      for (bits, block), names in sorted(layers.items(), key=lambda kv: -len(kv[1]))],
    }


# quantized ops -> the input that is their stored weight (its bit width in the node's ``bits``, 8 if none)
_QUANTIZED_WEIGHT = {"MatMulNBits": 1, "GatherBlockQuantized": 0, "MatMulInteger": 1, "DynamicQuantizeMatMul": 1}


def _layer_name(node) -> str:
    """``/model/layers.0/attn/qkv_proj/MatMul_Q4`` -> ``layers.0.attn.qkv_proj`` (the node's scope
    without the model prefix and the op's own names); the node's weight where it has no name."""
    import re

    parts = [p for p in node.name.strip("/").split("/") if p]
    parts = parts[1:] if parts[:1] == ["model"] else parts
    while parts and re.match(r"(MatMul|Gather|DynamicQuantize)", parts[-1]):
        parts.pop()
    return ".".join(parts) or node.input[_QUANTIZED_WEIGHT[node.op_type]]


def _value_info(v) -> dict:
    import onnx

    t = v.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return {"name": v.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(t.elem_type).lower()}
