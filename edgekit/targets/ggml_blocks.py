"""llama.cpp's own block quantizer (ggml's ``ggml_quantize_chunk``, as ``llama-quantize`` calls it), for
weights that another runtime stores in the same layout.

llama.cpp's Q4_0 is a float16 scale and 32 four-bit values per block of 32 inputs, value = scale ×
(q − 8): the layout of ONNX Runtime's symmetric MatMulNBits with blocks of 32 (and, but for the scale's
type, of ExecuTorch's grouped int4 weights). With an importance matrix (the mean square of each
input column over a calibration text) llama.cpp searches each block's scale for the least rounding
error weighted by it, instead of taking the block's extreme (``-imatrix`` recipes); the same rounding
then serves every target. The library is the one llama-cpp-python ships.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

from edgekit.errors import EdgekitError

Q4_0 = 2  # ggml_type
BLOCK = 32
_Q4_0_BYTES = 2 + BLOCK // 2  # float16 scale, 16 bytes of nibbles


@cache
def _library():
    try:
        from llama_cpp import _ggml
    except ImportError:
        raise EdgekitError("llama.cpp's quantizer needs llama-cpp-python (scripts/llama_cpp.sh installs it)") from None
    lib = _ggml.libggml
    fn = lib.ggml_quantize_chunk
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                   ctypes.c_void_p]
    return lib


def q4_0(rows: np.ndarray, importance: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` [N, K] (K a multiple of 32) rounded by llama.cpp's Q4_0, weighted by ``importance`` [K]
    where given. Returns the integers [N, K / 32, 32] (0..15, value = scale × (q − 8)) and the float16
    scales [N, K / 32]."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n, k = rows.shape
    if k % BLOCK:
        raise EdgekitError(f"Q4_0 rounds rows of whole blocks of {BLOCK}, not {k} values")
    weights = None
    if importance is not None:
        weights = np.ascontiguousarray(importance, dtype=np.float32)
        if weights.shape != (k,):
            raise EdgekitError(f"an importance matrix of {weights.shape} values for rows of {k}")
    blocks = k // BLOCK
    out = np.empty((n, blocks, _Q4_0_BYTES), dtype=np.uint8)
    written = _library().ggml_quantize_chunk(
        Q4_0, rows.ctypes.data, out.ctypes.data, 0, n, k, None if weights is None else weights.ctypes.data
    )
    if written != out.nbytes:
        raise EdgekitError(f"llama.cpp's Q4_0 quantizer wrote {written} bytes, not {out.nbytes}")
    scales = out[..., :2].copy().view(np.float16)[..., 0]
    packed = out[..., 2:]  # byte j: value j in the low nibble, value j + 16 in the high one
    values = np.concatenate([packed & 0x0F, packed >> 4], axis=-1)
    return values, scales


def q4_weighted(rows: np.ndarray, importance: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """llama.cpp's Q4_0 rounding with an importance matrix, in blocks of any size: ``q4_0`` itself for
    blocks of 32 (the only size ggml has); for the others the same search ggml's Q4_0 quantizer runs
    on each block (``make_qx_quants`` with 8 levels each side), vectorized here: each value weighted
    by its column's importance times sqrt(row's mean square + value²); the scale of the least weighted
    error among the signed extreme over -(8 + 0.1 i), i = -9..9, each refitted by least squares to the
    integers it rounds to. Returns the integers [N, K / block, block] (0..15, value = scale × (q − 8))
    and the float32 scales [N, K / block] (ggml keeps them float16)."""
    if block == BLOCK:
        values, scales = q4_0(rows, importance)
        return values, scales.astype(np.float32)
    return weighted_search(rows, importance, block)


def weighted_search(rows: np.ndarray, importance: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``q4_weighted``'s search in numpy, for any block size (in blocks of 32 it finds what ggml's Q4_0
    does, but for its float16 scales)."""
    rows = np.asarray(rows, dtype=np.float32)
    n, k = rows.shape
    if k % block:
        raise EdgekitError(f"4-bit blocks of {block} do not split rows of {k} values")
    sigma2 = (rows.astype(np.float64) ** 2).mean(1, keepdims=True)
    weight = np.asarray(importance, dtype=np.float64)[None, :] * np.sqrt(sigma2 + rows.astype(np.float64) ** 2)
    x = rows.astype(np.float64).reshape(n, k // block, block)
    w = weight.reshape(n, k // block, block)
    extreme = np.take_along_axis(x, np.abs(x).argmax(-1)[..., None], -1)  # the signed extreme, [N, B, 1]
    safe = np.where(extreme == 0, 1.0, extreme)
    best_q = np.zeros(x.shape, dtype=np.int64)
    best_scale = np.zeros(extreme.shape)
    best = np.full(extreme.shape, -np.inf)
    for step in (0, *range(-9, 10)):  # ggml tries the plain extreme first, then 0.1-level nudges
        q = np.clip(np.rint(x * (-(8 + 0.1 * step) / safe)), -8, 7)
        sumlx = (w * x * q).sum(-1, keepdims=True)
        suml2 = (w * q * q).sum(-1, keepdims=True)
        gain = np.where(suml2 > 0, sumlx * sumlx / np.where(suml2 > 0, suml2, 1), -np.inf)
        better = gain > best
        best = np.where(better, gain, best)
        best_scale = np.where(better, sumlx / np.where(suml2 > 0, suml2, 1), best_scale)
        best_q = np.where(better, q, best_q)
    best_scale = np.where(extreme == 0, 0.0, best_scale)
    return (best_q + 8).astype(np.uint8), best_scale[..., 0].astype(np.float32)
