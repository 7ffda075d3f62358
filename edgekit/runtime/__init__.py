"""What runs an artifact: importable with only numpy and the target's own runtime installed.

Nothing here imports torch, transformers or the rest of edgekit (imports are relative), so this
folder is copied as it is to a board and runs there exactly as on the host. A backend exposes the
small ``LanguageModel`` protocol below; ``generate.greedy`` drives any of them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

MANIFEST = "edgekit.json"


class LanguageModel(Protocol):
    """A causal LM with its own KV cache."""

    vocab_size: int
    max_context: int

    def reset(self) -> None:
        """Forget the cache: the next ``forward`` starts a new sequence."""

    def forward(self, ids: list[int], *, last_only: bool = False) -> np.ndarray:
        """Append ``ids`` to the sequence; return float32 logits of shape (len(ids), vocab), or
        (1, vocab) for the last position when ``last_only`` (a backend may then skip the others)."""


def load(folder: Path, threads: int | None = None, backend: str | None = None) -> LanguageModel:
    """Open the artifact in ``folder`` with its target's backend: ``backend`` (a module name, relative
    to this package where it starts with a dot), else the one its manifest names."""
    module, runtime = backend_of(folder, backend)
    return module.open_artifact(Path(folder), runtime, threads)


def backend_of(folder: Path, backend: str | None = None):
    """(the backend module, the manifest's runtime section) of the artifact in ``folder``."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text())
    backend = backend or manifest["runtime"].get("backend")
    if not backend:
        raise ValueError(f"the manifest of {folder} names no runtime backend for target '{manifest.get('target')}'")
    return importlib.import_module(backend, __package__), manifest["runtime"]


def profile_ops(folder: Path, threads: int | None, backend: str | None, prompt: list[int], gen: int) -> dict:
    """The protocol's ``ops`` event (``ops.py``): the backend's per-operator times, or why it has none."""
    from . import ops

    module, runtime = backend_of(folder, backend)
    if not hasattr(module, "profile_ops"):
        return ops.unavailable(getattr(module, "OPS_UNAVAILABLE", "this runtime gives no per-operator times"))
    return module.profile_ops(Path(folder), runtime, threads, prompt, gen)


class WindowedLM:
    """A model whose cache lives in the program (static slots) and that takes at most ``max_prefill``
    tokens per call: subclasses give ``_step(chunk, position, last_only) -> logits (len(chunk), vocab)``,
    or only the chunk's last row where ``last_only`` (a program may skip the others)."""

    vocab_size: int
    max_context: int
    max_prefill: int
    length: int = 0

    def forward(self, ids: list[int], *, last_only: bool = False) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        if self.length + len(ids) > self.max_context:
            raise ValueError(f"sequence of {self.length + len(ids)} tokens exceeds the context of {self.max_context}")
        w = self.max_prefill
        out = [self._step(ids[i : i + w], self.length + i, last_only) for i in range(0, len(ids), w)]
        self.length += len(ids)
        if last_only:
            return out[-1][-1:]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _step(self, chunk: list[int], position: int, last_only: bool) -> np.ndarray:
        raise NotImplementedError


def versions(distributions=()) -> dict:
    """Versions of what this runner runs on: numpy and those of ``distributions`` (the backends'
    runtimes, as the host names them) installed here."""
    from importlib import metadata

    out = {"numpy": np.__version__}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


@contextlib.contextmanager
def native_output(fds: tuple[int, ...] = (2,)):
    """The file descriptors ``fds`` (2: stderr, 1: stdout), where native libraries write below Python,
    routed to one temporary file for the block and put back after; yields ``read()``: what was written
    so far. A runtime's log (cpuinfo notes at every start, its own reports) stays off the terminal."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # C's own buffers, flushed into the file before it is read
    except OSError:
        libc = None

    def flush() -> None:
        if libc is not None:
            libc.fflush(None)

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    with tempfile.TemporaryFile() as log:
        for fd in fds:
            os.dup2(log.fileno(), fd)

        def read() -> str:
            flush()
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            yield read
        finally:
            flush()
            for fd, copy in zip(fds, saved):
                os.dup2(copy, fd)
                os.close(copy)
