"""``edgekit inspect`` reads any target's model file: inputs, outputs, ops, weights (states for Core ML)."""

from __future__ import annotations

import json

import pytest


def _inspect(cli, path) -> dict:
    r = cli("inspect", path, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_inspect_onnx(cli, tiny_artifacts):
    path = tiny_artifacts("llama")
    report = _inspect(cli, path)
    assert report["target"] == "onnx" and report["recipe"] == "fp32" and report["model_type"] == "llama"
    names = [i["name"] for i in report["inputs"]]
    assert "input_ids" in names and any(n.startswith("past_key_values.") for n in names)
    assert report["inputs"][0]["dtype"] == "int64" and report["inputs"][0]["shape"][0] == "batch_size"
    assert report["outputs"][0]["name"] == "logits"
    assert report["ops"]["MatMul"] > 0 and report["weights"]["float"]["bits"] == 32
    r = cli("inspect", path)
    assert r.code == 0 and "MatMul" in r.out and "past_key_values.{0..1}.key" in r.out  # a row for every layer's
    assert "past_key_values.1.key" not in r.out and "(model files, tokenizer, config)" in r.out


def test_inspect_onnx_4bit_weights_as_4bit_and_the_layers_kept_at_8(cli, tiny_artifacts):
    """MatMulNBits' packed uint8 bytes are 4-bit weights in blocks; -mix1 keeps layer 0 and the head at 8 bits."""
    report = _inspect(cli, tiny_artifacts("llama", "onnx", "int4"))
    assert report["weights"]["int4 (blocks of 64)"]["bits"] == 4 and "uint8" not in report["weights"]
    by_bits = {q["bits"]: q for q in report["quantized"]}
    assert by_bits[4]["block_size"] == 64 and "layers.1.mlp.down_proj" in by_bits[4]["layers"]
    assert "lm_head" in by_bits[8]["layers"] and all(n.startswith(("layers.0.", "lm_head", "embed_tokens"))
                                             for n in by_bits[8]["layers"])
    r = cli("inspect", tiny_artifacts("llama", "onnx", "int4"))
    assert "quantized layers" in r.out and "the others" in r.out


def test_inspect_executorch(cli, tiny_artifacts):
    pytest.importorskip("executorch")
    report = _inspect(cli, tiny_artifacts("llama", "executorch", "8da4w-mix0"))
    assert report["target"] == "executorch"
    w = report["weights"]  # recorded at export: the program file holds no typed list of its weights
    assert w["int4 (groups of 32)"]["bits"] == 4 and w["int8 (per channel)"]["tensors"] == 1  # the head
    assert "bfloat16 (scales)" in w
    assert [(i["name"], i["dtype"]) for i in report["inputs"]] == [("tokens", "int64"), ("input_pos", "int64")]
    assert report["outputs"][0]["dtype"] == "float32" and report["outputs"][0]["shape"][-1] > 100
    assert report["metadata"]["get_max_seq_len"] > 1 and report["metadata"]["use_kv_cache"] is True
    assert 0 < report["delegation"]["share"] <= 1
    assert report["ops"]["delegated to XNNPACK"] == report["delegation"]["delegated_nodes"] > 0


def test_inspect_coreml(cli, tiny_artifacts):
    pytest.importorskip("coremltools")
    path = tiny_artifacts("qwen2", "coreml", "int8")
    report = _inspect(cli, path)
    assert report["target"] == "coreml" and report["recipe"] == "int8"
    assert [s["name"] for s in report["states"]] == ["keyCache", "valueCache"]
    assert report["weights"]["int8"]["bits"] == 8 and report["ops"]["constexpr_blockwise_shift_scale"] > 0
    r = cli("inspect", path)
    assert r.code == 0 and "states" in r.out and "keyCache" in r.out and "1 x 1..128" in r.out


def test_inspect_gguf(cli, tiny_artifacts):
    pytest.importorskip("llama_cpp")
    path = tiny_artifacts("qwen2", "gguf", "q8_0")
    report = _inspect(cli, path)
    assert report["target"] == "gguf" and report["recipe"] == "q8_0"
    assert (report["metadata"]["general.architecture"] == "qwen2"
            and report["metadata"]["tokenizer.ggml.model"] == "gpt2")
    assert report["weights"]["q8_0"]["bits"] == 8.5 and report["weights"]["f32"]["tensors"] > 0  # norms, biases
    r = cli("inspect", path)
    assert r.code == 0 and "metadata" in r.out and "qwen2.block_count" in r.out and "q8_0" in r.out
    assert report["metadata"]["general.file_type"] == "Q8_0 (7)"  # llama.cpp's file type by name
    assert report["size_roles"] == ["model", "tokenizer", "config"]


def test_inspect_needs_an_artifact(cli, tmp_path):
    r = cli("inspect", tmp_path)
    assert r.code == 2 and "not an edgekit artifact" in r.err


def test_a_ctrl_c_a_library_swallows_still_stops_the_command(cli, tiny_artifacts, monkeypatch):
    """coremltools imports torch under a bare ``except:``: a Ctrl-C meanwhile was ignored, and `inspect`
    of a Core ML artifact ran to the end with exit 0 (issue 30). It is said as an interrupt."""
    import os
    import signal

    from edgekit.targets import onnx

    real = onnx.inspect

    def swallowing(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except:  # noqa: E722  (the library's bare except)
            pass
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx, "inspect", swallowing)
    r = cli("inspect", tiny_artifacts("llama"))
    assert r.code == 2 and r.err.startswith("error: interrupted") and r.out == "", (r.code, r.err)


def test_coremltools_import_stops_on_a_swallowed_ctrl_c(monkeypatch):
    from edgekit.errors import signalled
    from edgekit.targets import coreml

    pytest.importorskip("coremltools")
    signalled()
    try:
        with pytest.raises(KeyboardInterrupt):
            coreml._coremltools()
    finally:
        signalled(False)
