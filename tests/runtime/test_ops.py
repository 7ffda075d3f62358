"""Per-operator times (edgekit/runtime/ops.py): the profilers' records summed by operator, and the
runner's ``ops`` event from a real ExecuTorch program's ETDump and ONNX Runtime's profiler."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from runners import runner_env

from edgekit.runtime import ops


def test_event_sums_by_operator_per_decode_step():
    calls = [("prefill", 10.0, [("MatMul", "operator", 6.0), ("Add", "operator", 1.0)]),
             ("decode", 2.0, [("MatMul", "operator", 1.0), ("MatMul", "operator", 0.5), ("Add", "operator", 0.1)]),
             ("decode", 4.0, [("MatMul", "operator", 2.5), ("Add", "operator", 0.1)])]
    e = ops.event("test", calls, prompt_tokens=5, steps=2)
    assert e["prefill_ms"] == 10 and e["decode_step_ms"] == 3 and e["operators"] == 2
    matmul, add = e["rows"]
    assert matmul == {"op": "MatMul", "kind": "operator", "calls": 1.5, "decode_ms": 2.0, "prefill_calls": 1,
                      "prefill_ms": 6.0}
    assert add["decode_ms"] == 0.1 and add["calls"] == 1


def test_onnx_trace_split_by_run():
    """Node events fall in their model_run; runs before ``first`` (the warm-up) are left out."""
    trace = [{"cat": "Session", "name": "model_run", "ts": t, "dur": 100} for t in (0, 1000, 2000, 3000)]
    trace += [{"cat": "Node", "name": f"n{t}_kernel_time", "ts": t + 10, "dur": 50, "args": {"op_name": "MatMul"}}
              for t in (0, 1000, 2000, 3000)]
    trace.append({"cat": "Node", "name": "x_fence_before", "ts": 2010, "dur": 5})
    calls = ops.onnx_calls(trace, first=2, prefill_end=3, end=4)
    assert calls == [("prefill", 0.1, [("MatMul", "operator", 0.05)]), ("decode", 0.1, [("MatMul", "operator", 0.05)])]


def _event(name=None, start=0, end=1000, delegate=None):
    return SimpleNamespace(profile_event=SimpleNamespace(name=name, start_time=start, end_time=end,
                                                         delegate_debug_id_str=delegate, delegate_debug_id_int=-1))


def test_etdump_operators_and_delegate_events():
    block = SimpleNamespace(events=[_event("Method::execute", 0, 4_000_000), _event("OPERATOR_CALL", 0, 1_000_000),
                                    _event("native_call_add.out", 0, 900_000), _event("DELEGATE_CALL", 0, 2_000_000),
                                    _event(delegate="Fully Connected (NC, F32) GEMM #3", end=1_500_000)])
    init = SimpleNamespace(events=[_event("Program::load_method")])
    calls = ops.etdump_calls([init, block, block], first=0, prefill_end=1, end=2)
    assert calls[1] == ("decode", 4.0, [("add.out", "operator", 0.9), ("Fully Connected (NC, F32) GEMM", "delegate",
                                                                        1.5)])
    assert calls[0][0] == "prefill"


def _ops_event(artifact) -> dict:
    request = {"protocol": 1, "artifact": str(artifact), "prompt_ids": list(range(5, 21)), "gen": 6, "warmup": 0,
               "runs": 1, "threads": 1, "ops": True}
    p = subprocess.run([sys.executable, "-m", "edgekit.runtime"], input=json.dumps(request).encode(),
                       capture_output=True, timeout=600, env=runner_env())
    events = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert [e["event"] for e in events] == ["hello", "loaded", "run", "ops", "done"]
    return events[3]


def test_executorch_ops_from_its_etdump(tiny_artifacts):
    e = _ops_event(tiny_artifacts("llama", "executorch", "8da4w"))
    assert e["source"] == "executorch etdump" and e["decode_steps"] == 5 and e["prefill_tokens"] == 16
    kinds = {row["kind"] for row in e["rows"]}
    assert kinds == {"operator", "delegate"}, e["rows"]  # XNNPACK's own operators and those outside it
    assert any("Fully Connected" in row["op"] for row in e["rows"])
    assert all(not row["op"].endswith(("#1", "#2")) and row["calls"] > 0 for row in e["rows"])


def test_onnx_ops_from_its_profiler(tiny_artifacts):
    e = _ops_event(tiny_artifacts("qwen2", "onnx", "int8"))
    assert e["source"] == "onnxruntime profiler" and e["decode_steps"] == 5
    assert e["rows"][0]["decode_ms"] > 0 and e["decode_step_ms"] > 0 and e["prefill_ms"] > 0
