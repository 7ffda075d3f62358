"""The native runner as edgekit builds and runs it: `edgekit devices build-runner` (cached by content),
a profile's `runner: native|python`, and the local device running a GGUF artifact through it."""

from __future__ import annotations

import json
import shutil

import pytest

from edgekit.devices import native, parse_profile
from edgekit.errors import EdgekitError

FAST = ("--prompt-len", "16", "--gen", "8", "--runs", "2", "--warmup", "0", "--eval-tokens", "200", "--threads", "1")


def test_build_runner_reuses_the_cached_build(cli, native_cache):
    r = cli("devices", "build-runner", "--json")
    assert r.code == 0, r.err
    b = json.loads(r.out)
    assert b["built"] is False and b["binary"] == str(native_cache.binary) and "gguf" in b["targets"]
    assert b["binary_bytes"] > 0 and b["build_s"] > 0 and b["backends"][0].startswith("llama.cpp ")
    r = cli("devices", "build-runner")
    assert r.code == 0 and "cached (built in" in r.err and " MB" in r.err, r.err


def test_the_build_key_follows_the_sources(tmp_path, monkeypatch, native_build):
    copy = tmp_path / "runner"
    shutil.copytree(native.SOURCE, copy)
    monkeypatch.setattr(native, "SOURCE", copy)
    assert native.build_key("x86_64") == native_build.key
    (copy / "src" / "main.cpp").write_text((copy / "src" / "main.cpp").read_text() + "\n// changed\n")
    assert native.build_key("x86_64") != native_build.key


@pytest.mark.parametrize("arch, message", [
    ("aarch64", "building the native runner for aarch64 on x86_64 (a cross-compile) is not supported yet"),
    ("mips", "--arch must be one of x86_64, aarch64, got 'mips'"),
])
def test_build_runner_refuses_what_it_cannot_build(cli, arch, message):
    if native.host_arch() != "x86_64":
        pytest.skip("the messages name an x86_64 host")
    r = cli("devices", "build-runner", "--arch", arch)
    assert r.code == 2 and r.out == ""
    assert r.err.splitlines() == [f"error: {message}; run build-runner on the aarch64 machine itself"
                                  if arch == "aarch64" else f"error: {message}"]


@pytest.mark.parametrize("data, message", [
    ({"transport": "local", "runner": "rust"}, "'runner' must be one of python, native, got 'rust'"),
    ({"transport": "ssh", "host": "board", "runner": "native"}, "'runner: native' runs on the local device only"),
])
def test_a_profile_s_runner_is_checked(data, message):
    with pytest.raises(EdgekitError, match=message):
        parse_profile({"name": "x", **data}, "x.yaml")
    assert parse_profile({"name": "x", "transport": "local"}, "x.yaml").runner == "python"


@pytest.fixture(scope="module")
def tiny_q4(tmp_path_factory, export_builtin):
    return export_builtin(tmp_path_factory.mktemp("native-q4"), "gguf", ["q4_0"])["q4_0"].path


def test_local_device_profiles_gguf_through_the_native_runner(cli, tiny_q4, native_cache, tmp_path):
    device = tmp_path / "native.yaml"
    device.write_text("name: local-native\ntransport: local\nrunner: native\n")
    r = cli("profile", tiny_q4, "--device", device, *FAST, "--json")
    assert r.code == 0, r.err
    native_result = json.loads(r.out)
    assert native_result["complete"] and native_result["device"]["runner"] == "native"
    env = native_result["environment"]
    assert env["native_runner"] == native_cache.key and "python" not in env and env["llama_cpp_python"]
    r = cli("profile", tiny_q4, *FAST, "--json")
    assert r.code == 0, r.err
    python_result = json.loads(r.out)
    assert "python" in python_result["environment"]
    for name in ("ppl", "top1_agree", "kl_mean", "dppl_pct"):  # the same logits: the same figures
        assert native_result["metrics"][name]["value"] == pytest.approx(python_result["metrics"][name]["value"],
                                                                         rel=1e-6, abs=1e-9), name
    # peak RSS without Python and numpy: the native runner's is a fraction of the Python runner's
    assert native_result["metrics"]["peak_rss_mb"]["value"] < python_result["metrics"]["peak_rss_mb"]["value"]


def test_targets_without_a_native_backend_stay_on_the_python_runner(cli, tiny_artifacts, native_cache, tmp_path):
    device = tmp_path / "native.yaml"
    device.write_text("name: local-native\ntransport: local\nrunner: native\n")
    r = cli("profile", tiny_artifacts("llama", "onnx", "fp32"), "--device", device, *FAST, "--no-accuracy", "--json")
    assert r.code == 0, r.err
    assert "python" in json.loads(r.out)["environment"]


def test_local_device_profiles_executorch_through_the_native_runner(cli, tiny_artifacts, native_cache, tmp_path):
    if "executorch" not in native_cache.targets:
        pytest.skip("this native runner was built without the ExecuTorch backend")
    device = tmp_path / "native.yaml"
    device.write_text("name: local-native\ntransport: local\nrunner: native\n")
    art = tiny_artifacts("llama", "executorch", "8da4w")
    r = cli("profile", art, "--device", device, *FAST, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["complete"] and "python" not in result["environment"] and result["environment"]["executorch"]
    assert result["metrics"]["top1_agree"]["value"] > 0.5  # scored against the fp32 PyTorch reference
