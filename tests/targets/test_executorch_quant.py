"""The ExecuTorch quantizers' rounding (no export), and the calibrated recipes' errors."""

from __future__ import annotations

import pytest

pytest.importorskip("executorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from edgekit import recipes  # noqa: E402
from edgekit.targets import executorch_quant  # noqa: E402


def _outliers(rows: int, cols: int) -> torch.Tensor:
    torch.manual_seed(0)
    w = torch.randn(rows, cols) * 0.02
    w[:, ::7] *= 20  # a heavy tail: the extremes that matter
    return w


def test_int4_groups_keep_their_extreme_weight():
    """8da4w rounds each group against a positive bfloat16 scale, max(-min/8, max/7): the end of the
    group that sets it comes back within the bfloat16 scale's rounding (torchao's plain symmetric rule, absmax/7.5,
    clips a positive extreme to 7/7.5 of itself)."""
    w = _outliers(16, 64)
    qt = _rtn(w)[0].weight
    assert qt.scale.dtype == torch.bfloat16 and bool((qt.scale > 0).all())
    g, dq = w.reshape(16, 2, 32), qt.dequantize().reshape(16, 2, 32)
    low, high = g.argmin(-1, keepdim=True), g.argmax(-1, keepdim=True)  # the one that sets the scale is exact
    err = torch.minimum((dq.gather(-1, low) / g.gather(-1, low) - 1).abs(),
                        (dq.gather(-1, high) / g.gather(-1, high) - 1).abs())
    assert float(err.max()) <= 2**-8


def _rtn(w: torch.Tensor):
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data = w.clone()
    recipe = recipes.parse("executorch", "8da4w")
    quantize_part = executorch_quant._linear_quantizer(recipe)
    quantize_part(lin, lambda m: True)
    return lin, recipe, quantize_part


def test_calibration_applies_to_calibrated_recipes_only(cli, tmp_path):
    r = cli("export", "builtin:tiny", "-t", "executorch", "-r", "8da4w-mix0", "--calibration", tmp_path / "c.txt", "-o",
            tmp_path / "a")
    assert r.code == 2 and "--calibration applies to calibrated recipes" in r.err, r.err
    assert not (tmp_path / "a").exists()


def test_unreadable_calibration_text_is_one_line_before_the_weights_load(cli, tmp_path):
    out = tmp_path / "a"
    r = cli("export", "builtin:tiny", "-t", "executorch", "-r", "8da4w-mix1", "--max-context", "64",
            "--calibration", tmp_path / "missing.txt", "-o", out)
    assert r.code == 2 and "calibration text" in r.err and r.err.strip().count("\n") == 0, r.err
    assert not out.exists()


def test_groups_that_do_not_split_a_linear_fall_back_to_a_smaller_group_or_int8():
    """8da4w-g128 on a linear of 576 inputs (SmolLM2's hidden size) rounds it in groups of 64, the largest
    of the scheme's group sizes that splits it; one that none splits gets int8 per channel; none stays float."""
    recipe = recipes.parse("executorch", "8da4w-g128")
    assert executorch_quant._group_for(576, recipe) == 64 and executorch_quant._group_for(1536, recipe) == 128
    assert executorch_quant._group_for(40, recipe) is None
    root = nn.Sequential(nn.Linear(576, 8, bias=False), nn.Linear(1536, 8, bias=False), nn.Linear(40, 8, bias=False))
    executorch_quant._linear_quantizer(recipe)(root, lambda m: True)
    blocks = [tuple(m.weight.block_size) for m in root]
    assert blocks == [(1, 64), (1, 128), (1, 40)]  # the last: one scale per output channel
    assert root[2].weight.qdata.abs().max() > 7  # int8's range, not int4's
