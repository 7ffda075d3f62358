"""ONNX Runtime GenAI's model builder (0.11.4) as an ONNX exporter: which models it reproduces, what
it has to be told for some of them, and the mending its graph needs.

Found by fp32 parity on tiny random checkpoints (tests/targets/test_onnx.py), where the builder
does not do what transformers does:

- Llama 3 rope scaling: it looks for ``original_max_position_embeddings`` as an attribute of the
  ``rope_scaling`` dict, never finds it, and smooths the frequencies against
  ``max_position_embeddings`` instead. Told by a top-level ``original_max_position_embeddings``.
- linear rope scaling: ignored. Told as its position scale, ``rope_position_scale = 1 / factor``.
- LayerNorm's epsilon: read from ``rms_norm_eps`` only, else 1e-6 (Phi-2 has ``layer_norm_eps``
  1e-5). Told as ``rms_norm_eps``.
- which layers slide: fixed patterns (Gemma 2: the odd layers, where transformers has the even
  ones; Gemma 3: five of every six), not the config's ``layer_types``. Each GroupQueryAttention
  gets its layer's window, and for Gemma 3 its layer's rotary cache (local or global base), from
  ``layer_types``.
- Gemma's embedding scale: sqrt(hidden) rounded to two decimals (Gemma 3 270M: 25.3 for 25.298...).
  The graph's constant gets the exact value.

What it cannot be told, so the ``auto`` exporter takes optimum instead (``gaps``): the other rope
scaling kinds (yarn, longrope, ...), rope scaling on Gemma 3 (transformers scales its global layers
only), a head size that is not a multiple of 16 (its CPU attention kernel refuses it), Phi's q/k
LayerNorms.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.core.architectures import supporting

# model types whose builder graph tests/targets/test_onnx.py checks
ARCHITECTURES = tuple(supporting("genai"))
_GEMMAS = ("gemma", "gemma2", "gemma3_text")
# rope scaling kinds it reproduces, told or not (dynamic NTK equals the default within the context)
_ROPE_KINDS = ("default", "llama3", "linear", "dynamic")


def load_config(path: Path, trust_remote_code: bool):
    """The model's transformers config (normalized: rope_type, layer_types, head_dim...)."""
    from transformers import AutoConfig

    from edgekit.errors import EdgekitError

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EdgekitError(f"cannot read the config of {path}: "
                           f"{(str(e).strip() or type(e).__name__).splitlines()[0]}") from None


def gaps(model_type: str, config) -> list[str]:
    """What of this model the builder does not reproduce (nothing: it does)."""
    if model_type not in ARCHITECTURES:
        return [f"model type '{model_type}'"]
    config = getattr(config, "text_config", config)
    found = []
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim % 16:
        found.append(f"head size {head_dim} (its CPU attention takes multiples of 16)")
    kind = rope_kind(config)
    if kind not in _ROPE_KINDS or (kind != "default" and model_type == "gemma3_text"):
        found.append(f"rope scaling '{kind}'")
    if model_type == "phi" and getattr(config, "qk_layernorm", False):
        found.append("q/k LayerNorms")
    return found


def rope_kind(config) -> str:
    rope = getattr(config, "rope_scaling", None) or {}
    return rope.get("rope_type") or rope.get("type") or "default"


def told(config) -> dict:
    """Config entries that make the builder compute what transformers does (see the module's notes)."""
    config = getattr(config, "text_config", config)
    rope = getattr(config, "rope_scaling", None) or {}
    kind = rope_kind(config)
    out = {}
    if kind == "llama3":
        out["original_max_position_embeddings"] = rope["original_max_position_embeddings"]
    if kind == "linear":
        out["rope_position_scale"] = 1.0 / rope["factor"]
    if getattr(config, "rms_norm_eps", None) is None and getattr(config, "layer_norm_eps", None) is not None:
        out["rms_norm_eps"] = config.layer_norm_eps
    return out


def export(source, precision: str, folder: Path, config, options: dict) -> None:
    """Run the builder for the CPU into ``folder``, quiet unless it fails; the model folder it
    reads is a copy of ``source``'s (weights linked) with ``told(config)`` written into its config."""
    import contextlib
    import io
    import json
    import tempfile

    from edgekit.errors import EdgekitError

    log = io.StringIO()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model_path = source.path
        extra = told(config)
        if extra:
            model_path = Path(scratch) / "model"
            model_path.mkdir()
            for f in source.path.iterdir():
                if f.name != "config.json":
                    (model_path / f.name).symlink_to(f.resolve())
            raw = json.loads((source.path / "config.json").read_text())
            target = raw.get("text_config", raw)
            target.update(extra)
            (model_path / "config.json").write_text(json.dumps(raw, indent=2))
        try:
            from onnxruntime_genai.models.builder import create_model

            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                create_model(None, str(model_path), str(folder), precision, "cpu", str(Path(scratch) / "cache"),
                             **options)
        except Exception as e:  # the builder raises whatever its steps raise
            last = (str(e).strip() or type(e).__name__).splitlines()[0]
            raise EdgekitError(f"ONNX export of {source.spec} (genai builder) failed: {last}") from None


def mend(graph, model_type: str, config) -> None:
    """Make the builder's graph compute what transformers does where it does not (module notes):
    per-layer windows and rotary caches from ``layer_types``, Gemma's exact embedding scale."""
    import numpy as np
    from onnx import helper, numpy_helper

    from edgekit.errors import EdgekitError

    config = getattr(config, "text_config", config)
    layer_types = getattr(config, "layer_types", None)
    window = getattr(config, "sliding_window", None)
    if layer_types and window:
        names = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
        mended = 0
        for node in graph.node:
            if node.op_type != "GroupQueryAttention":
                continue
            layer = _layer_index(node.name)
            sliding = layer_types[layer] == "sliding_attention"
            for attr in node.attribute:
                if attr.name == "local_window_size":
                    node.attribute.remove(attr)
                    break
            node.attribute.append(helper.make_attribute("local_window_size", window if sliding else -1))
            for i, name in enumerate(node.input):  # Gemma 3: a rotary cache per kind of layer
                for kind in ("cos", "sin"):
                    if name in (f"{kind}_cache_local", f"{kind}_cache_global"):
                        want = f"{kind}_cache_{'local' if sliding else 'global'}"
                        if want not in names:
                            raise EdgekitError(f"genai builder graph: no {want} for layer {layer}")
                        node.input[i] = want
            mended += 1
        if mended != config.num_hidden_layers:
            raise EdgekitError(f"genai builder graph: {mended} attention nodes for {config.num_hidden_layers} layers")
    if model_type in _GEMMAS:
        scale = next((n for n in graph.node if n.op_type == "Mul" and n.name == "/model/embed_tokens/Mul"), None)
        if scale is None:
            raise EdgekitError("genai builder graph: no embedding scale for a Gemma model")
        exact = "/model/embed_tokens/scale"
        graph.initializer.append(numpy_helper.from_array(np.array(config.hidden_size**0.5, dtype=np.float32), exact))
        scale.input[1] = exact


def _layer_index(node_name: str) -> int:
    # the builder names them /model/layers.{i}/attn/GroupQueryAttention
    return int(node_name.split("/model/layers.", 1)[1].split("/", 1)[0])
