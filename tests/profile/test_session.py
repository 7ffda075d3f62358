"""The measurement protocol end to end on the local device."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edgekit import data
from edgekit.devices import load_profile
from edgekit.profile.metrics import METRICS
from edgekit.profile.session import Settings, eval_text_for, profile
from edgekit.builtins import BUILTINS

FAST = Settings(prompt_len=16, gen=8, runs=2, warmup=1, eval_tokens=300, window=64)


@pytest.fixture
def fp32_artifact(tiny_artifacts):
    return tiny_artifacts("llama")


def test_every_metric_measured_and_fp32_matches_reference(fp32_artifact):
    result = profile(fp32_artifact, load_profile("local"), FAST).data
    assert result["complete"] and result["error"] is None
    assert set(result["metrics"]) == set(METRICS)
    m = {k: v["value"] for k, v in result["metrics"].items()}
    assert abs(m["ppl"] / m["ppl_ref"] - 1) < 0.005
    assert m["top1_agree"] > 0.99 and m["kl_mean"] < 1e-4
    assert m["decode_tok_s"] > 0 and m["prefill_tok_s"] > 0 and m["ttft_ms"] > 0 and m["load_s"] > 0
    assert m["token_ms_p50"] <= m["token_ms_p90"]
    assert 10 < m["peak_rss_mb"] < 2000  # the runner's own process, not the host's
    # the accuracy pass's peak apart (reset on Linux: its own, from the loaded model up)
    assert 10 < m["eval_peak_rss_mb"] < 2000 and "includes_generation" not in result["metrics"]["eval_peak_rss_mb"]
    assert len(result["metrics"]["decode_tok_s"]["samples"]) == FAST.runs
    assert result["metrics"]["decode_tok_s"]["higher_is_better"] is True
    assert result["environment"]["onnxruntime"] and result["environment"]["cpu"]
    assert result["artifact"]["recipe"] == "fp32" and result["device"]["name"] == "local"
    assert len(result["runs"]) == FAST.runs + FAST.warmup
    # a model other than builtin:tiny is scored on the shipped English prose, recorded by name and sha256
    assert result["settings"]["eval_text"] == "shipped" and result["settings"]["eval_text_name"] == "eval_prose.txt"
    assert result["settings"]["eval_text_sha256"] == data.read(data.EVAL_PROSE).sha256
    # exactly the tokens asked for are scored and recorded; every accuracy figure has its ± and count
    assert result["settings"]["eval_tokens"] == FAST.eval_tokens
    for name in ("ppl", "ppl_ref", "dppl_pct", "top1_agree", "kl_mean"):
        rec = result["metrics"][name]
        assert rec["tokens"] == FAST.eval_tokens and rec["stderr"] >= 0, (name, rec)
    lo, hi = result["metrics"]["top1_agree"]["ci95"]
    assert lo <= m["top1_agree"] <= hi


def test_the_evaluation_text_follows_the_manifest_s_source_model(tmp_path):
    """builtin:tiny keeps its own held-out stories, any other model (even a copy of builtin:tiny
    given by path) gets the English prose; --eval-text overrides both."""
    assert eval_text_for("builtin:tiny", Settings()).name == "eval.txt"
    assert eval_text_for(str(BUILTINS["tiny"].path()), Settings()).name == "eval_prose.txt"
    assert eval_text_for("HuggingFaceTB/SmolLM2-135M", Settings()).text == data.EVAL_PROSE.read_text()
    mine = tmp_path / "mine.txt"
    mine.write_text("my own text")
    for model in ("builtin:tiny", "HuggingFaceTB/SmolLM2-135M"):
        chosen = eval_text_for(model, Settings(eval_text=mine))
        assert (chosen.name, chosen.text) == ("mine.txt", "my own text")


def test_reference_is_cached(fp32_artifact):
    first = profile(fp32_artifact, load_profile("local"), FAST).data
    second = profile(fp32_artifact, load_profile("local"), FAST).data
    assert first["settings"]["reference_cached"] is False
    assert second["settings"]["reference_cached"] is True
    assert first["metrics"]["ppl_ref"]["value"] == second["metrics"]["ppl_ref"]["value"]


def _runner_children() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"edgekit.runtime" in cmd and ppid == os.getpid():
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the runner")
def test_killed_runner_keeps_measured_runs(fp32_artifact):
    settings = Settings(prompt_len=16, gen=200, runs=500, warmup=0, accuracy=False)
    killed = threading.Event()

    def on_step(step, done, total):
        if step.startswith("run 2") and not killed.is_set():
            killed.set()
            for pid in _runner_children():
                os.kill(pid, signal.SIGKILL)

    t = time.monotonic()
    result = profile(fp32_artifact, load_profile("local"), settings, on_step=on_step).data
    assert killed.is_set() and time.monotonic() - t < 120
    assert result["complete"] is False
    assert result["error"].startswith("device local: run ") and "SIGKILL" in result["error"]  # named, not "signal 9"
    assert len(result["runs"]) >= 2 and result["metrics"]["decode_tok_s"]["value"] > 0


def test_timeout_is_an_error_naming_the_step(fp32_artifact):
    settings = Settings(prompt_len=16, gen=8, runs=1, warmup=0, accuracy=False, timeout_s=0.01)
    result = profile(fp32_artifact, load_profile("local"), settings).data
    assert not result["complete"]
    assert result["error"].startswith("device local: start runner: ") and "timeout" in result["error"]
