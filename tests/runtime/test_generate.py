import numpy as np
import pytest

from edgekit.runtime.generate import greedy


class Counting:
    """A fake LM whose next token is always (last token + 1) mod vocab."""

    vocab_size = 10
    max_context = 8

    def reset(self):
        self.length = 0

    def forward(self, ids, *, last_only=False):
        self.length += len(ids)
        assert self.length <= self.max_context
        out = np.zeros((len(ids), self.vocab_size), dtype=np.float32)
        for i, t in enumerate(ids):
            out[i, (t + 1) % self.vocab_size] = 1.0
        return out[-1:] if last_only else out


def test_greedy_follows_argmax_and_times_each_step():
    gen = greedy(Counting(), [1, 2], 4)
    assert gen.tokens == [3, 4, 5, 6]
    assert len(gen.token_s) == 3 and gen.prefill_s > 0 and gen.decode_tok_s > 0


def test_greedy_stops_on_stop_token_and_context_end():
    assert greedy(Counting(), [1], 10, stop={4}).tokens == [2, 3, 4]
    assert len(greedy(Counting(), [1, 2, 3], 100).tokens) == 5  # 3 + 5 = max_context 8


def test_greedy_rejects_full_context():
    with pytest.raises(ValueError, match="no room"):
        greedy(Counting(), list(range(8)), 1)
