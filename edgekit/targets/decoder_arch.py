"""What the shared decoder (``decoder.py``) can express: one declarative row per HF ``model_type``,
and, for the architectures it cannot express, the feature it lacks.

No torch here: the targets built on the decoder (ExecuTorch, Core ML) ask ``refusal`` about a model's
config before anything heavy runs, and a model the decoder cannot reproduce is refused in one line
that names what is missing.
"""

from __future__ import annotations

from edgekit.core.architectures import Arch, supporting

__all__ = ["ARCHITECTURES", "Arch", "MISSING", "refusal"]

ARCHITECTURES: dict[str, Arch] = supporting("decoder")  # model_type -> how the decoder reproduces it

_MOE = "mixture-of-experts MLP"
_RECURRENT = "recurrent / state-space layers instead of attention"
# model_type -> what the decoder lacks to reproduce it
MISSING = {
    "gpt_neox": "parallel attention and MLP with two separate norms; q/k/v fused and interleaved per head",
    "gptj": "GPT-J's interleaved (rotate-every-two) rotary embedding",
    "codegen": "GPT-J's interleaved rotary embedding in a per-head fused qkv layout",
    "cohere": "interleaved rotary embedding and a logit scale",
    "cohere2": "interleaved rotary embedding and a logit scale",
    "bloom": "ALiBi position biases",
    "mpt": "ALiBi position biases",
    "falcon": "ALiBi or a parallel block with multi-query fused qkv",
    "gpt_neo": "unscaled attention with local-attention layers",
    "gpt_bigcode": "multi-query attention fused into c_attn",
    "opt": "learned positions with an offset, optional input/output projections",
    "granite": "embedding, residual, attention and logit multipliers",
    "olmo": "non-parametric LayerNorm and q/k/v clipping",
    "olmo2": "norms after attention and MLP only, q/k norms over all heads",
    "smollm3": "layers without rotary embedding (NoPE)",
    "gemma3n": "AltUp, Laurel and per-layer embeddings",
    "llama4": f"chunked attention and a {_MOE}",
    **{t: _MOE for t in ("mixtral", "qwen2_moe", "qwen3_moe", "phimoe", "olmoe", "granitemoe", "dbrx",
                         "deepseek_v2", "deepseek_v3", "jetmoe", "gpt_oss")},
    **{t: _RECURRENT for t in ("mamba", "mamba2", "falcon_mamba", "rwkv", "recurrent_gemma", "jamba", "zamba",
                               "zamba2", "falcon_h1", "lfm2")},
}

_LAYER_TYPES = ("full_attention", "sliding_attention")


def refusal(target: str, config: dict) -> str | None:
    """Why the decoder cannot reproduce the model of ``config`` (its config.json), in one line that
    names the missing feature; None when it can."""
    model_type = config.get("model_type", "")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        why = MISSING.get(model_type) or (
            f"not an architecture edgekit's decoder knows; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
        return f"{target}: {model_type or '?'} is not supported ({why})"
    if arch.text_config:
        text = config.get("text_config") or {}
        inner = text.get("model_type", "?")
        if inner not in ARCHITECTURES or ARCHITECTURES[inner].text_config:
            return f"{target}: {model_type} is supported with a text model the decoder knows, not '{inner}'"
        config = text
    missing = _missing_feature(config)
    return f"{target}: {model_type} with {missing} is not supported" if missing else None


def _missing_feature(config: dict) -> str | None:
    kinds = sorted({t for t in config.get("layer_types") or () if t not in _LAYER_TYPES})
    if kinds:
        return f"attention layers of type {', '.join(kinds)}"
    if config.get("use_bidirectional_attention"):
        return "bidirectional attention"
    return None
