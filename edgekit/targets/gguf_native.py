"""llama.cpp's native steps of a GGUF export, each run in a child process.

llama.cpp aborts the process on some inputs (an uncaught C++ exception, a ``GGML_ASSERT``), which
no Python ``try`` catches. The export therefore runs what touches llama.cpp's native code (the
quantizer, loading the written file, its tokenizer, llama-cpp-python's ``Llama`` on it) here, in a
child process that imports llama-cpp-python and numpy (and edgekit's light modules) only. The parent
sends one JSON request on stdin and reads one JSON line back; a child that dies becomes one
``EdgekitError`` line naming the step and llama.cpp's own last words, with nothing left behind (the
caller stages its files). ggml's gdb backtrace is off in the child (``GGML_NO_BACKTRACE``).

Requests (``op``):
- ``quantize``: ``src``, ``dst``, ``ftype`` (a ``LLAMA_FTYPE_*`` suffix), optional ``imatrix``
  (an ``.npz`` of GGUF tensor name -> per-input-column importance) -> ``{}``.
- ``check``: ``model`` (a .gguf), ``texts`` and ``want`` (the HF token ids of each text) ->
  ``{"matches": bool}``; the file is loaded whole and one token decoded, so a file llama.cpp cannot
  run fails here rather than in the parent's parity check.
- ``standard``: ``model``, ``prompt`` (token ids), ``n``, ``n_ctx``, ``kv_cache``, ``flash_attn`` ->
  ``{"tokens": [...]}``: ``n`` greedy tokens from ``llama_cpp.Llama`` (``gguf_chat.standard_check``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from edgekit.errors import EdgekitError, signal_name, telling_line

_RESULT = "EDGEKIT_RESULT "  # prefix of the child's answer line on stdout (llama.cpp may print too)


def run(op: str, what: str, **request) -> dict:
    """Run ``op`` in a child process; ``what`` names the step in an error message."""
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit.targets.gguf_native"],
        input=json.dumps({"op": op, **request}), capture_output=True, text=True, env=env,
    )
    answer = next((line[len(_RESULT):] for line in reversed(proc.stdout.splitlines()) if line.startswith(_RESULT)),
                  None)
    if proc.returncode == 0 and answer is not None:
        return json.loads(answer)
    if answer is not None:  # the child's own one-line error
        raise EdgekitError(f"{what}: {json.loads(answer)['error']}")
    if proc.returncode < 0:
        raise EdgekitError(f"llama.cpp crashed while {what} ({signal_name(-proc.returncode)}: "
                           f"{telling_line(proc.stderr)})")
    raise EdgekitError(f"{what}: the llama.cpp child process exited with {proc.returncode} "
                       f"({telling_line(proc.stderr)})")


def preflight(folder, runtime) -> None:
    """Load the artifact's GGUF and decode a token in a child process (``check``), so that a file
    llama.cpp aborts on is one line before `edgekit run` loads it in its own process."""
    model = os.path.join(folder, runtime["model_file"])
    run("check", f"loading {model}", model=model, texts=[], want=[])


# ---------------------------------------------------------------- the child side


def _llama_cpp():
    """llama_cpp with its log written straight to stderr (the parent reads it if the child dies)."""
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def to_stderr(level, text, user_data):
        os.write(2, text)

    _llama_cpp.callback = to_stderr  # must outlive every call into llama.cpp
    llama_cpp.llama_log_set(to_stderr, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    return llama_cpp


def _quantize(lc, src: str, dst: str, ftype: str, imatrix: str | None = None) -> dict:
    import ctypes

    params = lc.llama_model_quantize_default_params()
    params.ftype = getattr(lc, f"LLAMA_FTYPE_{ftype}")
    keep = []
    if imatrix:
        import numpy as np

        with np.load(imatrix) as data:
            entries = (lc.llama_model_imatrix_data * (len(data.files) + 1))()  # the last one's name NULL ends it
            for i, name in enumerate(data.files):
                values = np.ascontiguousarray(data[name], dtype=np.float32)
                keep.append(values)
                entries[i].name = name.encode()
                entries[i].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                entries[i].size = values.size
        params.imatrix = entries
    rc = lc.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise ValueError(f"llama.cpp's quantizer failed ({ftype}, code {rc})")
    return {}


def _check(lc, model: str, texts: list[str], want: list[list[int]]) -> dict:
    mparams = lc.llama_model_default_params()
    handle = lc.llama_model_load_from_file(model.encode(), mparams)
    if not handle:
        raise ValueError("llama.cpp cannot load the written file")
    vocab = lc.llama_model_get_vocab(handle)
    matches = True
    for text, ids in zip(texts, want):
        data = text.encode()
        buf = (lc.llama_token * (len(data) + 8))()
        n = lc.llama_tokenize(vocab, data, len(data), buf, len(buf), False, False)
        matches &= list(buf[: max(n, 0)]) == ids
    cparams = lc.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = 16
    cparams.n_threads = cparams.n_threads_batch = 1
    ctx = lc.llama_init_from_model(handle, cparams)
    if not ctx:
        raise ValueError("llama.cpp cannot create a context for the written file")
    batch = lc.llama_batch_get_one((lc.llama_token * 1)(0), 1)
    if lc.llama_decode(ctx, batch) != 0:
        raise ValueError("llama.cpp cannot decode a token with the written file")
    lc.llama_free(ctx)
    lc.llama_model_free(handle)
    return {"matches": bool(matches)}


def _standard(lc, **request) -> dict:
    from edgekit.targets.gguf_chat import generate

    return generate(**request)


_OPS = {"quantize": _quantize, "check": _check, "standard": _standard}


def main() -> None:
    request = json.loads(sys.stdin.read())
    op = _OPS[request.pop("op")]
    try:
        result = op(_llama_cpp(), **request)
    except (ValueError, OSError) as e:
        print(_RESULT + json.dumps({"error": str(e)}), flush=True)
        sys.exit(1)
    print(_RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
