"""The native runner (native/runner) computes what the Python runner computes, on the same artifact
and request: the same number of greedy tokens, the same log-probabilities and the accuracy figures
edgekit derives from them.

Tolerances: GGUF, |difference| <= 1e-4 nats and the same top-1 token everywhere (both drive the same
llama.cpp build with the same threads; seen: ~1e-15). ExecuTorch, |difference| <= 1e-4 nats (the
program's kernels are the same libraries; the LLM custom ops are the runner's own float32 loops,
summing in another order: seen ~1e-5) and top-1 agreement >= 0.98 (a random tiny model has near-ties).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from edgekit.profile.reference import ReferenceStats, accuracy_metrics
from runners import python_runner, runner_env

LOGPROB_TOL = 1e-4
TEXT = "Once upon a time, a little fox found a red ball in the garden. "


def _events(argv: list[str], request: dict) -> dict[str, list[dict]]:
    p = subprocess.run(argv, input=json.dumps(request).encode(), capture_output=True, timeout=300, env=runner_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    out: dict[str, list[dict]] = {}
    for line in p.stdout.decode().splitlines():
        event = json.loads(line)
        out.setdefault(event.pop("event"), []).append(event)
    return out


def _compare(folder, native_build, window: int, min_top1: float) -> dict:
    """Both runners on one request; the Python runner's answer stands in for the reference."""
    from edgekit import artifact

    target = json.loads((folder / "edgekit.json").read_text())["target"]
    if target not in native_build.targets:
        pytest.skip(f"this native runner was built without a {target} backend")
    ids = artifact.tokenizer(folder).encode(TEXT * 12).ids
    rng = np.random.default_rng(0)
    positions = sum(len(c) - 1 for c in (ids[s:s + window + 1] for s in range(0, len(ids) - 1, window)) if len(c) >= 2)
    topk = rng.integers(0, 200, size=(positions, 8)).tolist()
    request = {"protocol": 1, "artifact": str(folder), "threads": 1, "prompt_ids": ids[:32], "gen": 16,
               "warmup": 0, "runs": 2, "eval_ids": ids, "window": window, "ref_topk": topk}
    py, native = _events(python_runner(), request), _events([str(native_build.binary)], request)

    assert [r["generated"] for r in py["run"]] == [r["generated"] for r in native["run"]] == [16, 16]
    a, b = py["accuracy"][0], native["accuracy"][0]
    assert len(a["target_logprob"]) == len(b["target_logprob"]) == positions
    for key in ("target_logprob", "topk_logprob", "rest_logprob"):
        diff = np.abs(np.asarray(a[key]) - np.asarray(b[key])).max()
        assert diff <= LOGPROB_TOL, (key, diff)
    ref = ReferenceStats(np.asarray(a["target_logprob"]), np.asarray(a["argmax"]), np.asarray(topk),
                         np.asarray(a["topk_logprob"]))
    mine, theirs = accuracy_metrics(ref, a), accuracy_metrics(ref, b)
    assert theirs["top1_agree"][0] >= min_top1
    for name in ("ppl", "ppl_ref", "dppl_pct", "kl_mean"):
        assert abs(mine[name][0] - theirs[name][0]) <= 1e-4 * max(1.0, abs(mine[name][0])), name
    return {"python": py, "native": native}


@pytest.mark.parametrize("recipe", ["q8_0", "q4_0"])
def test_gguf_native_and_python_runners_agree(recipe, tiny_gguf, native_build):
    answers = _compare(tiny_gguf[recipe], native_build, window=64, min_top1=1.0)
    assert answers["native"]["accuracy"][0]["argmax"] == answers["python"]["accuracy"][0]["argmax"]


@pytest.mark.parametrize("arch, recipe", [
    ("llama", "8da4w"),  # int4 weights through XNNPACK, the LLM custom ops, a quantized embedding
    ("gemma3", "fp32"),  # sliding-window layers: custom_sdpa with a mask, a query scale of its own
])
def test_executorch_native_and_python_runners_agree(arch, recipe, tiny_artifacts, native_build):
    _compare(tiny_artifacts(arch, "executorch", recipe), native_build, window=40, min_top1=0.98)


@pytest.mark.parametrize("damage", ["truncated-program", "truncated-data", "missing-data", "not-a-program"])
def test_a_damaged_executorch_artifact_is_one_load_error(damage, tiny_artifacts, native_build, tmp_path):
    import shutil

    if "executorch" not in native_build.targets:
        pytest.skip("this native runner was built without the ExecuTorch backend")
    art = tmp_path / "art"
    shutil.copytree(tiny_artifacts("llama", "executorch", "8da4w"), art)
    runtime = json.loads((art / "edgekit.json").read_text())["runtime"]
    program, data = art / runtime["model_file"], art / runtime["data_file"] if runtime.get("data_file") else None
    if damage == "truncated-program":
        program.write_bytes(program.read_bytes()[: program.stat().st_size // 2])
    elif damage == "not-a-program":
        program.write_bytes(b"\0" * 64)
    elif data is None:
        pytest.skip("this program keeps its weights inside")
    elif damage == "truncated-data":
        data.write_bytes(data.read_bytes()[:1000])
    else:
        data.unlink()
    request = {"protocol": 1, "artifact": str(art), "prompt_ids": [5, 6, 7], "gen": 4}
    p = subprocess.run([str(native_build.binary)], input=json.dumps(request).encode(), capture_output=True, timeout=60)
    events = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert p.returncode == 1 and [e["event"] for e in events] == ["hello", "error"], (p.returncode, events)
    assert events[-1]["step"] == "load"


def test_native_executorch_ops_name_the_same_operators(tiny_artifacts, native_build):
    """--ops through the native runner: its event tracer sums the runtime's own profiling events as the
    Python runner's ETDump does: the same operators and delegate operators, the same calls per step."""
    if "executorch" not in native_build.targets:
        pytest.skip("this native runner was built without the ExecuTorch backend")
    art = tiny_artifacts("llama", "executorch", "8da4w")
    request = {"protocol": 1, "artifact": str(art), "prompt_ids": list(range(5, 21)), "gen": 6, "warmup": 0,
               "runs": 1, "threads": 1, "ops": True}
    native, python = (_events(argv, request)["ops"][0] for argv in ([str(native_build.binary)], python_runner()))
    assert native["source"] == "executorch event tracer" and python["source"] == "executorch etdump"
    assert native["decode_steps"] == python["decode_steps"] == 5 and native["operators"] == python["operators"]
    calls = {(r["op"], r["kind"]): r["calls"] for r in native["rows"]}
    assert any(kind == "delegate" for _, kind in calls) and any(kind == "operator" for _, kind in calls)
    theirs = {(r["op"], r["kind"]): r["calls"] for r in python["rows"]}
    both = calls.keys() & theirs.keys()  # (each keeps its 15 slowest)
    assert len(both) >= 10 and all(calls[k] == theirs[k] for k in both), (calls, theirs)
