from __future__ import annotations

import hashlib
import json

import pytest


@pytest.fixture
def artifact(tiny_artifacts):
    return tiny_artifacts("qwen2", "onnx", "int8")


FAST = ("--prompt-len", "16", "--gen", "8", "--runs", "2", "--eval-tokens", "200")


def test_profile_prints_table_and_writes_result(cli, artifact, tmp_path):
    out = tmp_path / "results" / "local.json"
    r = cli("profile", artifact, *FAST, "-o", out)
    assert r.code == 0, r.err
    for name in ("decode_tok_s", "ttft_ms", "peak_rss_mb", "ppl", "kl_mean", "file_mb"):
        assert name in r.out
    data = json.loads(out.read_text())
    assert data["complete"] and data["settings"]["prompt_len"] == 16
    assert set(data["metrics"]["decode_tok_s"]) >= {"value", "unit", "higher_is_better", "samples"}
    assert {"artifact", "device", "environment", "settings", "metrics"} <= set(data)


def test_profile_json_and_eval_text(cli, artifact, tmp_path):
    text = tmp_path / "eval.txt"
    text.write_text("The cat sat on the mat and looked at the big red ball. " * 20)
    r = cli("profile", artifact, *FAST, "--eval-text", text, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["settings"]["eval_text"] == str(text) and data["settings"]["eval_text_name"] == "eval.txt"
    assert data["settings"]["eval_text_sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--device", "nowhere"), "unknown device 'nowhere'"),
        (("--device", "missing.yaml"), "device profile not found"),
        (("--prompt-len", "500", "--gen", "100"), "exceeds the model's context"),
        (("--eval-text", "/nonexistent/eval.txt"), "cannot read --eval-text"),
    ],
)
def test_profile_bad_input(cli, artifact, args, message):
    r = cli("profile", artifact, *args)
    assert r.code == 2
    assert r.err.startswith("error:") and message in r.err and r.err.strip().count("\n") == 0, r.err


def test_malformed_profile_file(cli, artifact, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntransport: ssh\nhost: [unclosed\n")
    r = cli("profile", artifact, "--device", bad)
    assert r.code == 2 and "not valid YAML" in r.err
    bad.write_text("name: x\ntransport: ssh\nhost: h\ncolour: blue\n")
    r = cli("profile", artifact, "--device", bad)
    assert r.code == 2 and "unknown key(s) colour" in r.err


def test_failed_device_writes_incomplete_result_and_exits_2(cli, artifact, tmp_path):
    impatient = tmp_path / "impatient.yaml"
    impatient.write_text("name: impatient\ntransport: local\ntimeout_s: 0.01\n")
    out = tmp_path / "r.json"
    r = cli("profile", artifact, *FAST, "--device", impatient, "-o", out)
    assert r.code == 2
    assert r.err.startswith("error: device impatient: start runner:") and str(out) in r.err, r.err
    data = json.loads(out.read_text())
    assert data["complete"] is False and data["error"].startswith("device impatient")
    assert data["metrics"]["file_mb"]["value"] > 0


def test_devices_lists_local(cli):
    r = cli("devices", "--json")
    assert r.code == 0
    rows = json.loads(r.out)
    assert rows[0]["name"] == "local" and rows[0]["status"] == "ok"
