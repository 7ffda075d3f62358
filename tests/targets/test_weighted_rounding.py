"""The importance-weighted scale search of 8da4w-imatrix: XNNPACK's grid, and less weighted error."""

from __future__ import annotations

import torch

from edgekit.targets import weighted_rounding


def _weights(rows: int = 64, cols: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    w = torch.randn(rows, cols) * 0.02
    w[:, ::9] *= 8  # outliers
    importance = torch.rand(cols) ** 4 * 10  # a few input columns matter most
    return w, importance


def _no_clipping_error(w: torch.Tensor, group: int):
    g = w.reshape(w.shape[0], -1, group)
    scale = torch.maximum(-g.amin(-1, keepdim=True) / 8, g.amax(-1, keepdim=True) / 7).to(torch.bfloat16).float()
    return ((g / scale).round().clamp(-8, 7) * scale).reshape(w.shape)


def test_search_stays_on_xnnpacks_grid_and_lowers_the_weighted_error():
    w, importance = _weights()
    q, scales = weighted_rounding.round_groups(w, importance, 4, 32)
    assert q.dtype == torch.int8 and int(q.min()) >= -8 and int(q.max()) <= 7
    assert scales.dtype == torch.bfloat16 and scales.shape == (64, 4) and bool((scales > 0).all())
    dequantized = (q.float().reshape(64, 4, 32) * scales.float()[..., None]).reshape(w.shape)
    searched = float(((w - dequantized) ** 2 * importance).sum())
    default = float(((w - _no_clipping_error(w, 32)) ** 2 * importance).sum())
    assert searched < 0.9 * default, (searched, default)


def test_without_importance_the_search_is_never_worse_than_the_default_rule():
    w, _ = _weights()
    q, scales = weighted_rounding.round_groups(w, None, 4, 32)
    dequantized = (q.float().reshape(64, 4, 32) * scales.float()[..., None]).reshape(w.shape)
    sigma = (w * w).mean(1, keepdim=True)
    weight = (sigma + w * w).sqrt()  # llama.cpp's weighting without an importance matrix
    plain = _no_clipping_error(w, 32)
    assert float(((w - dequantized) ** 2 * weight).sum()) <= float(((w - plain) ** 2 * weight).sum())


def test_zero_groups_stay_zero():
    w = torch.zeros(4, 64)
    w[0, :32] = torch.linspace(-1, 1, 32)
    q, scales = weighted_rounding.round_groups(w, torch.ones(64), 4, 32)
    assert bool((q[1:] == 0).all()) and bool((scales > 0).all()) and bool(torch.isfinite(scales.float()).all())
