"""Speed gates that hold on a busy machine: ratios to a yardstick measured beside the candidate, a
failing speed verdict measured again (interleaved) before it fails, no baseline speed judged busy."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from edgekit.check import CheckConfig, Limit, Rules, Verdict, evaluate, load_check
from edgekit.core.results import RunResult


def _result(make_result, recipe, target="onnx", busy=None, **values):
    r = make_result(recipe, target, **values)
    r["artifact"]["path"] = f"/nowhere/{target}-{recipe}"
    if busy is not None:
        r["environment"] = {"load": {"cpus": 2, "loadavg_1m": [3.0, 4.0], "others_share": busy}}
    return RunResult.from_json(r)


def test_a_ratio_limit_names_a_recipe_of_the_sweep(sweep_file):
    cfg = load_check(sweep_file(recipes=("fp32", "int8"), extra=(
        "[thresholds.\"onnx/int8\"]\ndecode_tok_s = { min = 0.9, of = \"onnx/fp32\" }\n")))
    (limit,) = cfg.rules_for("onnx", "int8").limits
    assert limit == Limit("decode_tok_s", min=0.9, of="onnx/fp32") and limit.name == "decode_tok_s >= 0.9 x onnx/fp32"


@pytest.mark.parametrize("of, says", [("fp32", "name a target/recipe of this sweep"),
                                      ("gguf/q4_0", "matches none of the recipes to check"),
                                      ("onnx/int4", "matches none of the recipes to check")])
def test_a_ratio_to_what_the_sweep_does_not_measure_is_a_bad_config(cli, sweep_file, of, says):
    limit = f"[thresholds]\ndecode_tok_s = {{ min = 0.9, of = \"{of}\" }}\n"
    config = sweep_file(recipes=("fp32", "int8"), extra=limit)
    r = cli("check", config)
    assert r.code == 2 and says in r.err and r.err.count("\n") == 1, r.err


def test_a_ratio_is_judged_against_the_yardstick_of_the_same_model_and_device(make_result):
    rules = Rules(limits=(Limit("decode_tok_s", min=0.9, of="gguf/q4_0"),))
    cand = _result(make_result, "int4", decode_tok_s=171.0)
    q4 = _result(make_result, "q4_0", "gguf", decode_tok_s=190.0)
    (v,) = [v for v in evaluate([cand, q4], lambda t, r: rules if t == "onnx" else Rules()) if "x gguf" in v.name]
    assert v.passed is True and v.message.startswith("decode_tok_s 0.9 x gguf/q4_0 (171 vs 190 tok/s)")
    slow = _result(make_result, "int4", decode_tok_s=150.0)
    (v,) = [v for v in evaluate([slow, q4], lambda t, r: rules if t == "onnx" else Rules()) if "x gguf" in v.name]
    assert v.passed is False and "0.789 x gguf/q4_0" in v.message
    (v,) = [v for v in evaluate([slow], lambda t, r: rules) if "x gguf" in v.name]
    assert v.passed is False and "the yardstick gguf/q4_0 was not measured" in v.message


def _config(rules: Rules, tolerance: float = 5.0) -> CheckConfig:
    class Cfg:  # what confirm reads of a check config
        tolerance_pct = tolerance

        @staticmethod
        def rules_for(target, recipe):
            return rules if target == "onnx" else Rules()

    return Cfg()


def test_a_failed_ratio_is_measured_again_interleaved_and_judged_on_the_median(make_result):
    from edgekit.speed_gates import ROUNDS, confirm

    limit = Limit("decode_tok_s", min=0.9, of="gguf/q4_0")
    cand = _result(make_result, "int4", decode_tok_s=100.0)
    q4 = _result(make_result, "q4_0", "gguf", decode_tok_s=190.0)
    first = [v for v in evaluate([cand, q4], _config(Rules(limits=(limit,))).rules_for) if "x gguf" in v.name]
    assert first[0].passed is False  # a burst of load fell on the candidate alone
    order = []

    def measure(r):
        order.append(r.target)
        return _result(make_result, r.recipe, r.target, decode_tok_s=180.0 if r.target == "onnx" else 190.0)

    (v,) = confirm(first, [cand, q4], _config(Rules(limits=(limit,))), measure)
    assert v.passed is True and f"median of {ROUNDS} interleaved rounds" in v.message and "first:" in v.message
    assert order == ["onnx", "gguf", "gguf", "onnx", "onnx", "gguf"]  # the order alternates
    never = confirm(first, [cand, q4], _config(Rules(limits=(limit,))),
                    lambda r: _result(make_result, r.recipe, r.target,
                                      decode_tok_s=100.0 if r.target == "onnx" else 190.0))
    assert never[0].passed is False  # slower every time: it fails


def test_a_baseline_speed_regression_on_a_busy_machine_is_not_judged(make_result, monkeypatch):
    from edgekit.speed_gates import confirm

    monkeypatch.setenv("EDGEKIT_BUSY_SHARE", "0.2")
    base = _result(make_result, "int4", decode_tok_s=190.0, busy=0.02)
    busy = _result(make_result, "int4", decode_tok_s=52.0, busy=0.6)
    v = Verdict(busy.key, "decode_tok_s vs baseline", False, "decode_tok_s 52 vs baseline 190 tok/s: worse")
    (got,) = confirm([v], [busy], _config(Rules()), lambda r: pytest.fail("a busy machine is not measured again"),
                     [base])
    assert got.passed is None and "not judged: the machine was busy" in got.message
    quiet = _result(make_result, "int4", decode_tok_s=52.0, busy=0.01)
    (got,) = confirm([v], [quiet], _config(Rules()), lambda r: _result(make_result, "int4", decode_tok_s=189.0,
                                                                           busy=0.01), [base])
    assert got.passed is True and "measured again" in got.message  # a one-off: measured again, it holds


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def test_the_same_check_five_times_under_load_never_flips(cli, sweep_file, monkeypatch):
    """Two busy loops on the machine (stress-like) while the same check runs five times: its speed gate
    (a ratio to a yardstick of the same run) and its baseline gate give the same verdict every time."""
    monkeypatch.setenv("EDGEKIT_BUSY_SHARE", "0.2")
    extra = ("[thresholds.\"onnx/int8\"]\ndecode_tok_s = { min = 0.3, of = \"onnx/fp32\" }\n"
             "prefill_tok_s = { min = 0.3, of = \"onnx/fp32\" }\n")
    config = sweep_file(recipes=("fp32", "int8"), extra=extra)
    assert cli("check", config).code == 0  # quiet(er): exports, and a baseline to hold the others to
    baseline = config.parent / "baseline"
    (config.parent / "results").rename(baseline)
    config.write_text(config.read_text() + f"[baseline]\nresults = \"{baseline}\"\ntolerance_pct = 10\n"
                      "metrics = [\"decode_tok_s\", \"prefill_tok_s\", \"file_mb\"]\n")
    stop_at = time.time() + 600
    ctx = multiprocessing.get_context("fork")
    loops = [ctx.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(os.cpu_count() or 2)]
    for p in loops:
        p.start()
    try:
        codes = [cli("check", config, "--fresh").code for _ in range(5)]
    finally:
        for p in loops:
            p.kill()
    assert codes == [0] * 5, codes
