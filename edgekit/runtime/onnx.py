"""ONNX Runtime backend: a decoder with ``past_key_values.N.key/value`` inputs and ``present.N.*`` outputs.

Everything stays in ONNX Runtime's memory between steps (IO binding): with ``kv_cache: shared`` (the
GenAI builder's GroupQueryAttention graph) past and present are one buffer per layer, updated in place,
grown (doubled, up to the context) only when a sequence outgrows it; with ``concat`` (optimum's graph)
each step's present is bound as the next step's past. ``logits_to_keep`` asks the graph for the last
position's logits only where that is all the caller needs (without it, the graph's default gives every
position, as GenAI and optimum expect).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_FIRST_CACHE = 256  # positions the shared cache starts with


def session(model_file: Path, opts=None):
    """An ONNX Runtime CPU session with ONNX Runtime's own log silenced (its errors came as red lines and a
    400-character C++ message before edgekit's one line): a file it cannot load is one short ValueError."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # fatal only: what goes wrong is in the exception
    opts = opts or ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's Fail, InvalidGraph, NoSuchFile...: one line of its own words
        raise ValueError(f"{Path(model_file).name}: {short_error(e)}") from None


def short_error(e: BaseException) -> str:
    """ONNX Runtime's message without its status prefix and C++ source locations; a truncated external
    data file said as such."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"\s*\b[\w/.-]+\.(?:cc|cpp|h):\d+ [\w:<>~]+ ", " ", text)
    found = re.search(r"External initializer: (\S+) offset: \d+ size to read: \d+ given file_length: \d+ "
                      r"are out of bounds", text)
    if found:
        return f"its external data file is shorter than the model needs (tensor {found.group(1)}): truncated or damaged"
    return text


class OnnxLM:
    def __init__(self, model_file: Path, *, max_context: int, threads: int | None = None, kv_cache: str = "concat",
                 profile_prefix: str | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if profile_prefix:  # ONNX Runtime's profiler: every run's node times, to a JSON trace (``ops``)
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = session(model_file, opts)
        self.max_context = max_context
        self.shared = kv_cache == "shared"
        inputs = {i.name: i for i in self.session.get_inputs()}
        # and the inputs with a default (an initializer of their name: logits_to_keep), which ONNX
        # Runtime lists apart from the required ones
        self.input_names = set(inputs) | {i.name for i in self.session.get_overridable_initializers()}
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        logits = next(o for o in self.session.get_outputs() if o.name == "logits")
        self.vocab_size = int(logits.shape[-1])
        self._logits_dtype = _DTYPES.get(logits.type, np.float32)
        self._kv_spec = {}
        for name in self.past_names:
            spec = inputs[name]
            _, heads, _, head_dim = spec.shape
            self._kv_spec[name] = (heads, head_dim, _DTYPES[spec.type])
        self._ort = ort
        self._last = self._last_value = None  # a decode step's logits: one buffer, bound every step
        self._keep: dict[int, object] = {}  # logits_to_keep's values
        self.kv: dict[str, np.ndarray] = {}  # shared: the buffers (ONNX Runtime writes into their memory)
        self.reset()

    def reset(self) -> None:
        # shared buffers are kept, and so is their binding: a new sequence overwrites them from
        # position 0, the mask hides the rest
        if not (self.shared and self.kv):
            self.binding = self.session.io_binding()
            self.binding.bind_output("logits")  # first: outputs come back in the order first bound
            self.past = {}
            self._bind_cache(min(self.max_context, _FIRST_CACHE) if self.shared else 0)
        self.length = 0

    def _bind_cache(self, capacity: int) -> None:
        """(Re)allocate the cache at ``capacity`` positions, keeping what it holds, and bind it."""
        for past, present in zip(self.past_names, self.present_names):
            heads, head_dim, dtype = self._kv_spec[past]
            buf = np.zeros((1, heads, capacity, head_dim), dtype)
            if past in self.kv:
                buf[:, :, : self.length] = self.kv[past][:, :, : self.length]
            self.past[past] = self._ort.OrtValue.ortvalue_from_numpy(buf)  # shares buf's memory
            self.binding.bind_ortvalue_input(past, self.past[past])
            if self.shared:
                self.kv[past] = buf
                self.binding.bind_ortvalue_output(present, self.past[past])

    def _keep_value(self, count: int):
        """``logits_to_keep`` as an OrtValue, held here while bound (it shares its array's memory):
        ONNX Runtime's ``bind_cpu_input`` looks for an input with a default among the required inputs
        only, and does not find it."""
        if count not in self._keep:
            if len(self._keep) > 8:  # the prefill lengths of a scoring run: only the current one is bound
                self._keep = {k: v for k, v in self._keep.items() if k == 1}
            self._keep[count] = self._ort.OrtValue.ortvalue_from_numpy(np.array([count], dtype=np.int64))
        return self._keep[count]

    def forward(self, ids: list[int], *, last_only: bool = False) -> np.ndarray:
        n = len(ids)
        if self.length + n > self.max_context:
            raise ValueError(f"sequence of {self.length + n} tokens exceeds the context of {self.max_context}")
        if self.shared and self.length + n > self.kv[self.past_names[0]].shape[2]:
            capacity = self.kv[self.past_names[0]].shape[2]
            while capacity < self.length + n:
                capacity *= 2
            self._bind_cache(min(capacity, self.max_context))
        binding = self.binding  # inputs and outputs bound again replace the previous step's
        binding.bind_cpu_input("input_ids", np.asarray([ids], dtype=np.int64))
        if "attention_mask" in self.input_names:
            binding.bind_cpu_input("attention_mask", np.ones((1, self.length + n), dtype=np.int64))
        if "position_ids" in self.input_names:
            binding.bind_cpu_input("position_ids", np.arange(self.length, self.length + n, dtype=np.int64)[None, :])
        if "logits_to_keep" in self.input_names:
            binding.bind_ortvalue_input("logits_to_keep", self._keep_value(1 if last_only else n))
        # the logits go to a buffer of ours, so a step reads no other output back: fetching the
        # outputs wraps every bound one (the 2 x layers cache buffers too), ~0.1-0.3 ms a step here
        kept = 1 if last_only and "logits_to_keep" in self.input_names else n
        if kept == 1:
            if self._last is None:
                self._last = np.empty((1, 1, self.vocab_size), self._logits_dtype)
                self._last_value = self._ort.OrtValue.ortvalue_from_numpy(self._last)  # shares its memory
            logits, value = self._last, self._last_value
        else:
            logits = np.empty((1, kept, self.vocab_size), self._logits_dtype)
            value = self._ort.OrtValue.ortvalue_from_numpy(logits)
        binding.bind_ortvalue_output("logits", value)
        if not self.shared:
            for past, present in zip(self.past_names, self.present_names):
                binding.bind_ortvalue_input(past, self.past[past])
                binding.bind_output(present)
        self.session.run_with_iobinding(binding)
        if not self.shared:  # the presents are the next step's past
            _, *present = binding.get_outputs()
            self.past = dict(zip(self.past_names, present))
        self.length += n
        out = logits[0]
        if kept == 1:
            out = out.copy()  # the buffer is the next step's
        return (out[-1:] if last_only else out).astype(np.float32, copy=False)


def open_artifact(folder: Path, runtime: dict, threads: int | None, profile_prefix: str | None = None) -> OnnxLM:
    return OnnxLM(
        folder / runtime["model_file"], max_context=runtime["max_context"], threads=threads,
        kv_cache=runtime.get("kv_cache", "concat"), profile_prefix=profile_prefix,
    )


def profile_ops(folder: Path, runtime: dict, threads: int | None, prompt: list[int], gen: int) -> dict:
    """The ``ops`` event: a second session with ONNX Runtime's profiler on, one warm-up generation and
    one profiled (one run per forward call), its trace summed by op type."""
    import json
    import tempfile

    from . import ops

    with tempfile.TemporaryDirectory(prefix="edgekit-ort-profile-") as tmp:
        lm = open_artifact(folder, runtime, threads, profile_prefix=str(Path(tmp) / "ort"))
        count = [0]
        forward = lm.forward

        def counted(ids, *, last_only=False):
            count[0] += 1
            return forward(ids, last_only=last_only)

        lm.forward = counted
        first, prefill_end, end, steps = ops.drive(lm, prompt, gen, lambda: count[0])
        trace = json.loads(Path(lm.session.end_profiling()).read_text())
    return ops.event("onnxruntime profiler", ops.onnx_calls(trace, first, prefill_end, end), len(prompt), steps)
