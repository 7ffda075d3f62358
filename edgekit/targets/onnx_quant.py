"""ONNX weight quantization of an exported float32 decoder graph (either exporter's), with ONNX
Runtime's own quantizers: MatMulNBits for the linear layers and the output head, GatherBlockQuantized
for the embedding table.

A recipe becomes a ``Plan``: the bits and block size of the decoder's linear layers, how their
weights are rounded (``rtn``: ONNX Runtime's block quantizer, whose symmetric scale is the block's
signed extreme over -2^(bits-1), as llama.cpp's q4_0 and q8_0 have it; ``gptq``: ONNX Runtime's
GPTQ, learning from a calibration text), the precision the matmuls compute in (``accuracy_level``),
and the output head's and the embedding's precision (8 bits, as llama.cpp keeps them; a tied
embedding is gathered from the head's own table). The measurements behind these choices
(SmolLM2-135M) are in the README.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.targets.memory import release_heap

ALGORITHMS = ("rtn", "gptq", "imatrix")
CALIBRATED = ("gptq", "imatrix")  # the algorithms that learn from a calibration text
_KEPT = "/logits_to_keep"  # suffix of the head's input (the target's logits_to_keep slice)


@dataclass(frozen=True)
class Plan:
    """How an fp32 graph's weights are quantized."""

    bits: int  # the decoder's linear layers: 4 or 8
    block_size: int = 32  # weights per scale, along the input dimension
    symmetric: bool = True  # False: a zero point per block too
    # MatMulNBits' compute: 4 = int8, the activations quantized per block (the fast kernels); 0 =
    # float: ONNX Runtime 1.31 on x86 computes 4-bit weights 2-4x slower per matmul that way, and
    # 8-bit weights (or float zero points) by dequantizing the whole weight at every call, ~70x
    accuracy_level: int = 4
    algorithm: str = "rtn"
    head_bits: int | None = 8  # the output head; None: float
    embedding_bits: int | None = 8  # the embedding table; None: float
    table_block: int = 32  # block size of the 8-bit head, the kept layers and the embedding table
    keep_8bit: tuple[str, ...] = ()  # MatMul nodes kept at 8 bits (mixed precision)
    keep_layers: tuple[int, ...] = ()  # decoder layers whose MatMuls are kept at 8 bits (-mixN)

    def as_dict(self) -> dict:
        return {
            "bits": self.bits, "block_size": self.block_size, "symmetric": self.symmetric,
            "accuracy_level": self.accuracy_level, "algorithm": self.algorithm,
            "head_bits": self.head_bits, "embedding_bits": self.embedding_bits, "table_block": self.table_block,
            "keep_8bit": list(self.keep_8bit), "keep_layers": list(self.keep_layers),
        }


def plan_for(recipe) -> Plan:
    """The plan of an ONNX recipe (int8, int4[-gN][-ALGORITHM])."""
    if recipe.scheme == "int8":
        # the head (and tied embedding) in blocks of 16: on SmolLM2-135M dppl +0.74 % against +1.20 % in
        # blocks of 32 (llama.cpp q8_0's), for 3.5 MB; the body's blocks of 16 gain nothing more
        return Plan(bits=8, block_size=recipe.group_size or 32, table_block=16)
    if recipe.scheme == "int4":
        algorithm = recipe.method or "rtn"
        # the 8-bit head and embedding in blocks of 64 (8.5 bits a weight with a float32 scale, as
        # q8_0's 32 with a float16 one): no measurable loss against 32 on SmolLM2-135M, 1.8 MB less
        return Plan(bits=4, block_size=recipe.group_size, algorithm=algorithm, symmetric=algorithm != "gptq",
                    table_block=64)
    raise EdgekitError(f"onnx recipe '{recipe.name}' is not a weight quantization")


def quantize(model, plan: Plan, calibration: tuple[list[list[int]], dict] | None = None):
    """Quantize ``model`` (an fp32 ``onnx.ModelProto``, its weights loaded or in external data files
    at absolute locations, read one at a time: ``edgekit.targets.onnx._read_graph``) as ``plan`` says;
    ``calibration``: token sequences for a calibrated algorithm, with their record. Returns the quantized model and what
    the manifest records of it (the plan, how the head and embedding are stored, the calibration
    tokens, seconds)."""
    if plan.algorithm not in ALGORITHMS:
        raise EdgekitError(f"unknown quantization algorithm '{plan.algorithm}'; choose one of {', '.join(ALGORITHMS)}")
    if plan.algorithm in CALIBRATED and not calibration:
        raise EdgekitError(f"{plan.algorithm} needs a calibration text")
    started = time.perf_counter()
    sequences, calibration_info = calibration if calibration else (None, None)
    graph = model.graph
    _name_nodes(graph)
    folded = _fold_weight_transposes(model)
    inits = {i.name: i for i in graph.initializer}
    head = next((n for n in graph.node if n.op_type == "MatMul" and n.input[0].endswith(_KEPT) and n.input[1] in inits),
                None)
    gather = _embedding_gather(graph, inits)
    linear = [n.name for n in graph.node if n.op_type == "MatMul" and _is_2d(inits.get(n.input[1])) and n is not head]
    layers = tuple(f"/layers.{i}/" for i in plan.keep_layers)  # both exporters name nodes /model/layers.N/...
    keep = [n for n in linear if n in plan.keep_8bit or any(mark in n for mark in layers)]
    head_output = head.output[0] if head is not None else None

    head_name, head_weight = (head.name, head.input[1]) if head is not None else (None, None)
    gather_name = gather.name if gather is not None else None
    tied = (head is not None and gather is not None
            and folded.get(head_weight, head_weight) == _table_source(graph, gather))
    hidden = (inits[head_weight].dims[0] if head is not None
              else _table_shape(graph, gather)[1] if gather is not None else 0)
    # the tables' blocks must split the hidden size to be gathered by row: the plan's, else smaller
    table_block = next((b for b in (plan.table_block, 32, 16) if hidden % b == 0), plan.table_block)

    # the head and the kept layers first: the body's algorithm then sees only its own MatMuls (GPTQ's
    # path in ONNX Runtime takes every MatMul with a constant weight, whatever is excluded)
    if keep or (head_name and plan.head_bits == 8):
        eight = keep + ([head_name] if head_name and plan.head_bits == 8 else [])
        model = _matmuls(model, eight, plan, 8, table_block, "rtn")
    if head_name and plan.head_bits == 4:
        model = _matmuls(model, [head_name], plan, 4, plan.block_size, "rtn")
    body = [n for n in linear if n not in keep]
    model = _matmuls(model, body, plan, plan.bits, plan.block_size, plan.algorithm, sequences)
    graph = model.graph

    embedding = "float"
    if gather_name and plan.embedding_bits:
        gather = next(n for n in graph.node if n.name == gather_name)
        head_q = next((n for n in graph.node if head_output in n.output), None) if head_name else None
        if (tied and head_q is not None and head_q.op_type == "MatMulNBits" and len(head_q.input) == 3
                and _attribute(head_q, "bits") == plan.embedding_bits
                and _attribute(head_q, "block_size") == table_block
                and hidden % table_block == 0):
            _gather_from_head(graph, gather, head_q, plan.embedding_bits, table_block)
            embedding = f"int{plan.embedding_bits}, the head's table"
        elif hidden % table_block == 0:
            _gather_quantized(graph, gather, plan.embedding_bits, table_block)
            embedding = f"int{plan.embedding_bits}"
    _drop_unused_initializers(graph)
    info = {
        **plan.as_dict(),
        "table_block": table_block,
        "head": f"int{plan.head_bits}" if head_name and plan.head_bits else "float",
        "embedding": embedding,
        "quantize_s": round(time.perf_counter() - started, 2),
    }
    if calibration_info:
        info["calibration"] = calibration_info
    return model, info


# ---------------------------------------------------------------- graph helpers


def _name_nodes(graph) -> None:
    """Give every node a unique name (the quantizer selects nodes by name)."""
    seen = set()
    for i, node in enumerate(graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def _attribute(node, name: str):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def _is_2d(init) -> bool:
    return init is not None and len(init.dims) == 2


def _fold_weight_transposes(model) -> dict[str, str]:
    """Replace Transpose(initializer) feeding MatMuls with the transposed initializer; returns
    {new initializer: the one it transposes}.

    A tied output head is exported (by optimum) as MatMul(x, Transpose(embedding)); MatMulNBits
    quantizes only MatMuls with a constant weight, so without this the head stays float32.
    """
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    folded = {}
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        if not all(c.op_type == "MatMul" and c.input[1] == node.output[0] for c in consumers.get(node.output[0], [])):
            continue
        weight = _array(inits[node.input[0]])
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.transpose(perm)),
                                                               name=node.output[0]))
        model.graph.node.remove(node)
        folded[node.output[0]] = node.input[0]
    return folded


def _array(init) -> np.ndarray:
    """An initializer's values; one whose data is in an external file (the target reads the graph
    without its weights, their locations made absolute) is read from a mapping of the file that
    closes with it, as ONNX Runtime's block quantizer reads its weights (``onnx_ir``)."""
    from onnx import TensorProto, numpy_helper

    if init.data_location != TensorProto.EXTERNAL:
        return numpy_helper.to_array(init)
    import onnx_ir as ir

    return np.array(ir.from_proto(init).numpy())


def _producer(graph, name: str):
    return next((n for n in graph.node if name in n.output), None)


def _embedding_gather(graph, inits):
    """The Gather of the token ids from a constant table (or from a transposed constant: the genai
    builder's tied embedding reads the head's [hidden, vocab] weight through a Transpose)."""
    for node in graph.node:
        if node.op_type != "Gather" or node.input[1] != "input_ids":
            continue
        if node.input[0] in inits:
            return node
        src = _producer(graph, node.input[0])
        if src is not None and src.op_type == "Transpose" and src.input[0] in inits:
            return node
    return None


def _table_source(graph, gather) -> str:
    """The initializer an embedding Gather reads, through its Transpose if it has one."""
    src = _producer(graph, gather.input[0])
    return src.input[0] if src is not None and src.op_type == "Transpose" else gather.input[0]


def _table(graph, gather) -> np.ndarray:
    """The embedding table as [hidden, vocab] (MatMul's weight layout, which the block quantizer takes)."""
    init = next(i for i in graph.initializer if i.name == _table_source(graph, gather))
    array = _array(init)
    transposed = _producer(graph, gather.input[0]) is not None
    return np.ascontiguousarray(array if transposed else array.T)


def _table_shape(graph, gather) -> tuple[int, int]:
    """(vocab, hidden) of the embedding table."""
    init = next(i for i in graph.initializer if i.name == _table_source(graph, gather))
    transposed = _producer(graph, gather.input[0]) is not None
    rows, cols = init.dims
    return (cols, rows) if transposed else (rows, cols)


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [i for i in graph.initializer if i.name not in used]
    for init in unused:
        graph.initializer.remove(init)


# ---------------------------------------------------------------- linear layers


def _matmuls(model, names: list[str], plan: Plan, bits: int, block: int, algorithm: str, calibration=None):
    """Quantize the MatMuls ``names`` (only them) to ``bits`` in blocks of ``block`` with ``algorithm``;
    returns the model."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    if not names:
        return model
    wanted = set(names)
    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in wanted]
    symmetric = plan.symmetric or bits == 8
    if algorithm == "gptq":
        return _gptq(model, names, block, plan.accuracy_level, calibration)
    if algorithm == "imatrix":
        return _imatrix(model, names, block, plan.accuracy_level, calibration)
    config = DefaultWeightOnlyQuantConfig(
        block_size=block, is_symmetric=symmetric, accuracy_level=plan.accuracy_level or None, bits=bits,
        op_types_to_quantize=("MatMul",),
    )
    q = MatMulNBitsQuantizer(
        model, bits=bits, block_size=block, is_symmetric=symmetric, accuracy_level=plan.accuracy_level or None,
        nodes_to_exclude=others, algo_config=config,
    )
    q.process()
    return q.model.model


def _gptq(model, names: list[str], block: int, accuracy_level: int, sequences: list[list[int]]):
    """GPTQ on the MatMuls ``names``, asymmetric: ONNX Runtime's GPTQ (from Intel Neural Compressor:
    ``weight_only.gptq`` rounds a weight row by row against the Hessian of its input, then
    ``quant_tensor`` and ``make_matmul_weight_only_node`` pack it as MatMulNBits), driven here rather
    than by ``MatMulNBitsQuantizer``, whose GPTQ path (ONNX Runtime 1.31.1) has three faults:

    - ``gptq`` transposes its Cholesky factor of H^-1 to the upper one, then reads the factor's
      column below the diagonal (all zeros), so no rounding error is ever carried to the weights
      still to round: its result is round-to-nearest's, to the last bit. It runs here with a numpy
      whose ``cholesky`` returns the upper factor, which its transposition turns into the lower one
      it reads (``_LOWER_FACTOR_NUMPY``): on SmolLM2-135M that cuts each layer's output error 2-5x.
    - its symmetric scheme packs the result on another grid than it rounded to (2*max|w|/15,
      recomputed from the rounded weights), which adds back most of the error; asymmetric packs
      on GPTQ's grid (up to groups whose rounded weights no longer reach both ends of it).
    - it runs the whole model once per layer input and calibration sequence (121 times the work of
      one pass on a 30-layer model); the Hessians here come from one pass per sequence.
    """
    from onnxruntime.quantization.neural_compressor import weight_only as inc

    graph = model.graph
    wanted = set(names)
    nodes = [n for n in graph.node if n.name in wanted]
    hessians, rows = _input_sums(model, nodes, sequences, lambda x: x.T @ x)
    gptq = _gptq_rounding()
    inits = {i.name: i for i in graph.initializer}
    for node in nodes:
        weight = _array(inits[node.input[1]]).astype(np.float32)
        k = weight.shape[0]
        blocks = (k + block - 1) // block
        rounded = gptq(
            weight.copy(), hessians[node.input[0]] * (2.0 / rows), num_bits=4, group_size=block,
            scheme="asym", blocksize=block, percdamp=0.01, actorder=False, mse=False, perchannel=True,
        )
        q, scale, zero = inc.quant_tensor(inc.pad_tensor(rounded, block, blocks).T, 4, block, "asym", "uint")
        new, new_inits = inc.make_matmul_weight_only_node(
            node, weight.shape, 4, block, blocks, q.astype("uint8"), scale.astype(np.float32), zero,
            accuracy_level=accuracy_level,
        )
        _replace_node(graph, node, new, new_inits)
    return model


def _replace_node(graph, node, new, new_inits) -> None:
    """``new`` (with its initializers) where ``node`` was, in the same place of the graph's order."""
    at = list(graph.node).index(node)
    graph.node.remove(node)
    graph.node.insert(at, new)
    graph.initializer.extend(new_inits)


def _input_sums(model, nodes, sequences: list[list[int]], stat) -> tuple[dict[str, np.ndarray], int]:
    """``stat`` of each distinct input of the MatMuls ``nodes`` (a [tokens, K] float64 array), summed
    over the calibration sequences, and the number of tokens read (GPTQ's Hessians, the imatrix's
    mean squares)."""
    sums: dict[str, np.ndarray] = {}
    for name, x in _matmul_inputs(model, nodes, sequences):
        sums[name] = sums.get(name, 0.0) + stat(x.astype(np.float64))
    return sums, sum(len(ids) for ids in sequences)


def _matmul_inputs(model, nodes, sequences: list[list[int]]):
    """The inputs of the MatMuls ``nodes`` while the float graph reads each calibration sequence, one
    pass per sequence: yields (input name, [tokens, K] float32) for each sequence and distinct input."""
    from onnx import helper

    graph = model.graph
    inputs = sorted({n.input[0] for n in nodes})
    for name in inputs:
        graph.output.append(helper.make_empty_tensor_value_info(name))
    try:
        session = _session(model)
    finally:
        del graph.output[len(graph.output) - len(inputs):]
    for ids in sequences:
        for name, x in zip(inputs, session.run(inputs, _feed(model, ids))):
            yield name, x.reshape(-1, x.shape[-1])
    del session
    release_heap()


_EXTERNAL_ABOVE = 1024  # bytes: larger initializers go to the scratch file (onnx's own threshold)


def _session(model):
    """An ONNX Runtime session of ``model`` (weights loaded), read from a scratch copy on disk whose
    weights are in an external data file: the same graph as from its serialized bytes, without the
    bytes (a second copy of every weight) beside the model and the session's own."""
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgekit-calibration-") as scratch:
        path = Path(scratch) / "model.onnx"
        _save_weights_apart(model, path)
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _save_weights_apart(model, path) -> None:
    """Write ``model`` to ``path`` with its raw initializers over ``_EXTERNAL_ABOVE`` bytes in
    ``path``.data, one at a time, leaving ``model`` as it is (``onnx.save_model``'s external data
    moves them out of the model)."""
    import onnx

    light = onnx.ModelProto()
    _copy_fields(model, light, skip=("graph",))
    _copy_fields(model.graph, light.graph, skip=("initializer",))
    data = path.with_name(path.name + ".data")
    with open(data, "wb") as f:
        for init in model.graph.initializer:
            external = init.data_location == onnx.TensorProto.EXTERNAL
            raw = _array(init).tobytes() if external else init.raw_data if init.HasField("raw_data") else b""
            if not external and len(raw) <= _EXTERNAL_ABOVE:
                light.graph.initializer.append(init)
                continue
            out = light.graph.initializer.add()
            _copy_fields(init, out, skip=("raw_data", "data_location", "external_data"))
            offset = f.tell() + -f.tell() % 4096  # page-aligned
            f.seek(offset)
            length = f.write(raw)
            del raw
            out.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(length))):
                out.external_data.add(key=key, value=value)
    onnx.save_model(light, str(path))


def _copy_fields(source, target, skip: tuple[str, ...]) -> None:
    """Copy the set fields of protobuf message ``source`` into ``target``, but those in ``skip``."""
    for field, value in source.ListFields():
        if field.name in skip:
            continue
        repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; before it, its label
        if repeated if repeated is not None else field.label == field.LABEL_REPEATED:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _imatrix(model, names: list[str], block: int, accuracy_level: int, sequences: list[list[int]]):
    """llama.cpp's Q4_0 rounding weighted by an importance matrix, on the MatMuls ``names``: the mean
    square of each input column over the calibration text (what ``llama-imatrix`` collects) goes to
    llama.cpp's own quantizer (``ggml_blocks``), whose Q4_0 blocks are symmetric MatMulNBits blocks
    of 32 as they are (float16 scales widened to the graph's float32); other block sizes get the same
    importance-weighted scale search (``ggml_blocks.q4_weighted``) with float32 scales."""
    from onnxruntime.quantization.neural_compressor import weight_only as inc

    from edgekit.targets import ggml_blocks

    graph = model.graph
    wanted = set(names)
    nodes = [n for n in graph.node if n.name in wanted]
    inits = {i.name: i for i in graph.initializer}
    for node in nodes:  # before the calibration pass, which takes minutes
        if inits[node.input[1]].dims[0] % block:
            raise EdgekitError(f"-imatrix rounds whole blocks: {node.name}'s {inits[node.input[1]].dims[0]} inputs "
                               f"are not a multiple of {block}")
    squares, rows = _input_sums(model, nodes, sequences, lambda x: (x * x).sum(0))
    for node in nodes:
        weight = _array(inits[node.input[1]]).astype(np.float32)  # [K, N]
        k, n = weight.shape
        values, scales = ggml_blocks.q4_weighted(weight.T, (squares[node.input[0]] / rows).astype(np.float32), block)
        new, new_inits = inc.make_matmul_weight_only_node(
            node, weight.shape, 4, block, k // block, values.reshape(n * (k // block), block),
            scales.astype(np.float32).reshape(-1), None, accuracy_level=accuracy_level,
        )
        _replace_node(graph, node, new, new_inits)
    return model


class _Linalg:
    """numpy.linalg whose ``cholesky`` returns the upper factor (see ``_gptq``)."""

    def __getattr__(self, name):
        return getattr(np.linalg, name)

    @staticmethod
    def cholesky(a):
        return np.linalg.cholesky(a).T


class _Numpy:
    linalg = _Linalg()

    def __getattr__(self, name):
        return getattr(np, name)


_LOWER_FACTOR_NUMPY = _Numpy()


def _gptq_rounding():
    """ONNX Runtime's ``weight_only.gptq`` reading the lower Cholesky factor (see ``_gptq``)."""
    from onnxruntime.quantization.neural_compressor import weight_only as inc

    return types.FunctionType(inc.gptq.__code__, {**inc.gptq.__globals__, "np": _LOWER_FACTOR_NUMPY}, "gptq",
                              inc.gptq.__defaults__)


def _feed(model, ids: list[int]) -> dict:
    from onnx import helper

    n = len(ids)
    feed = {}
    for value in model.graph.input:
        name = value.name
        if name == "input_ids":
            feed[name] = np.asarray([ids], dtype=np.int64)
        elif name == "attention_mask":
            feed[name] = np.ones((1, n), dtype=np.int64)
        elif name == "position_ids":
            feed[name] = np.arange(n, dtype=np.int64)[None, :]
        elif name == "logits_to_keep":
            feed[name] = np.array([1], dtype=np.int64)
        elif name.startswith("past_key_values."):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
            feed[name] = np.zeros((1, dims[1], 0, dims[3]), dtype=dtype)
        else:
            raise EdgekitError(f"calibration cannot feed the graph's input '{name}'")
    return feed


# ---------------------------------------------------------------- embedding


def _gather_from_head(graph, gather, head_q, bits: int, block: int) -> None:
    """Replace the embedding Gather with a GatherBlockQuantized of the (tied) head's quantized table:
    MatMulNBits holds it as [vocab, blocks, bytes per block] with scales per (vocab, block), the
    layout GatherBlockQuantized reads row by row (symmetric: no zero points)."""
    from onnx import helper, numpy_helper

    data = next(i for i in graph.initializer if i.name == head_q.input[1])
    scales = next(i for i in graph.initializer if i.name == head_q.input[2])
    vocab, blocks, blob = data.dims
    base = gather.name
    shape = numpy_helper.from_array(np.array([vocab, blocks * blob], dtype=np.int64), f"{base}/table_shape")
    graph.initializer.append(shape)
    if len(scales.dims) != 2:  # MatMulNBits takes [vocab * blocks] or [vocab, blocks]
        scales.dims[:] = [vocab, blocks]
    at = list(graph.node).index(gather)
    graph.node.insert(at, helper.make_node("Reshape", [data.name, shape.name], [f"{base}/table"],
                                           name=f"{base}/Reshape"))
    graph.node.insert(at + 1, helper.make_node(
        "GatherBlockQuantized", [f"{base}/table", gather.input[1], scales.name], list(gather.output),
        name=f"{base}/GatherBlockQuantized", domain="com.microsoft",
        bits=bits, block_size=block, gather_axis=0, quantize_axis=1,
    ))
    _remove_gather(graph, gather)


def _gather_quantized(graph, gather, bits: int, block: int) -> None:
    """Replace the embedding Gather with a GatherBlockQuantized of its own table, quantized by ONNX
    Runtime's block quantizer (symmetric, blocks of ``block`` along the hidden dimension)."""
    from onnx import helper, numpy_helper
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    table = _table(graph, gather)  # [hidden, vocab]
    hidden, vocab = table.shape
    blocks = hidden // block
    blob = block * bits // 8
    packed = np.zeros((vocab, blocks, blob), dtype=np.uint8)
    scales = np.zeros(vocab * blocks, dtype=table.dtype)
    zero_points = np.zeros(vocab * blocks, dtype=np.uint8)
    (quantize_matmul_4bits if bits == 4 else quantize_matmul_8bits)(
        packed, table, scales, zero_points, block, vocab, hidden, True
    )
    base = gather.name
    graph.initializer.extend([
        numpy_helper.from_array(packed.reshape(vocab, blocks * blob), f"{base}/table_Q{bits}"),
        numpy_helper.from_array(scales.reshape(vocab, blocks), f"{base}/table_scales"),
    ])
    at = list(graph.node).index(gather)
    graph.node.insert(at, helper.make_node(
        "GatherBlockQuantized", [f"{base}/table_Q{bits}", gather.input[1], f"{base}/table_scales"], list(gather.output),
        name=f"{base}/GatherBlockQuantized", domain="com.microsoft",
        bits=bits, block_size=block, gather_axis=0, quantize_axis=1,
    ))
    _remove_gather(graph, gather)


def _remove_gather(graph, gather) -> None:
    """Remove the float Gather, and its Transpose when nothing else reads it."""
    src = _producer(graph, gather.input[0])
    graph.node.remove(gather)
    if src is not None and src.op_type == "Transpose" and not any(src.output[0] in n.input for n in graph.node):
        graph.node.remove(src)
