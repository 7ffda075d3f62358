"""GGUF target: llama.cpp's file format, written with the ``gguf`` package, quantized by llama.cpp.

The HF model (loaded as every target loads it) is written as a float32 GGUF: tensor names from the
gguf package's own maps (``get_tensor_name_map``), the hyper-parameters and the tokenizer llama.cpp
reads, and llama.cpp's conventions (Q/K rows permuted for its rotary layout on the llama
architecture, Gemma's norms as 1 + w, GPT-2's Conv1D weights transposed, no ``output.weight`` when
the head is tied to the embedding; Gemma 2/3's query scale folded into the queries where
llama.cpp's differs). Every recipe but fp32 then runs llama.cpp's own quantizer
(``llama_model_quantize``, default parameters; ``-imatrix`` recipes give it an importance matrix
from the model's activations on a calibration text) on that file and removes it. What runs
llama.cpp's native code (quantizing, loading the written file) runs in a child process
(``gguf_native``), so an abort in llama.cpp is a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit import calibration
from edgekit.core.architectures import supporting
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.source import ModelSource, is_gguf
from edgekit.targets import Target
from edgekit.targets.gguf_chat import standard_check  # noqa: F401  (the artifact in llama_cpp.Llama)

MODEL_FILE = "model.gguf"
DEFAULT_MAX_CONTEXT = 2048

# HF model_type -> gguf MODEL_ARCH member (Mistral's dense models are llama.cpp's llama architecture)
_ARCH: dict[str, str] = supporting("gguf")
SUPPORTED = tuple(_ARCH)
TARGET = Target(
    exporter=__name__, backend="edgekit.runtime.llamacpp", toolchain=("gguf", "llama_cpp_python"),
    runtime=("llama_cpp_python",),
    arm64_wheels="llama-cpp-python is a source package, built with llama.cpp on each machine: no aarch64 runtime",
    preflight="edgekit.targets.gguf_native:preflight",
)
_PERMUTED_QK = ("llama", "mistral")  # llama.cpp's llama graph rotates interleaved pairs: permute Q/K rows
_GEMMAS = ("gemma", "gemma2", "gemma3_text")  # RMSNorm scaling by (1 + w) in HF
_SLIDING = ("gemma2", "gemma3_text")  # llama.cpp graphs with sliding-window layers (the file says which)
_TANH_GELU = ("gelu_pytorch_tanh", "gelu_new", "gelu_fast")  # what llama.cpp's GELU computes
# recipe scheme -> llama.cpp file type (llama_ftype) made by its quantizer
_FTYPES = {"fp16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0", "int8": "MOSTLY_Q8_0", "q4_0": "MOSTLY_Q4_0",
           "int4": "MOSTLY_Q4_0", "q4_k_m": "MOSTLY_Q4_K_M"}
# tokenizer.json split regexes of byte-level BPE tokenizers -> llama.cpp's pre-tokenizer of the same rule
_SPLIT_PRE = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}
_LAYERS_27B = {"gemma2": 46, "gemma3_text": 62}  # llama.cpp's 27B type, whose attention scale differs
_SKIPPED = ("rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias")  # buffers, not weights


def export(source: ModelSource, recipe: Recipe, folder: Path, stage) -> dict:
    gguf = _packages()
    import torch

    from edgekit.core.model import load_model, model_context, non_finite_weight
    from edgekit.targets.decoder import cache_length

    from transformers import AutoConfig

    # refused before the weights load
    _check_reproducible(source, AutoConfig.from_pretrained(source.path, trust_remote_code=source.trust_remote_code))
    limit = model_context(source.path)
    calibration_text = calibration.text(recipe) if recipe.method is not None else None
    final = folder / MODEL_FILE
    written = final if recipe.scheme == "fp32" else folder / ".model.f32.gguf"
    importance = folder / ".imatrix.npz" if recipe.method == "imatrix" else None
    calibrated = None
    try:
        with stage("load"):
            model = load_model(source, torch.float32)
            max_context = min(recipe.max_context or DEFAULT_MAX_CONTEXT, limit)
            if source.model_type not in _SLIDING:  # a graph without a window is exact within one
                max_context = cache_length(model.config, max_context)
            broken = non_finite_weight(model) if recipe.scheme != "fp32" else None
            if broken is not None:
                raise EdgekitError(f"{source.spec}: weight {broken} holds NaN or infinite values; "
                                   f"{recipe.name} cannot quantize it (the checkpoint is damaged)")
        if importance is not None:
            with stage("calibrate"):
                calibrated = _importance_matrix(gguf, source, model, calibration_text, importance)
        with stage("write gguf"):
            tokenizer = _write(gguf, source, model, written)
            del model
        if recipe.scheme != "fp32":
            with stage(f"quantize {recipe.name}"):
                _quantize(written, final, _FTYPES[recipe.scheme], importance)
        with stage("tokenizer check"):
            tokenizer["matches_hf"] = _tokenizer_matches(source, final)
    finally:
        if written != final:
            written.unlink(missing_ok=True)
        if importance is not None:
            importance.unlink(missing_ok=True)
    extra = {} if calibrated is None else {"calibration": calibrated}
    return {
        "model_file": MODEL_FILE,
        "runtime": "llama.cpp",
        "max_context": max_context,
        "gguf_arch": _arch_name(gguf, source.model_type),
        "file_type": "ALL_F32" if recipe.scheme == "fp32" else _FTYPES[recipe.scheme],
        # fp32 is the exact reference: float32 cache and no flash attention (llama.cpp's CPU kernel
        # rounds Q to float16: |dlogit| 5e-3 on builtin:tiny instead of 1e-5); the rest: llama.cpp's defaults
        "kv_cache": "f32" if recipe.scheme == "fp32" else "f16",
        "flash_attn": "off" if recipe.scheme == "fp32" else "auto",
        "tokenizer": tokenizer,
        **extra,
    }


def _packages():
    try:
        import gguf
        import llama_cpp  # noqa: F401  (quantizing and checking run it in a child process)
    except ImportError as e:
        raise EdgekitError(
            f"the gguf target needs the gguf package and llama-cpp-python: bash scripts/setup.sh ({e})"
        ) from None
    return gguf


def _arch_name(gguf, model_type: str) -> str:
    return gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[_ARCH[model_type]]]


# ---------------------------------------------------------------- writing the float32 GGUF


def _write(gguf, source: ModelSource, model, path: Path) -> dict:
    """Write ``model`` as a float32 GGUF at ``path``; returns what was written about the tokenizer."""
    cfg = model.config
    arch = _ARCH[source.model_type]
    writer = gguf.GGUFWriter(str(path), _arch_name(gguf, source.model_type))
    _hyperparameters(writer, gguf, source, cfg)
    tokenizer = _tokenizer(writer, gguf, source, cfg)
    n_layers = cfg.num_hidden_layers
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch], n_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for name, tensor in model.state_dict().items():
        if name.endswith(_SKIPPED) or (tied and name == "lm_head.weight"):
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise EdgekitError(f"no GGUF tensor name for {name} of {source.spec} ({source.model_type})")
        writer.add_tensor(gguf_name, _convert(source.model_type, cfg, name, tensor.float().numpy()))
    for name, factors in _rope_freqs(source, cfg).items():
        writer.add_tensor(name, factors)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return tokenizer


def _hyperparameters(w, gguf, source: ModelSource, cfg) -> None:
    mt = source.model_type
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(cfg.vocab_size)
    w.add_block_count(cfg.num_hidden_layers)
    if mt == "gpt2":
        w.add_context_length(cfg.n_positions)
        w.add_embedding_length(cfg.n_embd)
        w.add_feed_forward_length(cfg.n_inner or 4 * cfg.n_embd)
        w.add_head_count(cfg.n_head)
        w.add_head_count_kv(cfg.n_head)
        w.add_layer_norm_eps(cfg.layer_norm_epsilon)
        return
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(getattr(cfg, "num_key_value_heads", None) or heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(int(head_dim * (getattr(cfg, "partial_rotary_factor", None) or 1.0)))
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", 10000.0)))
    if mt == "phi":
        w.add_layer_norm_eps(cfg.layer_norm_eps)
    else:
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if mt in _SLIDING:
        # which layers slide, per layer (llama.cpp's own default is every layer but each 2nd / 6th)
        window = cfg.sliding_window
        w.add_sliding_window_pattern([bool(window) and t == "sliding_attention" for t in cfg.layer_types])
        if window:
            w.add_sliding_window(window)
    if mt == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if mt == "gemma3_text":
        w.add_rope_freq_base_swa(float(cfg.rope_local_base_freq))  # the sliding layers' rope base
        if cfg.final_logit_softcapping:
            w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    scaling = _rope_scaling(source, cfg)
    if scaling == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(cfg.rope_scaling["factor"]))


def _check_reproducible(source: ModelSource, cfg) -> None:
    """Refuse, in one line naming the feature, a checkpoint that llama.cpp's graph for its
    architecture would not compute as transformers does."""
    _rope_scaling(source, cfg)
    missing = _missing_feature(source.model_type, cfg)
    if missing:
        raise EdgekitError(f"{source.spec} ({source.model_type}) has {missing}; the gguf target cannot reproduce it")


def _missing_feature(mt: str, cfg) -> str | None:
    arch = _ARCH[mt].lower()
    act = getattr(cfg, "hidden_activation", None) or getattr(cfg, "hidden_act", None)
    if mt in ("phi", *_SLIDING) and act not in _TANH_GELU:
        return f"activation '{act}', where llama.cpp's {arch} graph computes tanh-approximated GELU"
    if mt == "phi" and getattr(cfg, "qk_layernorm", False):
        return "q/k LayerNorms (qk_layernorm), which llama.cpp's phi2 graph does not have"
    if mt == "gemma2":
        if not cfg.tie_word_embeddings:
            return "an output head apart from the embedding, which llama.cpp's gemma2 does not load"
        if not cfg.attn_logit_softcapping or not cfg.final_logit_softcapping:
            return ("no attention or final logit soft-capping, which llama.cpp's gemma2 graph always applies "
                    "(50 / 30 where the file has none)")
    return None


def _query_scale_fix(mt: str, cfg) -> float:
    """What the queries must be multiplied by for llama.cpp's attention scale to equal HF's.

    HF Gemma 2/3 scale scores by query_pre_attn_scalar ** -0.5; llama.cpp by 1 / sqrt(head_dim), or
    1 / sqrt(hidden / heads) for its 27B types (known by their layer count), and reads no key for it.
    Scores are linear in the queries, so the ratio goes into the query projection (Gemma 2) or
    into the q norm that follows it (Gemma 3)."""
    if mt not in _SLIDING:
        return 1.0
    if cfg.num_hidden_layers == _LAYERS_27B[mt]:
        llama_cpp = (cfg.hidden_size // cfg.num_attention_heads) ** -0.5
    else:
        llama_cpp = cfg.head_dim ** -0.5
    return float(cfg.query_pre_attn_scalar) ** -0.5 / llama_cpp


def _rope_scaling(source: ModelSource, cfg) -> str:
    """The checkpoint's rope scaling, when llama.cpp can reproduce it: default, linear, or llama3
    (as per-frequency factors, on the llama architecture). Others are refused."""
    rs = getattr(cfg, "rope_scaling", None) or {}
    kind = rs.get("rope_type") or rs.get("type") or "default"
    if kind in ("default", "linear") or (kind == "llama3" and source.model_type in _PERMUTED_QK):
        return kind
    raise EdgekitError(f"{source.spec} uses '{kind}' rope scaling, which the gguf target does not write")


def _rope_freqs(source: ModelSource, cfg) -> dict:
    """llama3 rope scaling as llama.cpp's ``rope_freqs`` tensor: per frequency, base / scaled."""
    if _rope_scaling(source, cfg) != "llama3":
        return {}
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    base, _ = ROPE_INIT_FUNCTIONS["default"](cfg, "cpu")
    return {"rope_freqs.weight": (base / scaled).float().numpy()}


def _convert(model_type: str, cfg, name: str, w):
    """An HF tensor in llama.cpp's convention for its architecture."""
    if model_type in _PERMUTED_QK and name.endswith(("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias")):
        heads = cfg.num_attention_heads if ".q_proj." in name else (cfg.num_key_value_heads or cfg.num_attention_heads)
        w = w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    elif model_type in _GEMMAS and name.endswith("norm.weight"):
        w = w + 1.0  # HF Gemma's RMSNorm scales by (1 + w); llama.cpp's by w
        if name.endswith("self_attn.q_norm.weight"):
            w = w * _query_scale_fix(model_type, cfg)
    elif model_type == "gemma2" and name.endswith("q_proj.weight"):
        w = w * _query_scale_fix(model_type, cfg)
    elif model_type == "gpt2" and name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
        w = w.T  # HF GPT-2 keeps these as Conv1D (in, out)
    import numpy as np

    return np.ascontiguousarray(w, dtype=np.float32)


# ---------------------------------------------------------------- tokenizer


def _tokenizer(w, gguf, source: ModelSource, cfg) -> dict:
    """The HF fast tokenizer as llama.cpp's vocabulary: byte-level BPE as ``gpt2`` (tokens, merges
    and the pre-tokenizer of the same splitting rule), SentencePiece-style BPE (``▁`` for spaces,
    byte fallback) as ``llama``. The runner feeds token ids and never tokenizes; this makes the file
    whole for llama.cpp. Then the metadata an app's chat reads (``gguf_chat.write_metadata``): name,
    licence, chat template, end-of-turn ids, and every ``general.*``/``tokenizer.*`` key of a GGUF
    source or of the original GGUF a checkpoint was rebuilt from (its pre-tokenizer name, BOS/EOS ids
    and flags: transformers' rebuild loses them)."""
    from edgekit import model_meta
    from edgekit.targets import gguf_chat

    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
        spec = json.loads(hf.backend_tokenizer.to_str())
    except (OSError, ValueError, AttributeError) as e:
        raise EdgekitError(f"{source.spec} has no usable fast tokenizer: {str(e).splitlines()[0]}") from None
    model = spec["model"]
    if model.get("type") != "BPE":
        raise EdgekitError(f"{source.spec} has a {model.get('type')} tokenizer; the gguf target writes BPE tokenizers")
    vocab = dict(model["vocab"])
    added = {t["id"]: t for t in spec.get("added_tokens", [])}
    for i, t in added.items():
        vocab[t["content"]] = i
    size = cfg.vocab_size  # the embedding's rows; a model may have more than its tokenizer uses
    if max(vocab.values()) >= size:
        raise EdgekitError(
            f"the tokenizer of {source.spec} has ids up to {max(vocab.values())}, past the model's vocab_size {size}"
        )
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = gguf.TokenType.NORMAL
    for i, t in added.items():
        types[i] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    original = _original_gguf(source)
    carried = gguf_chat.source_metadata(source, original)
    meta = model_meta.of(source)
    # byte-level BPE maps every byte to a printable character (a ByteLevel pre-tokenizer), whether or
    # not the model also sets byte_fallback (transformers' rebuild of a GGUF's gpt2 vocabulary does):
    # llama.cpp's SPM loader would look for <0xNN> byte tokens such a vocabulary does not have
    spm = bool(model.get("byte_fallback")) and not _byte_level(spec)
    if spm:
        kind, pre = "llama", "default"
        for i, text in enumerate(tokens):
            if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
                types[i] = gguf.TokenType.BYTE
        if model.get("unk_token") in vocab:
            types[vocab[model["unk_token"]]] = gguf.TokenType.UNKNOWN
            w.add_unk_token_id(vocab[model["unk_token"]])
        w.add_tokenizer_model(kind)
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_scores([-float(i) for i in range(size)])  # SentencePiece BPE ranks merges by id order
        w.add_token_types(types)
    else:
        kind = "gpt2"
        pre = carried.get("tokenizer.ggml.pre") or _pre_tokenizer(spec)
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
        w.add_tokenizer_model(kind)
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
    # the ids model_meta reads (a GGUF source's own, else generation_config / config / tokenizer_config),
    # the tokenizer's where it has none; a carried GGUF's keys replace them in write_metadata
    special = {"bos": meta.bos_id if meta.bos_id is not None else hf.bos_token_id,
               "eos": meta.eos_id if meta.eos_id is not None else _generation_eos(cfg, hf.eos_token_id),
               "pad": meta.pad_id if meta.pad_id is not None else hf.pad_token_id}
    special = {k: v for k, v in special.items() if v is not None}
    for key, token_id in special.items():
        getattr(w, f"add_{key}_token_id")(token_id)
    plain, full = hf("a", add_special_tokens=False).input_ids, hf("a").input_ids  # what the tokenizer adds
    n = len(plain)
    add_bos = len(full) > n and full[0] == special.get("bos") and full[1 : n + 1] == plain
    add_eos = len(full) > n and full[-1] == special.get("eos") and full[-n - 1 : -1] == plain
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(add_eos)
    gguf_chat.write_metadata(w, source, tokens, carried)
    out = {"model": kind, "pre": pre, "tokens": size}
    if carried:
        out["from_gguf"] = source.gguf.file if source.gguf is not None else original["file"]
    return out


def _generation_eos(cfg, tokenizer_eos: int | None) -> int | None:
    """The EOS llama.cpp stops at: the one HF generation stops at (the model config's), the
    tokenizer's where the config has none (or lists several, the tokenizer's among them).
    transformers' rebuild of SmolLM2's tokenizer from its GGUF says <|im_start|> where the config
    (and the original GGUF) say <|im_end|>."""
    eos = getattr(cfg, "eos_token_id", None)
    if isinstance(eos, (list, tuple)):
        return tokenizer_eos if tokenizer_eos in eos or not eos else eos[0]
    return tokenizer_eos if eos is None else eos


def _pre_parts(spec: dict) -> list[dict]:
    """The tokenizer's pre-tokenizers, in order (a Sequence unpacked)."""
    pre = spec.get("pre_tokenizer") or {}
    return pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]


def _byte_level(spec: dict) -> bool:
    return any(p.get("type") == "ByteLevel" for p in _pre_parts(spec))


def _original_gguf(source: ModelSource) -> dict:
    """The ``general.*``/``tokenizer.*`` keys (``metadata``) of the GGUF this checkpoint was converted
    from, and its ``file`` name, where the folder holds it: as ``tokenizer.model`` (where transformers'
    LlamaTokenizer saves the GGUF it rebuilt the tokenizer from) or as the folder's one ``.gguf`` file.
    Empty otherwise. transformers 4.57's rebuild drops the pre-tokenizer name (SmolLM2's ``smollm``
    splits digits one by one, the rebuilt tokenizer.json does not) and the special tokens (SmolLM2's
    EOS becomes ``<|im_start|>``)."""
    ggufs = sorted(source.path.glob("*.gguf"))
    candidates = [source.path / "tokenizer.model", *(ggufs if len(ggufs) == 1 else [])]
    path = next((p for p in candidates if is_gguf(p)), None)
    if path is None:
        return {}
    from gguf import GGUFReader

    from edgekit.gguf_source import metadata

    try:
        fields = GGUFReader(str(path)).fields
    except (OSError, ValueError):
        return {}
    return {"file": path.name, "metadata": metadata(fields)}


def _pre_tokenizer(spec: dict) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenization, or ``default`` when it has none that
    matches (the export then records that llama.cpp's own tokenization may differ)."""
    parts = _pre_parts(spec)
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not parts[1].get("use_regex", True):
        return _SPLIT_PRE.get(parts[0].get("pattern", {}).get("Regex"), "default")
    return "default"


def _tokenizer_matches(source: ModelSource, path: Path) -> bool:
    """Whether llama.cpp tokenizes sample text (the parity prompts, a slice of the evaluation text)
    to the same ids as the HF tokenizer. llama.cpp runs in a child process (``gguf_native``), which
    loads the whole file and decodes a token, so a file llama.cpp cannot read fails there in one line."""
    from transformers import AutoTokenizer

    from edgekit.data import PARITY_PROMPTS, eval_text
    from edgekit.targets import gguf_native

    hf = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    texts = [*PARITY_PROMPTS, eval_text()[:2000]]
    want = [hf(text, add_special_tokens=False).input_ids for text in texts]
    answer = gguf_native.run("check", f"loading the written {path.name}", model=str(path), texts=texts, want=want)
    return answer["matches"]


# ---------------------------------------------------------------- quantization


def _importance_matrix(gguf, source: ModelSource, model, text, path: Path) -> dict:
    """llama.cpp's importance matrix of ``model`` on the calibration ``text``, keyed by GGUF tensor
    name, saved at ``path`` for the quantizer; returns what the manifest records of it."""
    import time

    import numpy as np

    from edgekit.targets import imatrix

    started = time.perf_counter()
    ids = calibration.token_ids(source, text)
    cfg = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[_ARCH[source.model_type]], cfg.num_hidden_layers)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))

    def name_of(module: str) -> str | None:
        if module == "lm_head":  # a tied head is the embedding matrix: llama.cpp names it so
            return "token_embd.weight" if tied else "output.weight"
        return names.get_name(module + ".weight", try_suffixes=(".weight",))

    window = min(imatrix.WINDOW, getattr(cfg, "max_position_embeddings", None) or imatrix.WINDOW)
    matrix = imatrix.collect(model, ids, name_of, window)
    np.savez(path, **matrix)
    return calibration.record(text, len(ids), method="imatrix", window=window, tensors=len(matrix),
                              seconds=round(time.perf_counter() - started, 3))



def _quantize(src: Path, dst: Path, ftype: str, imatrix: Path | None = None) -> None:
    """llama.cpp's quantizer (``llama_model_quantize``), in a child process."""
    from edgekit.targets import gguf_native

    request = {"src": str(src), "dst": str(dst), "ftype": ftype, "imatrix": str(imatrix) if imatrix else None}
    gguf_native.run("quantize", f"quantizing to {ftype}", **request)


# ---------------------------------------------------------------- inspect


def inspect(folder: Path, runtime: dict) -> dict:
    """The GGUF's metadata (hyper-parameters, tokenizer, file type) and its tensors by stored type."""
    try:
        from gguf import GGUFReader, GGUFValueType
    except ImportError as e:
        raise EdgekitError(f"inspecting a gguf artifact needs the gguf package ({e})") from None
    path = folder / runtime["model_file"]
    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError) as e:  # a missing, truncated or foreign file
        raise EdgekitError(f"cannot read {path}: {str(e).strip().splitlines()[0]}") from None
    metadata = {}
    for field in reader.fields.values():
        name = field.name
        if name.startswith("GGUF."):
            continue
        if name == "tokenizer.chat_template" or name.startswith("tokenizer.chat_template."):
            # a page of Jinja: that it is there, and its size
            metadata[name] = f"[{len(field.contents())} characters]"
        elif field.types and field.types[0] == GGUFValueType.ARRAY:
            metadata[name] = f"[{len(field.data)} items]"
        else:
            metadata[name] = field.contents()
    if isinstance(metadata.get("general.file_type"), int):  # llama.cpp's file type by name: Q4_0 (2)
        from gguf import LlamaFileType

        code = metadata["general.file_type"]
        try:
            metadata["general.file_type"] = f"{LlamaFileType(code).name.removeprefix('MOSTLY_')} ({code})"
        except ValueError:  # a type this gguf package does not know
            pass
    weights: dict[str, dict] = {}
    for t in reader.tensors:
        dtype = t.tensor_type.name.lower()
        entry = weights.setdefault(dtype, {"bits": None, "tensors": 0, "elements": 0, "bytes": 0})
        entry["tensors"] += 1
        entry["elements"] += int(t.n_elements)
        entry["bytes"] += int(t.n_bytes)
    for entry in weights.values():  # bits per weight, block scales included (q4_0: 4.5)
        entry["bits"] = round(8 * entry["bytes"] / entry["elements"], 2) if entry["elements"] else None
    return {
        "metadata": metadata,
        "weights": dict(sorted(weights.items(), key=lambda kv: -kv[1]["bytes"])),
        "tensors": len(reader.tensors),
    }
