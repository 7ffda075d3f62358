"""ONNX Runtime backend: an optimum-style decoder with ``past_key_values.N.key/value`` inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OnnxLM:
    def __init__(self, model_file: Path, *, max_context: int, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
        self.max_context = max_context
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_names = set(inputs)
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        self.output_names = ["logits", *self.present_names]
        self.vocab_size = int(self.session.get_outputs()[0].shape[-1])
        self._empty = {}
        for name in self.past_names:
            spec = inputs[name]
            _, heads, _, head_dim = spec.shape
            self._empty[name] = np.zeros((1, heads, 0, head_dim), dtype=_DTYPES[spec.type])
        self.reset()

    def reset(self) -> None:
        self.past = dict(self._empty)
        self.length = 0

    def forward(self, ids: list[int]) -> np.ndarray:
        n = len(ids)
        if self.length + n > self.max_context:
            raise ValueError(f"sequence of {self.length + n} tokens exceeds the context of {self.max_context}")
        feed = {"input_ids": np.asarray([ids], dtype=np.int64)}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = np.ones((1, self.length + n), dtype=np.int64)
        if "position_ids" in self.input_names:
            feed["position_ids"] = np.arange(self.length, self.length + n, dtype=np.int64)[None, :]
        feed.update(self.past)
        logits, *present = self.session.run(self.output_names, feed)
        self.past = dict(zip(self.past_names, present))
        self.length += n
        return logits[0].astype(np.float32, copy=False)


def open_artifact(folder: Path, runtime: dict, threads: int | None) -> OnnxLM:
    return OnnxLM(folder / runtime["model_file"], max_context=runtime["max_context"], threads=threads)
