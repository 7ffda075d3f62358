"""The tiny random checkpoints exercise what they are there for."""

from __future__ import annotations

from edgekit.parity import PROMPTS
from edgekit.synthetic import ARCHITECTURES, VARIANTS, make_tokenizer


def test_sliding_windows_are_shorter_than_the_parity_sequences(tmp_path):
    """A window at least as long as a parity sequence would never hide a position."""
    from transformers import AutoTokenizer

    make_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    shortest = min(len(tok(p)["input_ids"]) for p in PROMPTS) + 16  # parity generates 16 tokens
    windows = {arch: kw["sliding_window"] for arch, (_, kw) in ARCHITECTURES.items() if kw.get("sliding_window")}
    assert {"gemma2", "gemma3_text"} <= set(windows)
    assert all(w < shortest for w in windows.values()), (windows, shortest)


def test_variants_name_tiny_architectures():
    assert all(arch in ARCHITECTURES for arch, _ in VARIANTS.values())
