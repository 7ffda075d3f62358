"""The ONNX artifact as an ONNX Runtime GenAI model folder: the ``genai_config.json`` every ONNX
artifact carries, written from what edgekit knows of the graph and the model, and the check that the
folder loads and generates in GenAI's own API (``onnxruntime_genai.Model`` + ``Generator``), what an
app ships with.

The config names the graph's inputs and outputs (``past_key_values.%d.key``/``present.%d.key``),
whether the cache is one buffer per layer updated in place (the builder's GroupQueryAttention graph:
``past_present_share_buffer``) or grows by concatenation (optimum's graph), the context length (the
manifest's ``max_context``), the model's BOS, pad and every stop id (``edgekit.model_meta``: the EOS
and the end-of-turn ids), and the search defaults of the model's ``generation_config.json`` (greedy
unless it says to sample). GenAI reads the tokenizer from ``tokenizer.json`` and
``tokenizer_config.json``, which every artifact has.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.errors import first_line
from edgekit.runtime import native_output

CONFIG = "genai_config.json"
RUNTIME = "onnxruntime-genai"
API = "onnxruntime_genai.Model + Generator"

# model types GenAI 0.11 runs as a plain decoder (``DecoderOnly_Model``) with nothing of its own; the rest
# are written as its generic "decoder" (gpt2 would take its old combined-cache model, phi3 a rope rewind)
_PLAIN_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "granite", "olmo", "phi",
                "smollm3", "nemotron", "ernie4_5")
# generation_config.json keys GenAI's search takes, with its defaults
_SEARCH = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.0,
           "length_penalty": 1.0, "no_repeat_ngram_size": 0, "num_beams": 1, "diversity_penalty": 0.0}


def graph_io(graph) -> dict:
    """What the config says of a decoder graph (an ``onnx.GraphProto``): its input names, output
    names, and per layer's cache the number of KV heads and the head size."""
    inputs = [i.name for i in graph.input]
    past = [i for i in graph.input if i.name.startswith("past_key_values.") and i.name.endswith(".key")]
    dims = [d.dim_value for d in past[0].type.tensor_type.shape.dim] if past else [0, 0, 0, 0]
    return {"inputs": inputs, "outputs": [o.name for o in graph.output], "layers": len(past),
            "kv_heads": dims[1], "head_size": dims[3]}


def config(io: dict, model_config, meta, generation: dict, *, model_file: str, max_context: int,
           shared: bool) -> dict:
    """The ``genai_config.json`` of a graph (``graph_io``) of a model (its transformers config, its
    ``model_meta`` and its ``generation_config.json``) whose cache is ``shared`` or grows by concat."""
    text = getattr(model_config, "text_config", model_config)
    inputs = {"input_ids": "input_ids"}
    for name in ("attention_mask", "position_ids"):
        if name in io["inputs"]:
            inputs[name] = name
    inputs |= {"past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"}
    outputs = {"logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value"}
    model_type = getattr(text, "model_type", "")
    eos = list(meta.eos_ids)
    model = {
        "type": model_type if model_type in _PLAIN_TYPES else "decoder",
        "context_length": max_context,
        "vocab_size": int(text.vocab_size),
        **({"bos_token_id": meta.bos_id} if meta.bos_id is not None else {}),
        "eos_token_id": eos,
        "pad_token_id": meta.pad_id if meta.pad_id is not None else (eos[0] if eos else 0),
        "decoder": {
            # errors only: ORT's notes on loading (an input with a default among them) are not an app's concern
            "session_options": {"log_id": RUNTIME, "log_severity_level": 3, "provider_options": []},
            "filename": model_file,
            "head_size": io["head_size"],
            "hidden_size": int(text.hidden_size),
            "num_attention_heads": int(text.num_attention_heads),
            "num_hidden_layers": io["layers"],
            "num_key_value_heads": io["kv_heads"],
            "inputs": inputs,
            "outputs": outputs,
        },
    }
    search = {key: default if generation.get(key) is None else generation[key] for key, default in _SEARCH.items()}
    search |= {"min_length": 0, "max_length": max_context, "num_return_sequences": 1, "early_stopping": True,
               "past_present_share_buffer": shared}
    return {"model": model, "search": dict(sorted(search.items()))}


def write_config(folder: Path, source, model_config, io: dict, *, model_file: str, max_context: int,
                 shared: bool) -> None:
    """Write ``genai_config.json`` into the artifact ``folder`` (see ``config``)."""
    from edgekit import model_meta

    generation = model_meta.json_object(source.path / "generation_config.json")
    value = config(io, model_config, model_meta.of(source), generation, model_file=model_file,
                   max_context=max_context, shared=shared)
    (folder / CONFIG).write_text(json.dumps(value, indent=2) + "\n")


def standard_check(folder: Path, prompt: list[int], expected: list[int]) -> dict:
    """Load the artifact ``folder`` in ONNX Runtime GenAI (``og.Model``), greedily generate
    ``len(expected)`` tokens after the token ids ``prompt`` with ``og.Generator`` (stopping early at a
    stop id), and return what it did: ``{"runtime", "version", "api", "loaded": True, "tokens"}``, or
    ``"loaded": False`` with the ``error`` in one line. What the runtime writes to stderr is kept
    off the terminal."""
    record = {"runtime": RUNTIME, "version": None, "api": API}
    try:
        import onnxruntime_genai as og
    except ImportError:
        return {**record, "loaded": False,
                "error": "onnxruntime-genai is not installed (pip install onnxruntime-genai)"}
    record["version"] = og.__version__
    try:
        with native_output():
            tokens = _generate(og, Path(folder), list(prompt), len(expected))
    except Exception as e:  # GenAI raises a bare RuntimeError (OrtException) for what it cannot load or run
        return {**record, "loaded": False, "error": first_line(e)}
    return {**record, "loaded": True, "tokens": tokens}


def _generate(og, folder: Path, prompt: list[int], count: int) -> list[int]:
    if not (folder / CONFIG).is_file():
        raise RuntimeError(f"{folder} has no {CONFIG}")
    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    # greedy, with a cache no longer than the sequence (a shared cache is allocated at max_length)
    params.set_search_options(do_sample=False, num_beams=1, max_length=len(prompt) + max(count, 1))
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    tokens: list[int] = []
    while len(tokens) < count and not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return tokens


