"""Typed results and manifest: their JSON is the file's shape, older and hand-made files read, identity."""

from __future__ import annotations

import json

from edgekit.core.manifest import Manifest
from edgekit.core.results import SPECS, Metric, RunResult


def test_a_result_reads_back_as_it_was_written(make_result):
    from edgekit.profile.metrics import metric

    data = make_result("int4", decode_tok_s=100.0)
    data["metrics"]["ppl"] = metric("ppl", [2.0], 0.1, tokens=2048)
    data["metrics"]["decode_tok_s"]["emulated"] = True
    data.update(environment={"host": {"os": "Linux 6", "edgekit": "0.1"}, "python": "3.11", "onnxruntime": "1.31",
                             "cpu": "x", "threads": 2},
                settings={"prompt_len": 8}, runs=[{"index": 0, "warmup": False}], started="t0", finished="t1",
                sweep={"fingerprint": "f"}, something_new={"kept": True})
    result = RunResult.from_json(data)
    assert result.to_json() == data
    assert result.metrics["ppl"].tokens == 2048 and result.metrics["ppl"].stderr == 0.1
    assert result.environment.versions == {"python": "3.11", "onnxruntime": "1.31"} and result.environment.threads == 2
    assert set(result.figures()) == {"ppl"} and result.emulated_figures == ("decode_tok_s",)
    assert result.key == ("builtin:tiny", "onnx", "int4", "local") and result.measured_runs == 1


def test_an_older_hand_made_metric_gets_the_declared_unit_and_direction():
    m = Metric.from_json("decode_tok_s", {"value": 3.0})
    assert (m.unit, m.higher_is_better, m.samples) == ("tok/s", True, ())
    assert SPECS["dppl_pct"].accuracy and not SPECS["file_mb"].emulated


def test_identity_tells_apart_what_the_key_does_not(make_result):
    a = make_result("int4", decode_tok_s=1.0)
    b = json.loads(json.dumps(a))
    assert RunResult.from_json(a).identity == RunResult.from_json(b).identity
    b["settings"] = {"threads": 4}
    assert RunResult.from_json(a).key == RunResult.from_json(b).key
    assert RunResult.from_json(a).identity != RunResult.from_json(b).identity
    c = json.loads(json.dumps(a))
    c["environment"] = {"host": {}, "onnxruntime": "1.30"}
    assert RunResult.from_json(a).identity != RunResult.from_json(c).identity


def test_a_hand_made_manifest_reads_by_attribute_and_keeps_the_file_s_shape():
    data = {"schema": 1, "edgekit_version": "0.1", "target": "onnx", "recipe": {"name": "int4"},
            "source": {"model": "m", "model_type": "llama"}, "runtime": {"model_file": "model.onnx", "max_context": 64},
            "files": [{"path": "model.onnx", "bytes": 1, "sha256": "0"}], "parity": {"passed": True}}
    m = Manifest.from_json(data)
    assert m.to_json() == data and Manifest.from_json(m.to_json()) == m and m.extra["edgekit_version"] == "0.1"
    assert m.runtime["max_context"] == m.max_context == 64 and m.toolchain is None and m.recipe_name == "int4"
    assert (m.model, m.model_type, m.model_file, m.parity_passed, m.parity_skipped) == (
        "m", "llama", "model.onnx", True, False)
    # keys it lacks
    assert m.exporter is None and m.content_sha256 is None and m.revision is None and dict(m.stages) == {}
    skipped = Manifest.from_json({**data, "parity": {"passed": None, "skipped": "needs a Mac"}})
    assert skipped.parity_passed is None and skipped.parity_skipped == "needs a Mac"
    assert Manifest.from_json({k: v for k, v in data.items() if k != "parity"}).parity_passed is None
