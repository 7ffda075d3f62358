"""The lean lowering's stand-ins answer as ExecuTorch's and torch's own, and are put back after."""

from __future__ import annotations

import pytest

pytest.importorskip("executorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from edgekit.targets.executorch_lowering import (  # noqa: E402
    SPILL_MIN_BYTES,
    Downstreams,
    _edits_in_place,
    lean_emission,
    lean_lowering,
)


class _Branchy(nn.Module):
    def forward(self, x, y):
        a = x + 1
        b = a * y
        c = torch.relu(a)
        return b - c, c.sum()


def test_downstreams_match_the_partitioners_dependency_viewer():
    from executorch.exir.backend.canonical_partitioners.group_partitioner import _DependencyViewer

    gm = torch.fx.symbolic_trace(_Branchy())
    ours, theirs = Downstreams(gm), _DependencyViewer(gm)
    for node in gm.graph.nodes:
        down = ours.downstreams_of(node)
        assert set(down) == theirs.downstreams_of(node) and len(down) == len(theirs.downstreams_of(node))
        assert all(n in down for n in theirs.downstreams_of(node))
        assert ours.upstreams_of(node) == theirs.upstreams_of(node)
        assert (down & {node}) == set()


def test_lean_lowering_puts_the_originals_back(tmp_path):
    import executorch.backends.xnnpack._passes as xnnpack_passes
    import torch.fx.passes.infra.partitioner as fx_partitioner
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend
    from executorch.exir.backend.canonical_partitioners import group_partitioner
    from executorch.exir.pass_base import _ExportPassBase
    from executorch.exir.passes import SymToTensorPass
    from torch.export.exported_program import ExportedProgram

    def state():
        return (fx_partitioner._DependencyViewer, group_partitioner._DependencyViewer,
                vars(XnnpackBackend)["preprocess"], "copy_exported_program_for_preprocess" in vars(XnnpackBackend),
                xnnpack_passes._transform, vars(_ExportPassBase)["call"],
                vars(ExportedProgram)["run_decompositions"], "__call__" in vars(SymToTensorPass))

    before = state()
    with pytest.raises(RuntimeError), lean_lowering(lambda: None, tmp_path):
        assert group_partitioner._DependencyViewer is Downstreams
        assert state()[4:] != before[4:]
        raise RuntimeError("a failed lowering")
    assert state() == before


def test_passes_that_change_nothing_are_not_traced_again(tmp_path, monkeypatch):
    from executorch.backends.xnnpack._passes import FuseActivationPass, FuseBatchNormPass
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.pass_base import ExportPass, _ExportPassBase
    from executorch.exir.passes.const_prop_pass import ConstPropPass
    from executorch.exir.passes.memory_format_ops_pass import DimOrderOpsRevertPass

    assert _edits_in_place(FuseActivationPass, ExportPass) and _edits_in_place(FuseBatchNormPass, ExportPass)
    assert not _edits_in_place(ConstPropPass, ExportPass) and not _edits_in_place(DimOrderOpsRevertPass, ExportPass)

    torch.manual_seed(0)  # FuseActivationPass folds the relu into the linear before it: a change, traced again
    program = torch.export.export(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)), (torch.randn(2, 8),))
    plain = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
    traced, trace = [], _ExportPassBase.call
    monkeypatch.setattr(_ExportPassBase, "call", lambda self, gm: traced.append(type(self).__name__) or trace(self, gm))
    with lean_lowering(lambda: None, tmp_path):
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    assert edge.to_executorch().buffer == plain
    assert {"FuseActivationPass", "DimOrderOpsRevertPass", "ConstPropPass"} <= set(traced)
    assert "FuseBatchNormPass" not in traced and "PReLUReshapePass" not in traced


def test_preprocess_copies_share_weights_and_release_after_each_partition(tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(nn.Linear(4, 3), (torch.randn(2, 4),))
    calls = []
    with lean_lowering(lambda: calls.append(1), tmp_path):
        copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
        assert copied.graph_module is not program.graph_module and copied.state_dict is not program.state_dict
        assert copied.state_dict["weight"] is program.state_dict["weight"]
        to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    assert calls == [1]  # one partition, serialized once
    view = nn.Parameter(torch.randn(6, 4)[3:], requires_grad=False)  # serialized whole storage: never shared
    program.state_dict["weight"] = view
    with lean_lowering(lambda: None, tmp_path):
        copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
    assert copied.state_dict["weight"].untyped_storage().nbytes() == view.nbytes
    assert torch.equal(copied.state_dict["weight"], view)
    copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
    assert copied.state_dict["weight"] is not program.state_dict["weight"]


def test_spilled_weights_and_constants_are_written_to_the_same_program(tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir._serialize._cord import FileBackedData
    from executorch.exir.emit._emitter import _Emitter

    class Model(nn.Module):  # XNNPACK takes the linears; the embedding table stays a program constant
        def __init__(self):
            super().__init__()
            self.table, self.up, self.down = nn.Embedding(256, 128), nn.Linear(128, 256), nn.Linear(256, 4)

        def forward(self, ids):
            return self.down(self.up(self.table(ids)))

    torch.manual_seed(0)
    program = torch.export.export(Model(), (torch.tensor([[1, 2, 3]]),))
    plain = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer

    calls = []
    with lean_lowering(lambda: calls.append("partition"), tmp_path):
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    buffers = edge._named_data_store.buffers  # up's weight (128 KiB) spills, the rest is small
    assert [type(b) for b in buffers if len(b) >= SPILL_MIN_BYTES] == [FileBackedData]
    assert all(isinstance(b, bytes) for b in buffers if len(b) < SPILL_MIN_BYTES)
    save = vars(_Emitter)["_save_new_const_tensor"]
    with pytest.raises(RuntimeError), lean_emission(lambda: None, tmp_path):
        raise RuntimeError("a failed emission")
    assert vars(_Emitter)["_save_new_const_tensor"] is save
    with lean_emission(lambda: calls.append("constant"), tmp_path):
        et_program = edge.to_executorch()
    tables = [b.storage for b in et_program.executorch_program.constant_buffer if len(b.storage) == 256 * 128 * 4]
    assert [type(t) for t in tables] == [FileBackedData]
    assert calls == ["partition", "constant"]
    assert len(list(tmp_path.iterdir())) == 2
    assert et_program.buffer == plain


def test_pages_are_let_go_once_per_release_every_bytes_and_at_the_end():
    from edgekit.targets.executorch_lowering import _Every

    calls = []
    every = _Every(lambda: calls.append(1), 100)
    every.flush()
    assert calls == []  # nothing counted, nothing to let go
    for _ in range(5):
        every.count(40)  # 40, 80, 120: call; 40, 80
    assert calls == [1]
    every.flush()
    every.flush()
    assert calls == [1, 1]
    every.count(0)  # a partition that serialized nothing still read its graph's weights
    every.flush()
    assert calls == [1, 1, 1]


def test_a_decomposition_with_nothing_left_to_decompose_is_not_traced(tmp_path, monkeypatch):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from torch.export.exported_program import ExportedProgram

    torch.manual_seed(0)  # the linears are kept for XNNPACK, silu decomposes
    model = nn.Sequential(nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 4))
    program = torch.export.export(model, (torch.randn(2, 8),))
    plain = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
    traced, decompose = [], ExportedProgram.run_decompositions
    monkeypatch.setattr(ExportedProgram, "run_decompositions",
                        lambda self, table=None, *a, **k: (traced.append(len(table or ()))
                                                           or decompose(self, table, *a, **k)))
    to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    assert len(traced) == 3  # functionalize; all but the kept ops; the whole table again
    traced.clear()
    with lean_lowering(lambda: None, tmp_path):
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    assert len(traced) == 2
    assert edge.to_executorch().buffer == plain


class _CastsAndCounts(nn.Module):  # a dtype cast (MemoryFormatOpsPass) and a SymInt added to a tensor (SymToTensorPass)
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        y = self.linear(x).half().float() + x.shape[0]
        return y.t().contiguous(), y.view(-1)[:3]


@pytest.mark.parametrize("acting", [False, True])
def test_edge_passes_with_no_operator_to_act_on_are_not_traced(tmp_path, monkeypatch, acting):
    import torch.fx.passes.infra.pass_base as fx_pass_base
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    torch.manual_seed(0)
    model = _CastsAndCounts() if acting else nn.Sequential(nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 4))
    program = torch.export.export(model, (torch.randn(3, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=2, max=16)},))
    config = EdgeCompileConfig(_check_ir_validity=False)
    plain = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                        compile_config=config).to_executorch().buffer
    traced, run = [], fx_pass_base.PassBase.__call__
    monkeypatch.setattr(fx_pass_base.PassBase, "__call__", lambda self, gm: traced.append(type(self).__name__)
                        or run(self, gm))
    with lean_lowering(lambda: None, tmp_path):
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()], compile_config=config)
    assert edge.to_executorch().buffer == plain
    skippable = {"NormalizeTransposePass", "ReplaceBrokenOpsWithFunctionalOpsPass", "SymToTensorPass",
                 "MemoryFormatOpsPass"}
    assert skippable & set(traced) == ({"SymToTensorPass", "MemoryFormatOpsPass"} if acting else set())
    assert {"ScalarToTensorPass", "OpReplacePass"} <= set(traced)  # the passes that act on every program still trace


@pytest.mark.parametrize("acting", [False, True])
def test_to_executorch_skips_the_dim_order_legalization_with_nothing_to_legalize(tmp_path, monkeypatch, acting):
    import torch.fx.passes.infra.pass_base as fx_pass_base
    from executorch.exir import to_edge

    class Model(nn.Module):  # left to the portable kernels: a reduction is what the pass looks at
        def forward(self, x):
            return x.sum(dim=1) if acting else x + 1

    program = torch.export.export(Model(), (torch.randn(2, 3, 4),))
    plain = to_edge(program).to_executorch().buffer
    traced, run = [], fx_pass_base.PassBase.__call__
    monkeypatch.setattr(fx_pass_base.PassBase, "__call__", lambda self, gm: traced.append(type(self).__name__)
                        or run(self, gm))
    edge = to_edge(program)
    with lean_emission(lambda: None, tmp_path):
        assert edge.to_executorch().buffer == plain
    assert ("LegalizePortableDimOrderPass" in traced) == acting
