"""The lean lowering's stand-ins answer as ExecuTorch's and torch's own, and are put back after."""

from __future__ import annotations

import pytest

pytest.importorskip("executorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from edgekit.targets.executorch_lowering import SPILL_MIN_BYTES, Downstreams, lean_lowering  # noqa: E402


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


def test_lean_lowering_puts_the_originals_back():
    import torch.fx.passes.infra.partitioner as fx_partitioner
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend
    from executorch.exir.backend.canonical_partitioners import group_partitioner

    before = (fx_partitioner._DependencyViewer, group_partitioner._DependencyViewer,
              vars(XnnpackBackend)["preprocess"], "copy_exported_program_for_preprocess" in vars(XnnpackBackend))
    with pytest.raises(RuntimeError), lean_lowering(lambda: None):
        assert group_partitioner._DependencyViewer is Downstreams
        raise RuntimeError("a failed lowering")
    after = (fx_partitioner._DependencyViewer, group_partitioner._DependencyViewer,
             vars(XnnpackBackend)["preprocess"], "copy_exported_program_for_preprocess" in vars(XnnpackBackend))
    assert after == before


def test_preprocess_copies_share_weights_and_release_after_each_partition():
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.xnnpack_preprocess import XnnpackBackend
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(nn.Linear(4, 3), (torch.randn(2, 4),))
    calls = []
    with lean_lowering(lambda: calls.append(1)):
        copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
        assert copied.graph_module is not program.graph_module and copied.state_dict is not program.state_dict
        assert copied.state_dict["weight"] is program.state_dict["weight"]
        to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    assert calls == [1]  # one partition, serialized once
    view = nn.Parameter(torch.randn(6, 4)[3:], requires_grad=False)  # serialized whole storage: never shared
    program.state_dict["weight"] = view
    with lean_lowering(lambda: None):
        copied = XnnpackBackend.copy_exported_program_for_preprocess(program, [])
    assert copied.state_dict["weight"].untyped_storage().nbytes() == view.nbytes
    assert torch.equal(copied.state_dict["weight"], view)
    assert XnnpackBackend.copy_exported_program_for_preprocess(program, []).state_dict["weight"] is not program.state_dict["weight"]


def test_spilled_weights_are_written_to_the_same_program(tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir._serialize._cord import FileBackedData

    torch.manual_seed(0)
    program = torch.export.export(nn.Sequential(nn.Linear(256, 128), nn.Linear(128, 4)), (torch.randn(2, 256),))

    def lower(spill):
        with lean_lowering(lambda: None, spill):
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        return edge, edge.to_executorch().buffer

    _, plain = lower(None)
    edge, spilled = lower(tmp_path)
    assert spilled == plain
    buffers = edge._named_data_store.buffers  # the first weight (128 KiB) spills, the rest is small
    assert [type(b) for b in buffers if len(b) >= SPILL_MIN_BYTES] == [FileBackedData]
    assert all(isinstance(b, bytes) for b in buffers if len(b) < SPILL_MIN_BYTES)
    assert len(list(tmp_path.iterdir())) == 1
