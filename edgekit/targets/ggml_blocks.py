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
