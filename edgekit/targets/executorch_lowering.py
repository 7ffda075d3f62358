"""ExecuTorch's XNNPACK lowering and emission with less memory held at once; the same program comes out.

Five things make ``to_edge_transform_and_lower`` and ``to_executorch`` hold several times the
weights of a decoder:

- the partitioners map every node to the set of all nodes downstream of it (ExecuTorch's
  ``GroupBasedPartitioner`` builds the upstream sets too, and torch's ``CapabilityBasedPartitioner``
  under it a second downstream map): N² set entries for N nodes, about 0.7 GB for a 30-layer
  decoder. ``Downstreams`` keeps each node's downstream set as the bits of one integer (N² bits);
- the preprocess gets its own deep copy of every partition, all made before the first is
  serialized: every delegated weight twice over, next to its serialized bytes. XNNPACK's passes
  replace state-dict entries and never write into a weight, so the copies share the weight tensors
  that own their storage (ExecuTorch's CUDA backend does the same in its low-memory mode);
- each serialization reads the float weights, which view the mapped checkpoint; ``after_each()``
  runs once every ``RELEASE_EVERY_BYTES`` serialized (and at the end) so the caller can let go of
  those pages;
- the serialized weights (XNNPACK's named data) are bytes held until the program is written: every
  delegated weight once more, to the end of the export. Each partition's large blobs go to files of
  a ``spill`` folder as soon as it is serialized, and ExecuTorch's program writer streams them from
  there (its ``FileBackedData``, which its named-data store and ``Cord`` take in place of bytes);
- the emitter copies every constant left outside the delegates (the embedding table, weight-only
  int8 weights) into bytes, all held until the program is written. ``lean_emission`` sends each
  large one to the ``spill`` folder too as it is made, and runs ``after_each()`` as above.

And traces make the lowering slow, each a replay of a whole graph with fake tensors and symbolic
shapes; ``lean_lowering`` skips those that cannot change anything:

- XNNPACK's passes trace each partition again after every pass, changed or not: the traces of
  passes that changed nothing are skipped;
- the third of the three decompositions for XNNPACK, when no op it could decompose is left;
- the edge-dialect passes that act on a few operators only, on a program that calls none of them
  (in the lowering and in ``to_executorch``).

``lean_lowering`` and ``lean_emission`` swap these in (module attributes, ``BackendDetails``
classmethod hooks, an emitter method) for the duration of the lowering or of ``to_executorch``
only, and put the originals back. The caller removes the spill folder once the program is written.
Written against ExecuTorch 1.5.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Set
from contextlib import ExitStack, contextmanager
from pathlib import Path

SPILL_MIN_BYTES = 1 << 16  # smaller blobs (norms, biases, scales) stay in memory
RELEASE_EVERY_BYTES = 64 << 20  # serialized between two ``after_each()`` calls, and once at the end


class Downstreams:
    """The partitioners' ``_DependencyViewer``: ``downstreams_of(node)``, every node reachable from
    ``node`` through its users, as a read-only set."""

    def __init__(self, graph_module):
        self.nodes = list(graph_module.graph.nodes)
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.bits: dict = {}
        for node in reversed(self.nodes):
            bits = 0
            for user in node.users:
                bits |= 1 << self.index[user] | self.bits[user]
            self.bits[node] = bits

    def downstreams_of(self, node) -> NodeSet:
        return NodeSet(self, self.bits.get(node, 0))

    def upstreams_of(self, node) -> set:  # not asked for by the partitioners: found on demand
        i = self.index.get(node)
        return set() if i is None else {n for n in self.nodes if self.bits[n] >> i & 1}


class NodeSet(Set):
    def __init__(self, graph: Downstreams, bits: int):
        self.graph, self.bits = graph, bits

    def __contains__(self, node) -> bool:
        i = self.graph.index.get(node)
        return i is not None and bool(self.bits >> i & 1)

    def __iter__(self):
        digits = bin(self.bits)[:1:-1]  # lowest bit first
        return (self.graph.nodes[i] for i, d in enumerate(digits) if d == "1")

    def __len__(self) -> int:
        return self.bits.bit_count()

    @classmethod
    def _from_iterable(cls, nodes):  # results of &, |, - are plain sets
        return set(nodes)


@contextmanager
def lean_lowering(after_each: Callable[[], object], spill: Path):
    import torch
    import torch.fx.passes.infra.partitioner as fx_partitioner
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend
    from executorch.exir.backend.canonical_partitioners import group_partitioner

    preprocess = XnnpackBackend.preprocess

    def copy_sharing_weights(cls, program, compile_specs):
        # XNNPACK serializes a weight's whole storage: a view into a larger one (a split of a fused
        # projection) must still become a compact copy, as the deep copy makes it
        tensors = (*program.state_dict.values(), *program.constants.values())
        shared = {id(t): t for t in tensors if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() == t.nbytes}
        return copy.deepcopy(program, shared)

    release = _Every(after_each, RELEASE_EVERY_BYTES)

    def preprocess_then_release(program, compile_specs):
        result = preprocess(program, compile_specs)
        if result.data_store_output is not None:
            buffers = result.data_store_output.buffers
            release.count(sum(len(data) for data in buffers if isinstance(data, bytes)))
            buffers[:] = [_to_file(data, spill) for data in buffers]
        return result

    with ExitStack() as undo:
        undo.callback(release.flush)
        for module in (fx_partitioner, group_partitioner):
            _swap(undo, module, "_DependencyViewer", Downstreams)
        _swap(undo, XnnpackBackend, "copy_exported_program_for_preprocess", classmethod(copy_sharing_weights))
        _swap(undo, XnnpackBackend, "preprocess", staticmethod(preprocess_then_release))
        _skip_idle_retraces(undo)
        _skip_idle_decompositions(undo)
        _skip_idle_edge_passes(undo)
        yield


def _skip_idle_decompositions(undo: ExitStack) -> None:
    """``to_edge_transform_and_lower`` decomposes the program three times for XNNPACK, each a whole
    trace: functionalization, then every core ATen decomposition but the ops XNNPACK keeps, then,
    once the ops it keeps are renamed out of the table's reach, the whole table again. A program
    that came out of a decomposition with table P holds no op of P that decomposes any further, so
    decomposing it again with table T is a plain replay when it holds no op of T that P lacks: it is
    returned as it is."""
    import weakref

    from torch.export.exported_program import ExportedProgram

    decompose = ExportedProgram.run_decompositions
    done: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # program -> the table it came out of

    def decompose_unless_done(self, decomp_table=None, *args, **kwargs):
        if (decomp_table is not None and self in done
                and not calls_any(self.graph_module, set(decomp_table) - done[self])):
            return self
        program = decompose(self, decomp_table, *args, **kwargs)
        if decomp_table is not None:
            done[program] = frozenset(decomp_table)
        return program

    _swap(undo, ExportedProgram, "run_decompositions", decompose_unless_done)


def calls_any(graph_module, ops) -> bool:
    """Whether ``graph_module`` or a graph nested in it calls one of ``ops``."""
    return any(node.target in ops for node in _call_nodes(graph_module))


def _skip_idle_edge_passes(undo: ExitStack) -> None:
    """The conversion to the edge dialect replays the whole program through a dozen passes, each a
    trace with fake tensors and symbolic shapes. Some act on a few operators only (their
    ``call_operator`` passes every other one on as it is); on a program that calls none of them, such
    a pass is a plain replay, and it is skipped. Each pass's own test of an operator, in graph terms:
    ``aten.t`` (NormalizeTransposePass), a view op (ReplaceBrokenOpsWithFunctionalOpsPass), a
    symbolic int, float or bool given for a tensor argument (SymToTensorPass), an edge op with a
    dim-order form (MemoryFormatOpsPass); and, in ``to_executorch``, a pooling or reduction op
    that the portable kernels want contiguous (LegalizePortableDimOrderPass, whose trace
    ``SpecPropPass`` repeats right after)."""
    import torch
    from executorch.exir.dialects.edge._ops import EdgeOpOverload
    from executorch.exir.pass_base import PassResult
    from executorch.exir.passes import (
        NormalizeTransposePass,
        ReplaceBrokenOpsWithFunctionalOpsPass,
        SymToTensorPass,
    )
    from executorch.exir.passes.dim_order_ops_registry import DimOrderOpsMap
    from executorch.exir.passes.legalize_portable_dim_order_pass import LegalizePortableDimOrderPass
    from executorch.exir.passes.memory_format_ops_pass import MemoryFormatOpsPass

    symbolic = (torch.SymInt, torch.SymFloat, torch.SymBool)

    def symbol_for_tensor(node) -> bool:
        schema = getattr(node.target, "_schema", None)
        if schema is None:
            return False
        for i, arg in enumerate(schema.arguments):  # as ExecuTorch's map_args pairs them
            value = node.kwargs.get(arg.name) if arg.name in node.kwargs else (
                node.args[i] if not arg.kwarg_only and i < len(node.args) else None)
            if (isinstance(arg.type, torch.TensorType) and isinstance(value, torch.fx.Node)
                    and isinstance(value.meta.get("val"), symbolic)):
                return True
        return False

    acts_on = {
        NormalizeTransposePass: lambda node: node.target == torch.ops.aten.t.default,
        ReplaceBrokenOpsWithFunctionalOpsPass: lambda node: bool(getattr(node.target, "is_view", False)),
        SymToTensorPass: symbol_for_tensor,
        MemoryFormatOpsPass: lambda node: isinstance(node.target, EdgeOpOverload) and node.target in DimOrderOpsMap,
        LegalizePortableDimOrderPass: lambda node: node.target in LegalizePortableDimOrderPass._target_ops,
    }
    for cls, acts in acts_on.items():
        run = cls.__call__

        def run_unless_idle(self, graph_module, run=run, acts=acts):
            if any(acts(node) for node in _call_nodes(graph_module)):
                return run(self, graph_module)
            return PassResult(graph_module, False)

        _swap(undo, cls, "__call__", run_unless_idle)


def _call_nodes(graph_module):
    """The ``call_function`` nodes of ``graph_module`` and of the graphs nested in it."""
    import torch

    for module in graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            yield from (node for node in module.graph.nodes if node.op == "call_function")


def _skip_idle_retraces(undo: ExitStack) -> None:
    """XNNPACK's preprocess runs 17 passes over each partition; most edit the graph in place, then
    trace it again whole (``ExportPass.call``, fake tensors and symbolic shapes through every node)
    to refresh its metadata, whether they changed anything or not, and on a decoder most change
    nothing. Such a pass, found unchanged when it asks for the trace, gets its graph back as it is.
    Passes whose trace is the change itself (they override one of ``ExportPass``'s replay hooks,
    ``call_operator``...) always trace."""
    import executorch.backends.xnnpack._passes as xnnpack_passes
    from executorch.exir.pass_base import ExportPass, PassResult, _ExportPassBase

    transform, retrace = xnnpack_passes._transform, _ExportPassBase.call
    started: dict[int, list] = {}  # id(pass) -> the graph's structure when it started

    def transform_noting_start(program, pass_):
        if not _edits_in_place(type(pass_), ExportPass):
            return transform(program, pass_)
        started[id(pass_)] = _structure(program.graph_module)
        try:
            return transform(program, pass_)
        finally:
            del started[id(pass_)]

    def retrace_if_changed(self, graph_module):
        start = started.get(id(self))
        if start is not None and _structure(graph_module) == start:
            return PassResult(graph_module, False)
        return retrace(self, graph_module)

    _swap(undo, xnnpack_passes, "_transform", transform_noting_start)
    _swap(undo, _ExportPassBase, "call", retrace_if_changed)


def _edits_in_place(cls, export_pass) -> bool:
    """Whether ``cls`` (an ``ExportPass``) changes graphs in its own ``call`` only, its trace being a
    plain replay: it defines ``call`` and inherits every other method of ``export_pass``."""
    own = {name for c in cls.__mro__[: cls.__mro__.index(export_pass)] for name in vars(c)}
    hooks = {name for c in export_pass.__mro__ for name, v in vars(c).items()
             if callable(v) and not name.startswith("__")}
    return "call" in own and all(getattr(cls, name) is getattr(export_pass, name) for name in hooks - {"call"})


def _structure(graph_module) -> list:
    """Every node's name, kind, target and arguments (nodes by name): equal lists, equal graphs."""
    from torch.fx.node import map_arg

    def name(node):
        return node.name

    return [(n.name, n.op, n.target, map_arg(n.args, name), map_arg(n.kwargs, name)) for n in graph_module.graph.nodes]


@contextmanager
def lean_emission(after_each: Callable[[], object], spill: Path):
    from executorch.exir.emit._emitter import _Emitter

    save = _Emitter._save_new_const_tensor
    release = _Every(after_each, RELEASE_EVERY_BYTES)

    def save_to_file(self, spec, buffer_data, *args, **kwargs):
        spilled = _to_file(buffer_data, spill)
        index = save(self, spec, spilled, *args, **kwargs)
        if spilled is not buffer_data:
            release.count(len(buffer_data))
        return index

    with ExitStack() as undo:
        undo.callback(release.flush)
        _swap(undo, _Emitter, "_save_new_const_tensor", save_to_file)
        _skip_idle_edge_passes(undo)
        yield


class _Every:
    """Calls ``fn()`` each time ``every`` more bytes have been counted, and at ``flush()`` for the rest:
    letting go of the checkpoint's pages reads the process's whole memory map, too slow to do for
    each of a model's hundreds of constants."""

    def __init__(self, fn: Callable[[], object], every: int):
        self.fn, self.every, self.pending = fn, every, None

    def count(self, nbytes: int) -> None:
        self.pending = (self.pending or 0) + nbytes
        if self.pending >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.pending = None
            self.fn()


def _to_file(data, folder: Path):
    """Large ``bytes`` as a new file of ``folder``, in ExecuTorch's ``FileBackedData``; anything else as it is."""
    from executorch.exir._serialize._cord import FileBackedData

    if not isinstance(data, bytes) or len(data) < SPILL_MIN_BYTES:
        return data
    fd, path = tempfile.mkstemp(suffix=".bin", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return FileBackedData(path)


def _swap(undo: ExitStack, owner, name: str, value) -> None:
    """``owner.name = value`` until ``undo`` closes; then the attribute ``owner`` had itself, or none
    (a class then inherits it again)."""
    own = vars(owner).get(name)
    setattr(owner, name, value)
    if own is None:
        undo.callback(delattr, owner, name)
    else:
        undo.callback(setattr, owner, name, own)
