"""ExecuTorch backend: a ``.pte`` program ``forward(tokens[1, n], input_pos[k]) -> logits[1, rows, vocab]``
whose KV cache lives inside the program (mutable buffers); this side keeps only the position.
``input_pos`` is ExecuTorch's LLM convention read both ways: every token's position (``k = n``, what
its ``TextLLMRunner`` passes) gives the last two positions' logits (a generation step reads the last);
the start
position alone (``k = 1``) gives every position's, as scoring a text needs, in one call. Older
programs are read too: those that return the last position only (``[1, vocab]``: the tokens then go
in one a call where every position is asked for), every position, or take a third input, ``rows``.

Run through ``executorch.runtime`` (the pip wheel's pybindings). Those bindings take and return torch
tensors and import torch themselves, so torch is needed here: it is the one exception to "numpy and
the target's runtime" (ExecuTorch's Python runtime is built on it). The kernel libraries a program
names in its runtime info (LLM custom ops, quantized embedding ops) are loaded from the wheel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import struct
import sys
import types
from pathlib import Path

import numpy as np

from . import WindowedLM, native_output

_KERNEL_LIBRARIES = {  # runtime-info name -> folder of the executorch package holding the library
    "custom_ops": ("extension/llm/custom_ops", "*custom_ops_aot_lib.*"),
    "quantized": ("kernels/quantized", "*quantized_ops_aot_lib.*"),
}


class ExecuTorchLM(WindowedLM):
    def __init__(self, program_file: Path, *, max_context: int, max_prefill: int, vocab_size: int | None = None,
                 kernel_libraries: tuple[str, ...] = (), threads: int | None = None, data_file: Path | None = None,
                 etdump: bool = False):
        check_program(Path(program_file))
        import torch

        with _native_log_on_error():
            runtime = _runtime(threads)
            for name in kernel_libraries:
                _load_kernels(name)
            # etdump: the runtime's event tracer on (every execute's operator and delegate events: ``ops``)
            self.program = (runtime.load_program(Path(program_file), data_path=data_file, enable_etdump=True,
                                                 debug_buffer_size=0) if etdump
                            else runtime.load_program(Path(program_file), data_path=data_file))
            self.method = self.program.load_method("forward")
        self._torch = torch
        self.max_context = max_context
        self.max_prefill = max_prefill
        out = self.method.metadata.output_tensor_meta(0)
        self.vocab_size = int(vocab_size or out.sizes()[-1])
        self.selects_rows = self.method.metadata.num_inputs() == 3
        self.last_position_only = len(out.sizes()) == 2  # [1, vocab]
        # input_pos's length picks the rows returned (see above): its upper bound is the window
        self.rows_by_positions = not self.selects_rows and self.method.metadata.input_tensor_meta(1).sizes()[0] > 1
        # the rows one call returns at most (programs that planned a row less than the window: a longer
        # run of rows takes two calls)
        self.max_rows = int(out.sizes()[1]) if self.rows_by_positions and len(out.sizes()) == 3 else max_prefill
        self.reset()

    def reset(self) -> None:
        self.length = 0  # cache slots past the position are masked: nothing to clear

    def _step(self, chunk: list[int], position: int, last_only: bool) -> np.ndarray:
        if not last_only and len(chunk) > self.max_rows:
            cut = self.max_rows
            return np.concatenate([self._call(chunk[:cut], position, False),
                                   self._call(chunk[cut:], position + cut, False)])
        if self.last_position_only and not last_only and len(chunk) > 1:
            return np.concatenate([self._call([t], position + i, True) for i, t in enumerate(chunk)])
        return self._call(chunk, position, last_only)

    def _call(self, chunk: list[int], position: int, last_only: bool) -> np.ndarray:
        torch = self._torch
        n = len(chunk)
        one_row = self.rows_by_positions and last_only  # every token's position given: the last rows only
        positions = torch.arange(position, position + n) if one_row else torch.tensor([position])
        inputs = [torch.tensor([chunk], dtype=torch.long), positions.to(torch.long)]
        if self.selects_rows:
            inputs.append(torch.tensor([len(chunk) - 1]) if last_only else torch.arange(len(chunk)))
        (logits,) = self.method.execute(inputs)
        return logits.numpy() if self.last_position_only else logits[0].numpy()


def check_program(path: Path) -> None:
    """Refuse a file that is not a whole ExecuTorch program before the runtime reads it: on some
    malformed headers (an identifier that is not text) the runtime aborts the process instead of
    raising. The header: a flatbuffer root offset, the identifier ``ETnn``, then an optional extended
    header ``eh00`` with the program's size and where its segments start and how long they are."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(40)
    except OSError as e:
        raise ValueError(f"cannot read {path.name}: {e.strerror or e}") from None
    if len(head) < 8 or not re.fullmatch(rb"ET[0-9]{2}", head[4:8]):
        raise ValueError(f"{path.name} is not an ExecuTorch program (no ETnn identifier in its header)")
    if head[8:12] == b"eh00" and len(head) >= 32:
        length, program_size, segment_base = struct.unpack_from("<IQQ", head, 12)
        segments = struct.unpack_from("<Q", head, 32)[0] if length >= 32 and len(head) >= 40 else 0
        if program_size > size or segment_base + segments > size:
            raise ValueError(f"{path.name} is truncated or corrupt: its header describes "
                             f"{max(program_size, segment_base + segments)} bytes, the file has {size}")


def program_method_meta(program_file: Path, method: str = "forward"):
    """The method's metadata (inputs, outputs) as the runtime reads it from the program, nothing run."""
    check_program(Path(program_file))
    return _runtime(None).load_program(Path(program_file)).metadata(method)


def program_metadata(program_file: Path, names) -> dict:
    """The values of the program's constant methods among ``names`` (ExecuTorch's LLM metadata), nothing
    else run; a list where the method returns several."""
    check_program(Path(program_file))
    with _native_log_on_error():
        program = _runtime(None).load_program(Path(program_file))
        found = {}
        for name in (n for n in names if n in program.method_names):
            values = [v.item() if hasattr(v, "item") else v for v in program.load_method(name).execute([])]
            found[name] = values if len(values) != 1 or name == "get_eos_ids" else values[0]
    return found


def profile_ops(folder: Path, runtime: dict, threads: int | None, prompt: list[int], gen: int) -> dict:
    """The ``ops`` event: the program loaded again with its ETDump on, one warm-up generation and one
    profiled (an execute per window of the prompt, one per token), the ETDump's events summed by
    operator and by the delegate's operators (XNNPACK names them)."""
    import tempfile

    from . import ops

    lm = open_artifact(folder, runtime, threads, etdump=True)
    count = [0]
    call = lm._call

    def counted(chunk, position, last_only):
        count[0] += 1
        return call(chunk, position, last_only)

    lm._call = counted
    first, prefill_end, end, steps = ops.drive(lm, prompt, gen, lambda: count[0])
    with tempfile.TemporaryDirectory(prefix="edgekit-etdump-") as tmp:
        dump, debug = Path(tmp) / "run.etdp", Path(tmp) / "debug.bin"
        with _native_log_on_error():
            lm.program.write_etdump_result_to_file(str(dump), str(debug))
            from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

            run_data = deserialize_from_etdump_flatcc(dump.read_bytes()).run_data
    return ops.event("executorch etdump", ops.etdump_calls(run_data, first, prefill_end, end), len(prompt), steps)


def open_artifact(folder: Path, runtime: dict, threads: int | None, etdump: bool = False) -> ExecuTorchLM:
    return ExecuTorchLM(
        folder / runtime["model_file"],
        max_context=runtime["max_context"],
        max_prefill=runtime.get("max_prefill", 1),
        kernel_libraries=tuple(runtime.get("kernel_libraries", ())),
        threads=threads,
        # constants kept outside the program
        data_file=folder / runtime["data_file"] if runtime.get("data_file") else None,
        etdump=etdump,
    )


@contextlib.contextmanager
def _native_log_on_error():
    """Hold back what the runtime's C++ side writes to stderr (cpuinfo notes at every start); show it
    only when the block fails, where it says why."""
    held = ""
    try:
        with native_output() as read:
            try:
                yield
            except BaseException:
                held = read()
                raise
    finally:
        if held:
            sys.stderr.write(held)


def _runtime(threads: int | None):
    """``executorch.runtime.Runtime``, with the thread pool sized to ``threads`` when given.

    The bindings module imports ``executorch.exir`` (the whole compiler, seconds of start-up) for
    one warning class; when the compiler is not loaded yet, that one small module is lent to it
    for the import and taken back after, so a runner starts in about the time torch takes.
    """
    if "executorch.runtime" not in sys.modules and "executorch.exir" not in sys.modules:
        _import_without_compiler()
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    if threads and portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(int(threads))  # before any method runs
    return Runtime.get()


def _import_without_compiler() -> None:
    root = _package_dir()
    warnings_file = root / "exir" / "_warnings.py" if root else None
    if warnings_file is None or not warnings_file.is_file():
        return
    spec = importlib.util.spec_from_file_location("executorch.exir._warnings", warnings_file)
    module = importlib.util.module_from_spec(spec)
    lent = {"executorch.exir": types.ModuleType("executorch.exir"), "executorch.exir._warnings": module}
    lent["executorch.exir"]._warnings = module
    try:
        spec.loader.exec_module(module)
        sys.modules.update(lent)
        import executorch.runtime  # noqa: F401
    except Exception:
        pass  # the ordinary import below does the work (and reports what is wrong)
    finally:
        for name, mod in lent.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_loaded: set[str] = set()


def _load_kernels(name: str) -> None:
    import torch

    if name in _loaded:
        return
    if name not in _KERNEL_LIBRARIES:
        raise ValueError(f"unknown ExecuTorch kernel library '{name}'")
    folder, pattern = _KERNEL_LIBRARIES[name]
    root = _package_dir()
    libs = sorted((root / folder).glob(pattern)) if root else []
    if not libs:
        raise ValueError(f"this ExecuTorch install has no {name} kernel library ({folder}/{pattern})")
    torch.ops.load_library(str(libs[0]))  # a library loaded before (by the exporter) loads once
    _loaded.add(name)
