"""ExecuTorch target: torch.export of a decoder with a static KV cache, lowered to XNNPACK.

The program follows ExecuTorch's LLM export conventions (what its ``export_llm`` writes and its
``TextLLMRunner`` reads): ``forward(tokens[1, n], input_pos[1]) -> logits[1, vocab]`` of the last
of the ``n`` tokens (``executorch_model.DecoderWithCache``), the cache in buffers, ExecuTorch's LLM
custom ops (``llama::update_cache``, ``llama::custom_sdpa``) when they are installed, and the
metadata methods the runner reads (``METADATA``). The sequence dimension is dynamic up to
``MAX_PREFILL`` tokens (``get_max_seq_len``), so a prompt is one call (longer ones are chunked by
the runner), not one call per token. ``fp16`` is float16 weights and compute (float32 logits out,
float32 KV cache); the quantized recipes are ``executorch_quant``'s.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.source import ModelSource
from edgekit.targets import Target, decoder_arch

SUPPORTED = tuple(decoder_arch.ARCHITECTURES)
TARGET = Target(
    exporter=__name__, backend="edgekit.runtime.executorch", toolchain=("executorch", "torchao"),
    runtime=("executorch",),
    arm64_wheels="ExecuTorch's Python runtime links libtorch, and PyPI's only aarch64 torch is a CUDA build of 430 MB",
)
MODEL_FILE = "model.pte"
DEFAULT_MAX_CONTEXT = 2048
MAX_PREFILL = 128  # tokens per call; the memory plan (and the logits buffer) is sized for this
SPILL_FOLDER = ".serialized-weights"  # in the staging folder until the .pte is written
# A tied head and embedding share one int8 table (executorch_quant's shared_table): XNNPACK keeps the
# head's weights as named data (keyed by their sha256) and the program's external constants are named
# data too, both resolved at load time from a data file: tagged alike, the two land in one .ptd whose
# store keeps identical bytes once. The runtime reads external constants only from a data file given
# beside the program (executorch 1.5's Method::parse_values), not from the .pte's own named data.
DATA_FILE = MODEL_FILE + ".ptd"  # ExecuTorch names the data file after its tag
HEAD, EMBEDDING_WEIGHT = "lm_head", "embed.weight"  # the head's module; the embedding's table


def refusal(config: dict) -> str | None:
    """Why the shared decoder cannot reproduce the model of ``config``, naming the missing feature."""
    return decoder_arch.refusal("executorch", config)


# the constant methods ExecuTorch's LLM runner reads (extension/llm/runner's constants.h), as export_llm names them
METADATA = ("get_max_seq_len", "get_max_context_len", "get_vocab_size", "get_bos_id", "get_eos_ids",
            "get_n_layers", "use_kv_cache", "use_sdpa_with_kv_cache", "enable_dynamic_shape")


def metadata(source: ModelSource, *, max_prefill: int, max_context: int, vocab_size: int, layers: int,
             custom_ops: bool) -> dict:
    """The program's metadata methods: the model's BOS and every stop id (``model_meta``), the sizes."""
    from edgekit import model_meta

    meta = model_meta.of(source)
    if not meta.eos_ids:
        raise EdgekitError(f"{source.spec} names no EOS token, which ExecuTorch's runner needs to stop")
    return {
        "get_max_seq_len": max_prefill,  # tokens per call: the runner cuts a longer prompt into calls
        "get_max_context_len": max_context,
        "get_vocab_size": vocab_size,
        "get_bos_id": meta.bos_id if meta.bos_id is not None else meta.eos_ids[0],
        "get_eos_ids": list(meta.eos_ids),
        "get_n_layers": layers,
        "use_kv_cache": True,
        "use_sdpa_with_kv_cache": custom_ops,
        "enable_dynamic_shape": True,  # a prompt of n tokens is one call of n, not n calls of one
    }


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    try:
        import torch
        from executorch.exir import to_edge_transform_and_lower  # noqa: F401
    except ImportError as e:
        raise EdgekitError(f"the executorch target needs ExecuTorch: pip install executorch==1.5.1 ({e})") from None
    from edgekit.targets import executorch_model as em
    from edgekit.targets import executorch_quant as eq
    from edgekit.core.model import load_model, model_context
    from edgekit.targets.memory import drop_file_pages, release_heap

    checkpoint = sorted(source.path.glob("*.safetensors"))

    def release_checkpoint():  # the float weights still view the mapped checkpoint: see memory.py
        drop_file_pages(checkpoint)

    limit = model_context(source.path)
    max_context = min(recipe.max_context or DEFAULT_MAX_CONTEXT, limit)
    custom = em.custom_ops_available()
    calibration = eq.calibration(source, recipe)  # -mixN's and -imatrix's text, read before the weights
    keep, mixed = (), None
    if recipe.mixed:  # -mixN: measured on the float model before the decoder loads (one model at a time)
        with stage("sensitivity"):
            keep, mixed = eq.kept_layers(source, recipe, calibration)
            release_heap()

    with stage("load"):
        model = load_model(source, torch.float16 if recipe.scheme == "fp16" else torch.float32)
        max_prefill = min(MAX_PREFILL, max_context)
        decoder = em.DecoderWithCache(model, source.model_type, max_context, custom_ops=custom).eval()
        constants = metadata(source, max_prefill=max_prefill, max_context=max_context,
                             vocab_size=decoder.lm_head.out_features, layers=len(decoder.layers), custom_ops=custom)
        del model
        gc.collect()
    quantization, importance, imatrix = None, None, None
    if recipe.method == "imatrix":  # the float decoder's inputs to each linear on the calibration text
        with stage("imatrix"):
            importance, imatrix = eq.importance(decoder, calibration)
    if recipe.scheme not in ("fp32", "fp16") or recipe.embedding_bits:
        with stage("quantize"):
            rotated = eq.rotate(decoder, recipe)
            quantization = eq.quantize(decoder, recipe, release=release_checkpoint, keep=keep, importance=importance)
            del importance
            if imatrix:
                quantization["calibration"] = imatrix
            if mixed:
                quantization["mixed"] = mixed
            if rotated:
                quantization["rotation"] = rotated
            release_heap()
    shared = (quantization or {}).get("shared_table")
    stored = eq.stored_weights(decoder)
    with stage("torch.export"):
        program = _torch_export(decoder, max_prefill)
        del decoder
        release_heap()
    spill = folder / SPILL_FOLDER
    spill.mkdir()
    with stage("to_edge + XNNPACK lower"):
        edge = _lower(program, dynamic_weights=recipe.scheme == "int8", after_each=release_checkpoint, spill=spill,
                      tagged=HEAD if shared else None, constants=constants)
        del program
        release_heap()
        delegation = _delegation(edge.exported_program().graph_module)
    with stage("to_executorch"):
        external = _constant_names(edge.exported_program(), lambda fqn: fqn == EMBEDDING_WEIGHT) if shared else ()
        et_program = _to_executorch(edge, after_each=release_checkpoint, spill=spill, external=external)
        del edge
        release_heap()
        release_checkpoint()
    with stage("save"):
        kernels = _kernel_libraries(et_program)
        with open(folder / MODEL_FILE, "wb") as f:
            et_program.write_to_file(f)
        if shared:
            et_program.write_tensor_data_to_file(str(folder))  # DATA_FILE
        del et_program
        gc.collect()
        shutil.rmtree(spill)
    return {
        "model_file": MODEL_FILE,
        "runtime": "executorch",
        "max_context": max_context,
        "max_prefill": max_prefill,
        "custom_ops": custom,
        "kernel_libraries": kernels,
        # forward's output: the logits of the last n - k + 2 of the n tokens (at most n), k = input_pos's
        # length (the runner's cache positions, one a token: the last two rows; edgekit's start alone: every row)
        "logits": "after_positions",
        **({"data_file": DATA_FILE} if shared else {}),
        "delegation": delegation,
        "weights": stored,  # what the program stores, by type (inspect's table: the file has no typed list)
        **({"quantization": quantization} if quantization else {}),  # export.py moves it into the recipe's record
    }


def _torch_export(decoder, max_prefill: int):
    import torch
    from torch.export import Dim, export

    n = min(4, max_prefill)  # example sizes other than 0/1 and unequal, so that no dimension is specialized or tied
    k = 2 if n > 2 else 1
    example = (torch.zeros((1, n), dtype=torch.long), torch.arange(k, dtype=torch.long))
    seq = Dim("seq", min=1, max=max_prefill)
    positions = Dim("positions", min=1, max=max_prefill)
    with torch.no_grad(), torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.MATH]):
        try:
            program = export(decoder, example, dynamic_shapes=({1: seq}, {0: positions}), strict=False)
        except Exception as e:
            raise EdgekitError(f"torch.export failed: {str(e).strip().splitlines()[0]}") from None
        return program  # to_edge_transform_and_lower decomposes (and unwraps torchao's tensors) itself


def _lower(program, dynamic_weights: bool, after_each: Callable[[], object], spill: Path, tagged: str | None = None,
           constants: dict | None = None):
    """``dynamic_weights``: float linears take their weights as inputs (weight-only int8 dequantizes
    them per call) instead of packing constants at load time. ``after_each()`` runs after each
    partition is serialized; the serialized weights wait in files of the ``spill`` folder.
    ``tagged``: the module whose constants' XNNPACK named data goes to the data file. ``constants``:
    methods that return a value (the metadata), beside ``forward``."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from edgekit.targets.executorch_lowering import lean_lowering

    class Partitioner(XnnpackPartitioner):
        def partition(self, exported_program):  # tagged here: the decompositions before it drop a tag set earlier
            if tagged:
                _tag_constants(exported_program, tagged)
            return super().partition(exported_program)

    try:
        with lean_lowering(after_each, spill):
            return to_edge_transform_and_lower(
                program,
                # one partitioner: whole layers per delegate call
                partitioner=[Partitioner(force_non_static_weights_for_f32_linear=dynamic_weights)],
                constant_methods=constants,
                compile_config=EdgeCompileConfig(_check_ir_validity=False),
            )
    except Exception as e:
        raise EdgekitError(f"lowering to XNNPACK failed: {str(e).strip().splitlines()[0]}") from None


def _constant_names(program, pick: Callable[[str], bool]) -> set[str]:
    """The placeholder names of an exported program's constants (parameters, buffers) whose fully
    qualified names ``pick`` selects."""
    sig = program.graph_signature
    found = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
             **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    return {name for name, fqn in found.items() if pick(fqn)}


def _tag_constants(program, module: str) -> None:
    """Tag the constants of ``module`` in an exported program for the data file: XNNPACK stores a
    tagged weight's named data under that tag (``delegate_constant_tag``). A torchao weight is
    unwrapped into several constants by then (``module.parametrizations.weight.original0``...)."""
    names = _constant_names(program, lambda fqn: fqn.startswith(module + "."))
    if not names:
        raise EdgekitError(f"the exported program has no constant of {module}")
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in names:
            node.meta.setdefault("custom", {})["delegate_constant_tag"] = MODEL_FILE


def _to_executorch(edge, after_each: Callable[[], object], spill: Path, external: set[str] | tuple = ()):
    """``after_each()`` runs after each constant the emitter copies (into a file of ``spill``).
    ``external``: the placeholders of constants the program reads from its data file (tagged alike)."""
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from executorch.exir import ExecutorchBackendConfig
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass

    from edgekit.targets.executorch_lowering import calls_any, lean_emission

    # a whole-program trace: only where an [add]mm is left outside the delegates to become a linear
    if calls_any(edge.exported_program().graph_module, ConvertToLinearPass.targets):
        edge = edge.transform([ConvertToLinearPass()])
    with lean_emission(after_each, spill):
        return edge.to_executorch(
            ExecutorchBackendConfig(
                extract_delegate_segments=True,
                do_quant_fusion_and_const_prop=True,
                memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
                sym_shape_eval_pass=ConstraintBasedSymShapeEvalPass(),
                **({"external_constants": lambda node: MODEL_FILE if node.name in external else None}
                   if external else {}),
            )
        )


def _kernel_libraries(et_program) -> list[str]:
    """The kernel libraries beyond the runtime's own that the program's operators come from."""
    ops = {op.name for plan in et_program.executorch_program.execution_plan for op in plan.operators}
    libraries = {"llama::": "custom_ops", "quantized_decomposed::": "quantized"}
    return sorted({lib for prefix, lib in libraries.items() if any(o.startswith(prefix) for o in ops)})


_NOT_OPS = ("getitem", "sym_size", "_assert", "sym_constrain", "_local_scalar_dense", "sym_")


def _delegation(graph_module) -> dict:
    """How many operator nodes XNNPACK took; the rest run as ExecuTorch kernels (counted by op)."""
    delegated, left = 0, {}
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module"):
            lowered = getattr(graph_module, node.target)
            delegated += sum(1 for n in lowered.original_module.graph.nodes if n.op == "call_function")
        elif node.op == "call_function" and "executorch_call_delegate" not in str(node.target):
            name = getattr(node.target, "__name__", str(node.target))  # e.g. aten.mean.dim
            if not any(s in name for s in _NOT_OPS):
                op = name.removeprefix("aten.").rsplit(".", 1)[0] if "." in name else name
                left[op] = left.get(op, 0) + 1
    total = delegated + sum(left.values())
    return {
        "delegated_nodes": delegated,
        "total_nodes": total,
        "share": round(delegated / total, 4) if total else 0.0,
        "not_delegated": dict(sorted(left.items(), key=lambda kv: -kv[1])),
    }


# ExecuTorch ScalarType codes -> names (c10's numbering)
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                 7: "float64", 11: "bool", 15: "bfloat16"}


def inspect(folder: Path, runtime: dict) -> dict:
    """The forward method's inputs and outputs from the program (dynamic sizes at their upper bound),
    its metadata methods' values; op counts and the delegated share from the export's record (the
    lowered graph is not in the file)."""
    from edgekit.runtime.executorch import program_metadata, program_method_meta

    path = folder / runtime["model_file"]
    try:
        meta = program_method_meta(path)
        constants = program_metadata(path, METADATA)
    except Exception as e:  # a missing, truncated or foreign file
        raise EdgekitError(f"cannot read {path}: {str(e).strip().splitlines()[0]}") from None
    delegation = runtime.get("delegation", {})
    ops = {"delegated to XNNPACK": delegation.get("delegated_nodes", 0), **delegation.get("not_delegated", {})}
    return {
        "inputs": [_tensor(name, meta.input_tensor_meta(i)) for i, name in enumerate(_input_names(meta.num_inputs()))],
        "outputs": [_tensor(f"output {i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())],
        "metadata": constants,  # the constant methods ExecuTorch's LLM runner reads
        "ops": ops,
        "delegation": delegation,
        **({"weights": runtime["weights"]} if _weights_table(runtime.get("weights")) else {}),
    }


def _weights_table(table) -> bool:
    """Whether the manifest's stored-weights record has the shape inspect tabulates (a hand-edited
    manifest may hold anything there)."""
    keys = ("bits", "tensors", "elements", "bytes")
    return isinstance(table, dict) and bool(table) and all(
        isinstance(w, dict) and all(isinstance(w.get(k), (int, float)) for k in keys) for w in table.values())


def _input_names(count: int) -> list[str]:
    """The program's inputs are positional: named here after the exported module's arguments."""
    names = ("tokens", "input_pos")
    return list(names[:count]) if count <= len(names) else [f"input {i}" for i in range(count)]


def _tensor(name: str, info) -> dict:
    return {"name": name, "shape": list(info.sizes()), "dtype": _SCALAR_TYPES.get(info.dtype(), str(info.dtype()))}


def standard_check(folder: Path, prompt: list[int], expected: list[int]) -> dict:
    """The artifact in ExecuTorch's own LLM runner (TextLLMRunner): see ``executorch_runner``."""
    from edgekit.targets.executorch_runner import standard_check as check

    return check(folder, prompt, expected)
