"""llama.cpp backend: a ``.gguf`` file run through llama-cpp-python's low-level API (``llama_decode``).

The high-level ``Llama`` class is not used: it keeps every position's logits and carries sampling
machinery. Here one ``llama_batch`` is filled per call (the whole prompt in one batch, one token per
decode step) and logits are requested only for the positions the caller reads: every position for
``forward`` (parity, accuracy), the last one with ``last_only`` (generation). llama.cpp's native
log is held back: a failure's error carries its last line, and the whole log is written to stderr only
with ``EDGEKIT_DEBUG`` set. The file's hyper-parameters are checked first (``gguf_header``): llama.cpp
aborts the process on some impossible ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path

import numpy as np

from .gguf_header import check as check_header
from .machine import usable_cpus

_KV_TYPES = {"f32": 0, "f16": 1}  # ggml_type codes of the KV cache
_FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}  # llama_flash_attn_type
_log: list[str] = []
_callback = None  # the ctypes callback must outlive every call into llama.cpp


def _llama_cpp():
    """llama_cpp with its log routed into ``_log`` (llama-cpp-python prints it to stderr by default)."""
    global _callback
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")  # an abort is llama.cpp's one message, not a gdb backtrace
    import llama_cpp

    if _callback is None:
        @llama_cpp.llama_log_callback
        def collect(level, text, user_data):
            _log.append(text.decode("utf-8", errors="replace"))
            del _log[:-200]

        _callback = collect
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp


@contextlib.contextmanager
def native_log_on_error():
    """Run a block with llama.cpp's log held back; on failure write what it logged to stderr where
    ``EDGEKIT_DEBUG`` is set (the error itself carries its last line)."""
    _llama_cpp()
    _log.clear()
    try:
        yield
    except BaseException:
        if os.environ.get("EDGEKIT_DEBUG"):
            sys.stderr.write("".join(_log))
            sys.stderr.flush()
        raise
    finally:
        _log.clear()


def _last_log_line() -> str:
    """What llama.cpp's log says of a failure: its last error line ("error loading model: check_tensor_dims:
    ..."), not the "failed to load model" that follows it."""
    lines = [line.strip() for line in "".join(_log).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    if errors:
        return errors[-1].split("error loading model: ", 1)[-1]
    return lines[-1] if lines else "no message"


class LlamaCppLM:
    def __init__(self, model_file: Path, *, max_context: int, kv_cache: str = "f16", flash_attn: str = "auto",
                 threads: int | None = None):
        _checked(Path(model_file))
        with native_log_on_error():
            lc = _llama_cpp()
            mparams = lc.llama_model_default_params()
            self.model = lc.llama_model_load_from_file(str(model_file).encode(), mparams)
            if not self.model:
                raise ValueError(f"llama.cpp cannot load {model_file}: {_last_log_line()}")
            cparams = lc.llama_context_default_params()
            cparams.n_ctx = max_context
            cparams.n_batch = max_context  # any sequence that fits the context is one llama_decode call
            cparams.n_seq_max = 1
            cparams.n_threads = cparams.n_threads_batch = threads or usable_cpus()
            cparams.type_k = cparams.type_v = _KV_TYPES[kv_cache]
            cparams.flash_attn_type = _FLASH_ATTN[flash_attn]
            cparams.no_perf = True
            self.ctx = lc.llama_init_from_model(self.model, cparams)
            if not self.ctx:
                lc.llama_model_free(self.model)
                raise ValueError(f"llama.cpp cannot create a context for {model_file}: {_last_log_line()}")
        self._lc = lc
        self.max_context = max_context
        self.vocab_size = int(lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model)))
        self._memory = lc.llama_get_memory(self.ctx)
        self._batch = lc.llama_batch_init(max_context, 0, 1)
        b = self._batch
        for i in range(max_context):  # one sequence: set once, the batch only changes tokens and positions
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
        self.length = 0

    def reset(self) -> None:
        self._lc.llama_memory_clear(self._memory, True)
        self.length = 0

    def forward(self, ids: list[int], *, last_only: bool = False) -> np.ndarray:
        """Logits of every position of ``ids``, or of the last only (llama.cpp then computes the
        output head for that row alone)."""
        if not ids:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        self._decode(ids, all_logits=not last_only)
        if last_only:
            ptr = self._lc.llama_get_logits_ith(self.ctx, -1)
            return np.ctypeslib.as_array(ptr, shape=(1, self.vocab_size)).copy()
        ptr = self._lc.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(len(ids), self.vocab_size)).copy()

    def _decode(self, ids: list[int], all_logits: bool) -> None:
        n = len(ids)
        if self.length + n > self.max_context:
            raise ValueError(f"sequence of {self.length + n} tokens exceeds the context of {self.max_context}")
        b = self._batch
        b.n_tokens = n
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = self.length + i
            b.logits[i] = all_logits
        b.logits[n - 1] = True
        _log.clear()
        rc = self._lc.llama_decode(self.ctx, b)
        if rc != 0:
            raise ValueError(f"llama_decode failed ({rc}): {_last_log_line()}")
        self.length += n

    def __del__(self):
        lc = getattr(self, "_lc", None)
        if lc is None:
            return
        with contextlib.suppress(Exception):
            lc.llama_batch_free(self._batch)
            lc.llama_free(self.ctx)
            lc.llama_model_free(self.model)


def check_files(folder: Path, runtime: dict) -> None:
    """The GGUF's hyper-parameters, checked before llama.cpp reads it (``edgekit.artifact.check_files``)."""
    _checked(Path(folder) / runtime["model_file"])


def _checked(model_file: Path) -> None:
    try:
        check_header(model_file)
    except ValueError as e:
        raise ValueError(f"{model_file.name}: {e}") from None


# ``ops``: why this backend has no per-operator times
OPS_UNAVAILABLE = ("llama.cpp gives no per-operator times through its API: llama_perf_context reports only the "
                   "prompt and decode totals, and ggml's per-node timing is not exposed by its library")

def open_artifact(folder: Path, runtime: dict, threads: int | None) -> LlamaCppLM:
    return LlamaCppLM(
        folder / runtime["model_file"],
        max_context=runtime["max_context"],
        kv_cache=runtime.get("kv_cache", "f16"),
        flash_attn=runtime.get("flash_attn", "auto"),
        threads=threads,
    )
