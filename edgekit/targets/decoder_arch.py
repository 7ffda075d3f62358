"""What the shared decoder (``decoder.py``) can express: one declarative row per HF ``model_type``,
and, for the architectures it cannot express, the feature it lacks.

No torch here: the targets built on the decoder (ExecuTorch, Core ML) ask ``refusal`` about a model's
config before anything heavy runs, and a model the decoder cannot reproduce is refused in one line
that names what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    """Where the HF module keeps each piece, and the features the config does not say by itself.

    What the config does say is read from it: the sliding window of each layer (``sliding_window``,
    ``layer_types``), the attention scale (the HF attention's ``scaling``: Gemma's
    ``query_pre_attn_scalar``), the final logit soft-cap, partial rotary, biases.
    """

    base: str = "model"  # the decoder stack inside the *ForCausalLM module (dotted path)
    layers: str = "layers"
    embed: str = "embed_tokens"  # an embedding that scales itself (Gemma 3's) is taken apart
    positions: str | None = None  # learned position embedding (GPT-2); None: rotary
    local_rotary: str | None = None  # the sliding layers' own rotary module (Gemma 3: another base)
    norm: str = "norm"
    ln1: str = "input_layernorm"
    ln2: str | None = "post_attention_layernorm"  # the MLP's input norm; None: parallel attention and MLP on ln1 (Phi-2)
    attn_out_norm: str | None = None  # a norm of the attention's output before the residual (Gemma 2/3)
    mlp_out_norm: str | None = None  # a norm of the MLP's output before the residual (Gemma 2/3)
    norm_offset: float = 0.0  # RMSNorm scales by (offset + weight) (Gemma: 1)
    attn: str = "self_attn"
    qkv: str | tuple[str, str, str] = ("q_proj", "k_proj", "v_proj")  # a str: one fused projection
    out: str = "o_proj"
    qk_norm: tuple[str, str] | None = None  # per-head norms of q and k before the rotary, where the module has them
    mlp: str | tuple[str, str] = ("gate_proj", "up_proj")  # gated: act(gate) * up; a str: fused gate/up
    mlp_out: str = "down_proj"
    gated: bool = True  # False: down(act(up(x))) with mlp = ("", up) (GPT-2)
    act: str = "act_fn"
    embed_scale: bool = False  # embeddings times sqrt(hidden) (Gemma)
    attn_softcap: bool = False  # attention scores soft-capped by the config's attn_logit_softcapping (Gemma 2)
    final_softcap: bool = False  # logits soft-capped by the config's final_logit_softcapping (Gemma 2/3)
    text_config: bool = False  # the config's text part holds the decoder's (a multimodal checkpoint)


_GEMMA_NORMS = dict(
    ln2="pre_feedforward_layernorm", attn_out_norm="post_attention_layernorm",
    mlp_out_norm="post_feedforward_layernorm", norm_offset=1.0,
)
_GEMMA3 = Arch(**_GEMMA_NORMS, qk_norm=("q_norm", "k_norm"), local_rotary="rotary_emb_local", final_softcap=True)

ARCHITECTURES = {
    "llama": Arch(),
    "mistral": Arch(),
    "qwen2": Arch(),
    "qwen3": Arch(qk_norm=("q_norm", "k_norm")),
    "gemma": Arch(embed_scale=True, norm_offset=1.0),
    "gemma2": Arch(**_GEMMA_NORMS, embed_scale=True, attn_softcap=True, final_softcap=True),
    "gemma3_text": _GEMMA3,
    # Gemma 3 4B and up: transformers loads them as Gemma3ForConditionalGeneration, whose head
    # applies no final soft-cap; only its language model is exported
    "gemma3": Arch(**{**vars(_GEMMA3), "base": "model.language_model", "final_softcap": False, "text_config": True}),
    "phi": Arch(
        norm="final_layernorm", ln2=None, out="dense", qk_norm=("q_layernorm", "k_layernorm"),
        mlp=("", "fc1"), mlp_out="fc2", gated=False, act="activation_fn",
    ),
    "phi3": Arch(qkv="qkv_proj", mlp="gate_up_proj", act="activation_fn"),
    "gpt2": Arch(
        base="transformer", layers="h", embed="wte", positions="wpe", norm="ln_f", ln1="ln_1", ln2="ln_2",
        attn="attn", qkv="c_attn", out="c_proj", mlp=("", "c_fc"), mlp_out="c_proj", gated=False, act="act",
    ),
}

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
