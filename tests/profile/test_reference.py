"""The accuracy figures and their standard errors, from the reference's and the device's arrays."""

from __future__ import annotations

import math

import numpy as np

from edgekit.profile.reference import ReferenceStats, accuracy_metrics, wilson_interval


def _arrays(n: int = 400, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref_lp = -rng.gamma(2.0, 0.5, n)
    art_lp = ref_lp - rng.normal(0.05, 0.1, n)
    topk_lp = np.log(np.full((n, k), 0.2))
    ref = ReferenceStats(ref_lp, rng.integers(0, 5, n), np.zeros((n, k), dtype=np.int64), topk_lp)
    argmax = ref.argmax.copy()
    argmax[: n // 10] += 1  # a tenth disagree
    device = {"target_logprob": art_lp, "argmax": argmax, "topk_logprob": topk_lp - 0.01,
              "rest_logprob": np.full(n, math.log(0.2))}
    return ref, device


def test_errors_are_those_of_the_per_token_means():
    ref, device = _arrays()
    n = ref.target_logprob.size
    m = accuracy_metrics(ref, device)
    nll, nll_ref = -device["target_logprob"], -ref.target_logprob
    ppl, se = m["ppl"]
    assert math.isclose(ppl, math.exp(nll.mean())) and math.isclose(se, ppl * nll.std(ddof=1) / math.sqrt(n))
    ratio = ppl / m["ppl_ref"][0]
    dppl, dse = m["dppl_pct"]
    assert math.isclose(dppl, (ratio - 1) * 100)
    diff = nll - nll_ref
    assert math.isclose(dse, ratio * 100 * diff.std(ddof=1) / math.sqrt(n))
    # paired: the error of the difference is far below what the two ppl errors would give unpaired
    assert dse < 0.5 * 100 * math.hypot(se / ppl, m["ppl_ref"][1] / m["ppl_ref"][0])
    top1, tse = m["top1_agree"]
    assert top1 == 0.9 and math.isclose(tse, math.sqrt(0.9 * 0.1 / n))
    assert m["kl_mean"][1] is not None and m["kl_mean"][1] >= 0


def test_wilson_interval_holds_the_proportion():
    lo, hi = wilson_interval(0.9, 400)
    assert lo < 0.9 < hi and 0.85 < lo and hi < 0.94
    assert wilson_interval(1.0, 50)[1] == 1.0 and wilson_interval(1.0, 50)[0] < 1.0
    assert wilson_interval(0.5, 0) == (0.0, 1.0)


def test_nan_logits_score_no_agreement_and_nan_figures():
    """An artifact whose logits are NaN: the device's argmax is -1 (``top1``), which agrees with
    nothing, even where the reference is NaN too (an all-NaN model had top1_agree 1.0, issue 30);
    ppl and KL are NaN, which fails every check that reads them."""
    from edgekit.runtime.measure import accuracy

    class NaNModel:
        vocab_size, max_context = 8, 64

        def reset(self):
            pass

        def forward(self, ids, *, last_only=False):
            return np.full((len(ids), self.vocab_size), np.nan, np.float32)

    ids = [1, 2, 3, 4, 5, 6, 7]
    topk = np.zeros((len(ids) - 1, 2), dtype=np.int64)
    scores = accuracy(NaNModel(), ids, 16, topk)
    assert scores["argmax"] == [-1] * (len(ids) - 1)
    n = len(ids) - 1
    for ref_argmax in (np.zeros(n, dtype=np.int64), np.full(n, -1)):
        ref = ReferenceStats(np.full(n, np.nan), ref_argmax, topk, np.full((n, 2), np.nan))
        m = accuracy_metrics(ref, scores)
        assert m["top1_agree"][0] == 0.0
        assert math.isnan(m["ppl"][0]) and math.isnan(m["kl_mean"][0]) and math.isnan(m["dppl_pct"][0])
