"""The one table of model architectures: per HF ``model_type``, what each exporter knows of it.

A row says how edgekit's shared decoder reproduces the model (``decoder``: the ExecuTorch and Core ML
targets take what it takes), which llama.cpp architecture a GGUF file of it declares (``gguf``), whether
ONNX Runtime GenAI's model builder reproduces it (``genai``, checked by tests/targets/test_onnx.py), and
the config of its random tiny checkpoint (``tiny``: ``edgekit.synthetic``, what the tests export). A
target derives the model types it takes from here (``supporting``); optimum-onnx's own registry adds
the rest for ONNX. No torch here.
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
    # the MLP's input norm; None: parallel attention and MLP on ln1 (Phi-2)
    ln2: str | None = "post_attention_layernorm"
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


@dataclass(frozen=True)
class Architecture:
    decoder: Arch | None = None  # the shared decoder's description; None: it cannot reproduce the model
    gguf: str | None = None  # the gguf package's MODEL_ARCH member (Mistral's dense models are llama.cpp's llama)
    genai: bool = False  # ONNX Runtime GenAI's model builder reproduces it (at fp32 parity on the tiny model)
    tiny: tuple[str, dict] | None = None  # (transformers config class, its kwargs): the random tiny checkpoint


_GEMMA_NORMS = dict(
    ln2="pre_feedforward_layernorm", attn_out_norm="post_attention_layernorm",
    mlp_out_norm="post_feedforward_layernorm", norm_offset=1.0,
)
_GEMMA3 = Arch(**_GEMMA_NORMS, qk_norm=("q_norm", "k_norm"), local_rotary="rotary_emb_local", final_softcap=True)
_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=256)
# Gemma 3: a sliding-window layer then a global one, the window (8) shorter than every parity
# sequence; q/k norms, four norms per layer, local and global rope bases, an embedding scale
# sqrt(80) that is not a round number (as Gemma 3 270M's sqrt(640)), and a query scale that is
# not 1/sqrt(head_dim) (as Gemma 3 27B's)
_TINY_GEMMA3 = dict(
    hidden_size=80, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=16, max_position_embeddings=256, sliding_window=8, layer_types=["sliding_attention", "full_attention"],
    query_pre_attn_scalar=24)

# model_type -> what each exporter knows of it; tiny configs' vocab_size comes from the test tokenizer
ARCHITECTURES = {
    "llama": Architecture(Arch(), "LLAMA", True, ("LlamaConfig", dict(_SMALL))),
    "mistral": Architecture(Arch(), "LLAMA", True, ("MistralConfig", dict(_SMALL, sliding_window=None))),
    "qwen2": Architecture(Arch(), "QWEN2", True, ("Qwen2Config", dict(_SMALL, tie_word_embeddings=True))),
    "qwen3": Architecture(
        Arch(qk_norm=("q_norm", "k_norm")), "QWEN3", True, ("Qwen3Config", dict(_SMALL, head_dim=16))),
    "phi3": Architecture(
        Arch(qkv="qkv_proj", mlp="gate_up_proj", act="activation_fn"), "PHI3", True,
        ("Phi3Config", dict(_SMALL, original_max_position_embeddings=256, pad_token_id=0))),
    "gemma": Architecture(
        Arch(embed_scale=True, norm_offset=1.0), "GEMMA", True,
        ("GemmaConfig", dict(_SMALL, num_key_value_heads=1, head_dim=16))),
    "gpt2": Architecture(
        Arch(base="transformer", layers="h", embed="wte", positions="wpe", norm="ln_f", ln1="ln_1", ln2="ln_2",
             attn="attn", qkv="c_attn", out="c_proj", mlp=("", "c_fc"), mlp_out="c_proj", gated=False, act="act"),
        "GPT2", False, ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=256))),
    "gemma3_text": Architecture(_GEMMA3, "GEMMA3", True, ("Gemma3TextConfig", _TINY_GEMMA3)),
    # Gemma 2: sliding and global layers alternating (window 8), attention and final logit
    # soft-capping at values the random weights' scores and logits reach, so the caps bend them
    # (transformers' default SDPA attention drops the attention cap: compare with eager attention)
    "gemma2": Architecture(
        Arch(**_GEMMA_NORMS, embed_scale=True, attn_softcap=True, final_softcap=True), "GEMMA2", True,
        ("Gemma2Config", dict(
            _SMALL, head_dim=16, sliding_window=8, layer_types=["sliding_attention", "full_attention"],
            query_pre_attn_scalar=24, attn_logit_softcapping=0.1, final_logit_softcapping=0.5))),
    # Phi-2: parallel attention and MLP, LayerNorm, biases everywhere (the head's too), untied head,
    # and Phi-2's head: 80 wide, rotary on 40% of it (32)
    "phi": Architecture(
        Arch(norm="final_layernorm", ln2=None, out="dense", qk_norm=("q_layernorm", "k_layernorm"),
             mlp=("", "fc1"), mlp_out="fc2", gated=False, act="activation_fn"),
        "PHI2", True,
        ("PhiConfig", dict(hidden_size=160, intermediate_size=320, num_hidden_layers=2, num_attention_heads=2,
                           partial_rotary_factor=0.4, max_position_embeddings=256))),
    # Granite 3 (ONNX through optimum only): Granite 3.x 2B's scalars in place of 1/sqrt(head_dim) and
    # plain sums (embedding, residual and attention multipliers, logits divided by a scale)
    "granite": Architecture(tiny=("GraniteConfig", dict(
        _SMALL, embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.015625,
        logits_scaling=8.0, tie_word_embeddings=True))),
    # SmolLM3 (ONNX through optimum only): a layer without rotary embedding (NoPE) every second layer
    "smollm3": Architecture(tiny=("SmolLM3Config", dict(_SMALL, no_rope_layer_interval=2, pad_token_id=0))),
    # Gemma 3 4B and up: transformers loads them as Gemma3ForConditionalGeneration, whose head applies
    # no final soft-cap; only its language model is exported. The tiny one: a tiny SigLIP tower beside
    # the tiny gemma3_text; vocabulary and special tokens go to its text model
    "gemma3": Architecture(
        Arch(**{**vars(_GEMMA3), "base": "model.language_model", "final_softcap": False, "text_config": True}),
        tiny=("Gemma3Config", dict(
            text_config=dict(_TINY_GEMMA3), mm_tokens_per_image=4,
            vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                               image_size=28, patch_size=14)))),
}


def supporting(feature: str) -> dict:
    """model_type -> the value of ``feature`` ("decoder", "gguf", "genai", "tiny") where a row has it."""
    return {t: getattr(a, feature) for t, a in ARCHITECTURES.items() if getattr(a, feature)}
