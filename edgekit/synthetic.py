"""Random checkpoints of real architectures, built from configs: the tests' tiny-model table and
the benchmarks' full-size shapes. Nothing is downloaded; the weights are random, the code path
that loads them (``from_pretrained`` on a folder) is the real one."""

from __future__ import annotations

from pathlib import Path

# model_type -> (config class name, config kwargs); vocab_size is filled in from the test tokenizer
ARCHITECTURES = {
    "llama": ("LlamaConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)),
    "qwen2": ("Qwen2Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True)),
    "qwen3": ("Qwen3Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256)),
    "mistral": ("MistralConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, sliding_window=None)),
    "phi3": ("Phi3Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, original_max_position_embeddings=256, pad_token_id=0)),
    "gemma": ("GemmaConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=256)),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=256)),
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

    ``spm``: a SentencePiece-style tokenizer instead of the byte-level one. ``overrides`` replace
    the tiny table's config values (e.g. ``**SMOLLM_135M``).
    """
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = make_spm_tokenizer(folder) if spm else make_tokenizer(folder)
    cls_name, kwargs = ARCHITECTURES[arch]
    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0} if spm else {"bos_token_id": 0, "eos_token_id": 0}
    kwargs = {"vocab_size": vocab, **special, **kwargs, **overrides}
    config = getattr(transformers, cls_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
