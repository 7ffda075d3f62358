"""The native runner (native/runner) computes what the Python runner computes: on builtin:tiny's GGUF
artifacts, the same greedy tokens' count, the same log-probabilities (|difference| <= 1e-4 nats: both
drive the same llama.cpp build with the same threads; seen: ~1e-15), the same top-1 tokens, and the
accuracy figures edgekit derives from them within 1e-6 of each other."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from edgekit.profile.reference import ReferenceStats, accuracy_metrics
from runners import python_runner, runner_env

LOGPROB_TOL = 1e-4
FIGURE_TOL = 1e-6


def _events(argv: list[str], request: dict) -> dict[str, list[dict]]:
    p = subprocess.run(argv, input=json.dumps(request).encode(), capture_output=True, timeout=300, env=runner_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    out: dict[str, list[dict]] = {}
    for line in p.stdout.decode().splitlines():
        event = json.loads(line)
        out.setdefault(event.pop("event"), []).append(event)
    return out


@pytest.mark.parametrize("recipe", ["q8_0", "q4_0"])
def test_native_and_python_runners_agree(recipe, tiny_gguf, native_build):
    from edgekit import artifact

    folder = tiny_gguf[recipe]
    ids = artifact.tokenizer(folder).encode("Once upon a time, a little fox found a red ball in the garden. " * 12).ids
    rng = np.random.default_rng(0)
    window = 64
    positions = sum(len(c) - 1 for c in (ids[s:s + window + 1] for s in range(0, len(ids) - 1, window)) if len(c) >= 2)
    topk = rng.integers(0, 2048, size=(positions, 8)).tolist()
    request = {"protocol": 1, "artifact": str(folder), "threads": 1, "prompt_ids": ids[:32], "gen": 16,
               "warmup": 0, "runs": 2, "eval_ids": ids, "window": window, "ref_topk": topk}
    py, native = _events(python_runner(), request), _events([str(native_build.binary)], request)

    assert [r["generated"] for r in py["run"]] == [r["generated"] for r in native["run"]] == [16, 16]
    a, b = py["accuracy"][0], native["accuracy"][0]
    assert len(a["target_logprob"]) == len(b["target_logprob"]) == positions
    assert a["argmax"] == b["argmax"]
    for key in ("target_logprob", "topk_logprob", "rest_logprob"):
        diff = np.abs(np.asarray(a[key]) - np.asarray(b[key])).max()
        assert diff <= LOGPROB_TOL, (key, diff)

    # the figures a profile reports, with the Python runner's answer standing in for the reference
    ref = ReferenceStats(np.asarray(a["target_logprob"]), np.asarray(a["argmax"]), np.asarray(topk),
                         np.asarray(a["topk_logprob"]))
    mine, theirs = accuracy_metrics(ref, a), accuracy_metrics(ref, b)
    for name, (value, _) in mine.items():
        assert abs(value - theirs[name][0]) <= FIGURE_TOL, (name, value, theirs[name][0])
    assert theirs["top1_agree"][0] == 1.0
