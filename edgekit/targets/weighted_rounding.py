"""Symmetric grouped rounding whose scales minimize an importance-weighted error, on a positive grid.

llama.cpp's ``-imatrix`` quantizers (``ggml_blocks`` runs its Q4_0) choose each block's scale by
trying a few around the block's extreme and keeping the one with the least rounding error, each
weight's error weighted by its input column's importance (the mean square of that input over a
calibration text, ``imatrix``) times sqrt(σ² + w²) (σ²: the row's mean square weight), the scale
of each try refitted by weighted least squares. Its Q4_0 scale is signed (the block's extreme maps
to -8 whatever its sign); XNNPACK's grouped int4 weights take positive scales only, the values in
[-8, 7]: here the tries map the block's negative extreme to -8 or its positive one to 7, each
widened or narrowed by up to 0.9 of a step as llama.cpp's are, the scale refitted and then rounded
to ``scale_dtype`` (bfloat16: what XNNPACK keeps) before the error is measured with it; the
no-clipping-error scale (the unweighted default, max(-min / 8, max / 7)) is one of the tries, so the
result is never worse than it by this measure.
"""

from __future__ import annotations

import torch

TRIES = tuple(s / 10 for s in range(-9, 10))  # llama.cpp's: the extreme at -8/7 plus s steps of 0.1
ROWS_AT_ONCE = 256  # rows searched together (the tries multiply the memory of a row by 2 x len(TRIES) + 1)


@torch.no_grad()
def round_groups(w: torch.Tensor, importance: torch.Tensor | None, bits: int, group: int,
                 scale_dtype: torch.dtype = torch.bfloat16) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` [rows, cols] (cols a multiple of ``group``) rounded in groups of ``group`` inputs, each
    group's positive scale chosen for the least error weighted by ``importance`` [cols] (None: all
    equal). Returns the integers [rows, cols] (int8, in [-2^(bits-1), 2^(bits-1) - 1]) and the scales
    [rows, cols / group] in ``scale_dtype``."""
    rows, cols = w.shape
    if cols % group:
        raise ValueError(f"rows of {cols} values do not split into groups of {group}")
    imp = torch.ones(cols) if importance is None else torch.as_tensor(importance, dtype=torch.float32)
    q, s = [], []
    for start in range(0, rows, ROWS_AT_ONCE):
        qi, si = _search(w[start:start + ROWS_AT_ONCE].float(), imp, bits, group, scale_dtype)
        q.append(qi)
        s.append(si)
    return torch.cat(q), torch.cat(s)


def _search(w: torch.Tensor, imp: torch.Tensor, bits: int, group: int, scale_dtype: torch.dtype):
    rows, cols = w.shape
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = w.reshape(rows, cols // group, 1, group)  # [R, G, 1, n]
    sigma2 = (w * w).mean(1).reshape(rows, 1, 1, 1)
    weight = imp.reshape(1, cols // group, 1, group) * (sigma2 + x * x).sqrt()
    low = (-x.amin(-1, keepdim=True)).clamp(min=0)  # magnitude of the negative extreme, mapped to lo
    high = x.amax(-1, keepdim=True).clamp(min=0)  # the positive extreme, mapped to hi
    steps = torch.tensor(TRIES).reshape(1, 1, -1, 1)
    tiny = torch.finfo(torch.float32).tiny
    default = torch.maximum(low / -lo, high / hi).clamp(min=tiny)  # no clipping error
    inverse = torch.cat([torch.where(low > 0, (-lo + steps) / low.clamp(min=tiny), 0.0),  # no such extreme: all 0
                         torch.where(high > 0, (hi + steps) / high.clamp(min=tiny), 0.0)], 2)
    q = (x * inverse).round().clamp(lo, hi)
    fit = (weight * x * q).sum(-1, keepdim=True) / (weight * q * q).sum(-1, keepdim=True).clamp(min=tiny)
    scales = torch.cat([fit, default], 2).clamp(min=tiny).to(scale_dtype).float().clamp(min=tiny)
    q = torch.cat([q, (x / default).round().clamp(lo, hi)], 2)
    # the refitted scale rounded to scale_dtype: the integers chosen for the try are kept only if
    # they still beat rounding again against it
    again = (x / scales).round().clamp(lo, hi)
    err_kept = (weight * (x - scales * q) ** 2).sum(-1, keepdim=True)
    err_again = (weight * (x - scales * again) ** 2).sum(-1, keepdim=True)
    q = torch.where(err_again < err_kept, again, q)
    err = torch.minimum(err_kept, err_again)
    best = err.argmin(2, keepdim=True)  # [R, G, 1, 1]
    q = q.gather(2, best.expand(-1, -1, 1, group)).reshape(rows, cols).to(torch.int8)
    s = scales.gather(2, best).reshape(rows, cols // group).to(scale_dtype)
    return q, s
