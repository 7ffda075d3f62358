"""Core ML target: an ML program (``.mlpackage``) with a stateful KV cache, converted by coremltools.

The HF model is wrapped by ``coreml_model.CoreMLDecoder`` (inputIds, causalMask) -> logits for every
position, traced with ``torch.jit.trace`` and converted for iOS 18 / macOS 15 (the first with
states): the caches become two float16 states (``keyCache``, ``valueCache``), the token window is
flexible (1..``MAX_PREFILL``), so a prompt is one call (longer ones are chunked by the runtime). The
names, shapes and user metadata are those of Apple's stateful LLM example, which Hugging Face's
swift-transformers loads (``LanguageModel.loadCompiled``); ``metadata`` gives the user metadata.
Weights are compressed after conversion by ``coremltools.optimize.coreml``:

- ``fp16`` / ``fp32``: compute precision (the cache is float16 either way: Core ML states are);
- ``int8``: linear symmetric weights, one scale per output channel;
- ``int4[-gN]``: linear symmetric weights, one scale per block of N input channels;
- ``pal4[-gN]`` / ``pal6[-gN]``: k-means palettes of 16 / 64 float16 values, one per group of N
  output channels.

Every weight of at least 2,048 elements is compressed (the linear layers, the head and the
embedding); norms and biases stay float16. Prediction needs macOS: on other systems the package is
checked as a spec (``inspect``) and parity is recorded as skipped.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
from collections import Counter
from pathlib import Path

from edgekit.errors import EdgekitError, stop_if_interrupted
from edgekit.recipes import Recipe
from edgekit.source import ModelSource
from edgekit.targets import Target, decoder_arch

SUPPORTED = tuple(decoder_arch.ARCHITECTURES)
TARGET = Target(
    exporter=__name__, backend="edgekit.runtime.coreml", toolchain=("coremltools",), runtime=("coremltools",),
    system="darwin", system_name="a Mac (macOS 15 or later)",
    elsewhere="to profile it on a Mac over ssh, fill in host and user in edgekit/profiles/apple-silicon-mac.yaml, "
              "then `edgekit profile {path} --device mac-m2`",
    arm64_wheels="Core ML runs on Apple devices only",
)
MODEL_FILE = "model.mlpackage"
DEFAULT_MAX_CONTEXT = 2048
MAX_PREFILL = 128  # tokens per call: the upper bound of the flexible token window
DEPLOYMENT_TARGET = "iOS18"  # = macOS15: stateful models
_PALETTE_BITS = {"pal4": 4, "pal6": 6}


def refusal(config: dict) -> str | None:
    """Why the shared decoder cannot reproduce the model of ``config``, naming the missing feature."""
    return decoder_arch.refusal("coreml", config)


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    ct = _coremltools()
    import numpy as np
    import torch

    from edgekit.targets.coreml_model import CoreMLDecoder
    from edgekit.core.model import load_model, model_context

    max_context = min(recipe.max_context or DEFAULT_MAX_CONTEXT, model_context(source.path))
    with stage("load"):
        model = load_model(source, torch.float32)
        max_prefill = min(MAX_PREFILL, max_context)
        decoder = CoreMLDecoder(model, source.model_type, max_context).eval()
        del model
    with stage("torch.jit.trace"):
        n = min(4, max_prefill)
        # unequal sizes, a past of 1: neither the tokens' count nor the position is taken for a constant
        example = (torch.zeros((1, n), dtype=torch.int32), torch.zeros((1, 1, n, n + 1), dtype=torch.float16))
        with torch.no_grad():
            traced = torch.jit.trace(decoder, example, check_trace=False)
        cache_shape = tuple(decoder.keyCache.shape)
        vocab_size = decoder.lm_head.out_features
        del decoder
        gc.collect()
    precision = "fp32" if recipe.scheme == "fp32" else "fp16"
    query = ct.RangeDim(1, max_prefill, default=1)  # one dimension, shared by the tokens and the mask's rows
    with stage("convert"), _no_progress_bars():
        try:
            mlmodel = ct.convert(
                traced,
                inputs=[
                    ct.TensorType("inputIds", shape=(1, query), dtype=np.int32),
                    ct.TensorType("causalMask", shape=(1, 1, query, ct.RangeDim(1, max_context, default=1)),
                                  dtype=np.float16),
                ],
                outputs=[ct.TensorType("logits", dtype=np.float32)],
                states=[
                    ct.StateType(ct.TensorType(shape=cache_shape, dtype=np.float16), name=name)
                    for name in ("keyCache", "valueCache")
                ],
                minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
                compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                convert_to="mlprogram",
                skip_model_load=True,
            )
        except Exception as e:
            raise EdgekitError(f"Core ML conversion of {source.spec} failed: "
                               f"{str(e).strip().splitlines()[0]}") from None
        del traced
    if recipe.scheme not in ("fp16", "fp32"):
        with stage(f"compress {recipe.name}"), _no_progress_bars():
            mlmodel = _compress(mlmodel, recipe)
    with stage("save"):
        _describe(mlmodel, source, recipe, max_context, precision)
        mlmodel.save(str(folder / MODEL_FILE))
        del mlmodel
        gc.collect()
    return {
        "model_file": MODEL_FILE,
        "runtime": "coreml",
        "max_context": max_context,
        "max_prefill": max_prefill,
        "vocab_size": vocab_size,
        "deployment_target": DEPLOYMENT_TARGET,
        "compute_precision": precision,
        "compute_units": recipe.option("compute_units"),  # Core ML's choice at load time (runtime/coreml.py)
        **inspect(folder, {"model_file": MODEL_FILE}),
    }


def _describe(mlmodel, source: ModelSource, recipe: Recipe, max_context: int, precision: str) -> None:
    """The package's description and user metadata: swift-transformers reads ``co.huggingface.exporters.*``
    (``name`` is the hub id it fetches the tokenizer's files from where the app gives no tokenizer);
    the ``edgekit.*`` keys carry the stop ids and the context for an app that reads the package alone."""
    from edgekit import model_meta

    meta = model_meta.of(source)
    mlmodel.short_description = f"{meta.name}: {recipe.name} ({precision}) by edgekit, stateful KV cache"
    mlmodel.author = "edgekit"
    if meta.license:
        mlmodel.license = " ".join(x for x in (meta.license_name or meta.license, meta.license_link) if x)
    mlmodel.input_description["inputIds"] = "token ids to append, [1, n]"
    mlmodel.input_description["causalMask"] = ("[1, 1, n, past + n]: its width gives the position (past); "
                                                "its values are not read (the model masks causally itself)")
    mlmodel.output_description["logits"] = "float32 logits of every appended token, [1, n, vocab]"
    mlmodel.user_defined_metadata.update(metadata(meta, source, recipe, max_context, precision))


def metadata(meta, source: ModelSource, recipe: Recipe, max_context: int, precision: str) -> dict[str, str]:
    """The user metadata of the package (strings only, as Core ML keeps them)."""
    return {
        "co.huggingface.exporters.name": meta.base_model or meta.name,
        "co.huggingface.exporters.task": "text-generation",
        "co.huggingface.exporters.architecture": source.model_type,
        "co.huggingface.exporters.framework": "pytorch",
        "co.huggingface.exporters.precision": precision,
        "edgekit.recipe": recipe.name,
        "edgekit.max_context": str(max_context),
        **({"edgekit.bos_token_id": str(meta.bos_id)} if meta.bos_id is not None else {}),
        "edgekit.eos_token_ids": ",".join(str(i) for i in meta.eos_ids),
    }


def _coremltools():
    """coremltools, imported quietly (on Linux it reports its missing native runtime at import)."""
    from edgekit.environment import quiet_libraries

    quiet_libraries()
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        import coremltools
    except ImportError as e:
        raise EdgekitError(f"the coreml target needs coremltools: pip install coremltools==9.0 ({e})") from None
    stop_if_interrupted()  # its import swallows a Ctrl-C (bare excepts around its optional imports)
    return coremltools


def _no_progress_bars():
    """coremltools draws tqdm bars on stderr for every stage; its errors come as exceptions."""
    return contextlib.redirect_stderr(io.StringIO())


def _compress(mlmodel, recipe: Recipe):
    import coremltools.optimize.coreml as cto

    if recipe.scheme == "int8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
        compress = cto.linear_quantize_weights
    elif recipe.scheme == "int4":
        op = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int4", granularity="per_block", block_size=recipe.group_size
        )
        compress = cto.linear_quantize_weights
    elif recipe.scheme in _PALETTE_BITS:
        op = cto.OpPalettizerConfig(
            mode="kmeans", nbits=_PALETTE_BITS[recipe.scheme], granularity="per_grouped_channel",
            group_size=recipe.group_size,
        )
        compress = cto.palettize_weights
    else:  # a recipe file names a scheme this module does not implement
        raise EdgekitError(f"coreml recipe '{recipe.name}' is not implemented")
    try:
        # the weights of linear layers and embeddings; constant tables (rotary, positions) stay float16
        return compress(mlmodel, cto.OptimizationConfig(op_type_configs={"linear": op, "gather": op}))
    except Exception as e:
        raise EdgekitError(f"Core ML {recipe.name} compression failed: {str(e).strip().splitlines()[0]}") from None


# MIL value types of constant tensors, as the spec names them, and their width in bits
_BITS = {"FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "INT16": 16, "UINT16": 16, "INT8": 8, "UINT8": 8,
         "INT4": 4, "UINT4": 4, "UINT6": 6, "UINT3": 3, "UINT2": 2, "UINT1": 1, "BOOL": 8}


def inspect(folder: Path, runtime: dict) -> dict:
    """Inputs, outputs and states, op counts of the ML program's main function, and the constant
    tensors stored in the weight file by type (elements, bytes): read from the spec, no Core ML needed."""
    _coremltools()
    from coremltools.models.utils import load_spec

    package = folder / runtime["model_file"]
    if not package.exists():
        raise EdgekitError(f"{folder} has no {runtime['model_file']}")
    try:
        spec = load_spec(str(package))
    except Exception as e:
        raise EdgekitError(f"cannot read {package}: {str(e).strip().splitlines()[0]}") from None
    desc = spec.description
    ops: Counter = Counter()
    weights: dict[str, dict] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            _walk(block, ops, weights)
    return {
        "inputs": [_feature(f) for f in desc.input],
        "outputs": [_feature(f) for f in desc.output],
        "states": [_feature(f) for f in desc.state],
        **({"metadata": dict(desc.metadata.userDefined)} if desc.metadata.userDefined else {}),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "weights": dict(sorted(weights.items(), key=lambda kv: -kv[1]["bytes"])),
    }


def _walk(block, ops: Counter, weights: dict) -> None:
    for op in block.operations:
        ops[op.type] += 1
        for nested in op.blocks:
            _walk(nested, ops, weights)
        values = [op.attributes["val"]] if op.type == "const" else []
        values += [arg.value for argument in op.inputs.values() for arg in argument.arguments if arg.HasField("value")]
        for value in values:
            if value.HasField("blobFileValue"):  # small constants live in the program itself
                _count(value.type.tensorType, weights)


def _count(tensor, weights: dict) -> None:
    from coremltools.proto import MIL_pb2

    from edgekit.targets.weights import tally

    dtype = MIL_pb2.DataType.Name(tensor.dataType)
    count = 1
    for d in tensor.dimensions:
        count *= d.constant.size
    tally(weights, dtype.lower(), _BITS.get(dtype), count)


def _feature(f) -> dict:
    """A spec feature (input, output or state) as name, shape (ranges as [lo, hi]) and dtype."""
    kind = f.type.WhichOneof("Type")
    array = f.type.stateType.arrayType if kind == "stateType" else f.type.multiArrayType
    shape: list = list(array.shape)
    ranges = array.shapeRange.sizeRanges
    if ranges:
        shape = [r.lowerBound if r.lowerBound == r.upperBound else [r.lowerBound, r.upperBound] for r in ranges]
    dtype = type(array).ArrayDataType.Name(array.dataType).lower()
    return {"name": f.name, "shape": shape, "dtype": dtype}
