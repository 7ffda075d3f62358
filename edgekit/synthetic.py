"""Random checkpoints of real architectures, built from configs: the tests' tiny-model table and
the benchmarks' full-size shapes. Nothing is downloaded; the weights are random, the code path
that loads them (``from_pretrained`` on a folder) is the real one."""

from __future__ import annotations

from pathlib import Path

from edgekit.core.architectures import supporting

# model_type -> (config class name, config kwargs); vocab_size is filled in from the test tokenizer
ARCHITECTURES: dict[str, tuple[str, dict]] = supporting("tiny")

# Architectures whose norms and biases are what sets them apart: their random checkpoints draw the
# norm weights and biases at random too (from_config makes them constant: ones, zeros), so a
# converter that drops or swaps one is caught.
RANDOM_NORMS_AND_BIASES = ("gemma3_text", "gemma2", "phi")

# name -> (model_type, overrides of its tiny config): one feature that a converter may handle
# differently each, for tests that check every converter reproduces it
VARIANTS = {
    # Llama 3.1/3.2's rope scaling; with head_dim 16 and original context 64 its frequencies fall in
    # all three bands (kept, divided by the factor, smoothed between)
    "llama-rope-llama3": ("llama", dict(rope_scaling=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=64))),
    "llama-rope-linear": ("llama", dict(rope_scaling=dict(rope_type="linear", factor=4.0))),
    "llama-rope-dynamic": ("llama", dict(rope_scaling=dict(rope_type="dynamic", factor=4.0))),
    "llama-rope-yarn": ("llama", dict(rope_scaling=dict(
        rope_type="yarn", factor=4.0, original_max_position_embeddings=64), max_position_embeddings=256)),
    "llama-tied": ("llama", dict(tie_word_embeddings=True)),
    "llama-mha": ("llama", dict(num_key_value_heads=4)),  # one KV head per query head
    "llama-mqa": ("llama", dict(num_key_value_heads=1)),  # one KV head for all
    # SmolLM2-135M's 9 heads over 3 KV heads, an odd count and ratio (head_dim 16)
    "llama-odd-heads": ("llama", dict(hidden_size=144, num_attention_heads=9, num_key_value_heads=3)),
    "llama-head-dim-8": ("llama", dict(num_attention_heads=8, num_key_value_heads=2)),  # a narrow head: 64 / 8
    # head_dim set apart from hidden / heads (as Qwen 3 and Gemma have it): q is 128 wide, hidden 64
    "llama-head-dim": ("llama", dict(head_dim=32)),
}

SENTENCES = [
    "Once upon a time there was a little dog who liked to run in the park.",
    "The cat sat on the mat and looked at the big red ball.",
    'Tom said, "Can I play with you?" and Lily smiled.',
    "def add(a, b):\n    return a + b\n",
]


def make_tokenizer(folder: Path) -> int:
    """A byte-level BPE tokenizer saved as a fast HF tokenizer; returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(SENTENCES * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def make_spm_tokenizer(folder: Path) -> int:
    """A SentencePiece-style BPE tokenizer (``▁`` for spaces, byte fallback, <unk>/<s>/</s>) like
    Llama 2's and Gemma's, saved as a fast HF tokenizer; returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    special = ["<unk>", "<s>", "</s>", *(f"<0x{i:02X}>" for i in range(256))]
    tok.train_from_iterator(SENTENCES * 20, trainers.BpeTrainer(vocab_size=600, special_tokens=special))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


# SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 KV heads, vocab 49152): the benchmark model
SMOLLM_135M = dict(
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True, rope_theta=100000.0,
)


def make_model(arch: str, folder: Path, *, seed: int = 0, spm: bool = False, **overrides) -> Path:
    """Save a random checkpoint of ``arch`` (safetensors + tokenizer) into ``folder``.

    ``arch``: a model type of ``ARCHITECTURES`` or a name of ``VARIANTS``. ``spm``: a
    SentencePiece-style tokenizer instead of the byte-level one. ``overrides`` replace the tiny
    table's config values (e.g. ``**SMOLLM_135M``).
    """
    import torch
    import transformers

    if arch in VARIANTS:
        arch, variant = VARIANTS[arch]
        overrides = {**variant, **overrides}
    folder.mkdir(parents=True, exist_ok=True)
    vocab = make_spm_tokenizer(folder) if spm else make_tokenizer(folder)
    cls_name, kwargs = ARCHITECTURES[arch]
    special = ({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0} if spm
               else {"bos_token_id": 0, "eos_token_id": 0})
    kwargs = {"vocab_size": vocab, **special, **kwargs, **overrides}
    if "text_config" in kwargs:  # multimodal: the text model has the vocabulary and special tokens
        text = {k: kwargs.pop(k) for k in ("vocab_size", *special)}
        kwargs["text_config"] = {**text, **kwargs["text_config"]}
    config = getattr(transformers, cls_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    if arch in RANDOM_NORMS_AND_BIASES:
        with torch.no_grad():
            for param in model.parameters():
                if param.numel() > 1 and bool((param == param.flatten()[0]).all()):
                    param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
