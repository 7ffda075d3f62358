"""A result's per-operator table and sustained run: typed, read back as written, summarised."""

from __future__ import annotations

from edgekit.core.results import RunResult
from edgekit.core.timings import OpTimes, Sustained

OPS = {"source": "onnxruntime profiler", "prefill_tokens": 16, "decode_steps": 7, "prefill_ms": 4.0,
       "decode_step_ms": 0.5, "operators": 3,
       "rows": [{"op": "MatMulNBits", "kind": "operator", "calls": 21.0, "decode_ms": 0.3, "prefill_calls": 21,
                 "prefill_ms": 3.0},
                {"op": "Fully Connected (NC, F32) GEMM", "kind": "delegate", "calls": 2.0, "decode_ms": 0.1,
                 "prefill_calls": 2, "prefill_ms": 0.5}]}
SUSTAINED = {"duration_s": 30.0, "samples": [
    {"t_s": 1.0 + i, "runs": 2, "decode_tok_s": 100.0 if i < 10 else 80.0, "prefill_tok_s": 900.0,
     "temp_c": 40.0 + i, "cpu_mhz": 2000.0 - 10 * i} for i in range(30)]}


def _result(**extra) -> RunResult:
    return RunResult.from_json({"artifact": {"model": "m", "target": "onnx", "recipe": "int4"},
                                "device": {"name": "local"}, "metrics": {}, **extra})


def test_json_round_trip_and_absence():
    r = _result(ops=OPS, sustained=SUSTAINED)
    assert isinstance(r.ops, OpTimes) and isinstance(r.sustained, Sustained)
    assert r.to_json()["ops"] == OPS and r.to_json()["sustained"]["samples"][0]["t_s"] == 1.0
    assert RunResult.from_json(r.to_json()) == r
    plain = _result()
    assert plain.ops is None and plain.sustained is None and "ops" not in plain.to_json()
    none = _result(ops={"source": None, "unavailable": "llama.cpp gives no per-operator times"})
    assert none.to_json()["ops"] == {"source": None, "unavailable": "llama.cpp gives no per-operator times"}
    assert "llama.cpp gives no" in none.ops.title and none.ops.table()[1] == []


def test_ops_table_shares():
    header, rows = _result(ops=OPS).ops.table()
    assert header == ["op", "calls", "ms / decode step", "% of step", "ms in prefill", "% of prefill"]
    assert rows[0] == ["MatMulNBits", "21", "0.300", "60.0%", "3.000", "75.0%"]
    assert rows[1][0] == "Fully Connected (NC, F32) GEMM (delegate)"


def test_sustained_summary_first_and_last_ten_seconds():
    s = _result(sustained=SUSTAINED).sustained
    assert s.decode_over(True) == 100.0 and s.decode_over(False) == 80.0
    text = s.summary()
    assert "100.0 tok/s in the first 10 s, 80.0 tok/s in the last 10 s (-20%)" in text
    assert "temperature 40.0-69.0 °C" in text and "CPU clock 1710-2000 MHz" in text
    bare = Sustained(5.0, ())
    assert bare.summary() == "sustained 5 s: no sample"
