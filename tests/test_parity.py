"""Parity against the PyTorch reference: a NaN anywhere fails it; greedy through the model's KV cache,
all prompts in one padded batch, gives the tokens and logits that recomputing each whole sequence for
every token gives."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from edgekit import parity
from edgekit.core.model import load_model
from edgekit.recipes import Thresholds
from edgekit.source import resolve
from edgekit.synthetic import ARCHITECTURES


class _Constant:
    """A stand-in language model whose logits are ``value`` everywhere."""

    vocab_size, max_context = 8, 64

    def __init__(self, value: float):
        self.value = value

    def reset(self) -> None:
        pass

    def forward(self, ids, *, last_only=False):
        return np.full((1 if last_only else len(ids), self.vocab_size), self.value, np.float32)


def test_nan_logits_fail_parity_even_where_the_reference_is_nan_too():
    seq = (1, 2, 3, 4)
    for ref_value in (0.0, float("nan")):
        ref = parity.Reference((2,), (seq,), (np.full((len(seq), 8), ref_value, np.float32),))
        result = parity.compare(ref, _Constant(float("nan")), Thresholds(max_abs_logit_diff=1.0, top1_agree=0.5))
        assert result["passed"] is False
        assert math.isnan(result["max_abs_logit_diff"]) and result["failures"]


def test_a_checkpoint_with_nan_weights_fails_its_export(cli, tiny_models, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    weights = load_file(model / "model.safetensors")
    name = next(k for k in weights if k.endswith("mlp.down_proj.weight"))
    weights[name].fill_(float("nan"))
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 1, r.err
    assert "parity check failed" in r.err and r.said.count("\n") == 1, r.err
    assert json.loads((tmp_path / "out" / "edgekit.json").read_text(),
                      parse_constant=lambda c: None)["parity"]["passed"] is False


def _uncached(model, tokenize, new_tokens: int):
    import torch

    out = []
    with torch.inference_mode():
        for prompt in parity.PROMPTS:
            seq = list(tokenize(prompt))
            for _ in range(new_tokens):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
            out.append((tuple(seq), model(torch.tensor([seq])).logits[0].numpy()))
    return out


@pytest.fixture
def one_thread():
    """torch on one thread: a 2-thread pool on a busy machine makes these small forwards 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("arch", ["builtin:tiny", *sorted(ARCHITECTURES)])
def test_cached_reference_matches_recomputing_every_token(arch, tiny_models, one_thread):
    from transformers import AutoTokenizer

    source = resolve(arch if arch.startswith("builtin:") else str(tiny_models(arch)))
    hf = AutoTokenizer.from_pretrained(source.path)
    tokenize = lambda text: hf(text)["input_ids"]  # noqa: E731
    ref = parity.reference(source, tokenize, new_tokens=8)
    want = _uncached(load_model(source), tokenize, 8)
    assert ref.sequences == tuple(seq for seq, _ in want)
    for got, (_, logits) in zip(ref.logits, want):
        np.testing.assert_array_equal(got, logits)


class _Counting:
    """A language model whose next token is always the last one plus one; counts its calls."""

    vocab_size, max_context = 16, 64

    def __init__(self):
        self.calls = 0

    def reset(self):
        pass

    def forward(self, ids, *, last_only=False):
        self.calls += 1
        rows = np.zeros((1 if last_only else len(ids), self.vocab_size), dtype=np.float32)
        rows[np.arange(len(rows)), (np.asarray(ids[-len(rows):]) + 1) % self.vocab_size] = 1.0
        return rows


def test_greedy_match_counts_up_to_the_first_other_token_and_stops_there():
    lm = _Counting()
    assert parity.greedy_match(lm, [1, 2], [3, 4, 5, 6]) == 4 and lm.calls == 4
    lm = _Counting()
    assert parity.greedy_match(lm, [1, 2], [3, 4, 9, 10, 11, 12]) == 2 and lm.calls == 3
    lm = _Counting()
    assert parity.greedy_match(lm, [1, 2], [7, 8]) == 0 and lm.calls == 1


def test_greedy_match_reads_the_decoded_rows_it_is_given_and_computes_only_the_prompt():
    cont = [3, 4, 5, 6]
    decoded = _Counting().forward(cont)  # row i after token i: predicts token i + 1
    lm = _Counting()
    assert parity.greedy_match(lm, [1, 2], cont, decoded=decoded) == 4 and lm.calls == 1
    decoded[1] = np.eye(16, dtype=np.float32)[9]  # after token 4 the artifact would say 9, not 5
    assert parity.greedy_match(_Counting(), [1, 2], cont, decoded=decoded) == 2
    assert parity.greedy_match(_Counting(), [1, 2], [7, 8], decoded=_Counting().forward([7, 8])) == 0


def test_a_nan_row_agrees_with_nothing_not_even_a_nan_reference():
    """numpy's argmax of an all-NaN row is 0 on both sides: counted as agreement, an all-NaN model
    had top1_agree 1.0 (issue 30). A broken row is a disagreement, and matches no greedy token."""
    seq = (1, 2, 3, 4)
    ref = parity.Reference((2,), (seq,), (np.full((len(seq), 8), float("nan"), np.float32),))
    result = parity.compare(ref, _Constant(float("nan")), Thresholds())
    assert result["top1_agree"] == 0.0 and result["greedy_match_tokens"] == 0, result
    assert math.isnan(result["kl_mean"]) and result["passed"] is False
    for broken in (float("nan"), float("inf")):
        assert parity.greedy_match(_Constant(broken), [1, 2], [0, 0]) == 0
