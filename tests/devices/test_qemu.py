"""The emulated arm64 device (transport qemu).

The fast tests use a stand-in userland whose ``python`` is this machine's (the transport, the marking of
emulated figures and `edgekit check` on such a device); the slow one builds the real userland (about
55 MB from Debian and PyPI, once: it is kept in $EDGEKIT_USERLAND_DIR, else edgekit's cache) and
profiles builtin:tiny's ONNX int4 export on ARM kernels under qemu-aarch64-static.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgekit.devices import load_profile, parse_profile
from edgekit.devices import userland
from edgekit.errors import EdgekitError
from edgekit.profile.metrics import EMULATED

USERLANDS = userland.base_dir()  # read before any test points EDGEKIT_CACHE_DIR at its own folder
SMALL = ("--runs", "1", "--warmup", "0", "--prompt-len", "16", "--gen", "8", "--eval-tokens", "200")


@pytest.fixture(scope="module")
def tiny_int4(tmp_path_factory) -> Path:
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    out = tmp_path_factory.mktemp("qemu") / "tiny-int4"
    export(resolve("builtin:tiny"), parse("onnx", "int4"), out, parity=False)
    return out


def test_the_shipped_profile_is_emulated():
    p = load_profile("arm64-emulated")
    assert (p.transport, p.emulated, p.arch, p.cpu) == ("qemu", True, "aarch64", "cortex-a76")
    assert parse_profile({"name": "vm", "transport": "ssh", "host": "vm", "emulated": True}, "vm.yaml").emulated
    with pytest.raises(EdgekitError, match="a qemu device is emulated"):
        parse_profile({"name": "x", "transport": "qemu", "emulated": False}, "x.yaml")


def test_profile_before_setup_says_what_to_run(cli, tmp_path, monkeypatch, tiny_int4):
    monkeypatch.setenv("EDGEKIT_USERLAND_DIR", str(tmp_path / "userlands"))
    r = cli("profile", tiny_int4, "--device", "arm64-emulated", *SMALL)
    assert r.code == 2 and "run `edgekit devices setup arm64-emulated` once" in r.err, r.err
    assert not (tmp_path / "userlands").exists()
    config = tmp_path / "edgekit.toml"
    config.write_text('models = ["builtin:tiny"]\ndevices = ["arm64-emulated"]\n[recipes]\nonnx = ["int4"]\n')
    r = cli("check", config)
    assert r.code == 2 and "edgekit.toml: device arm64-emulated: no arm64 userland" in r.err
    assert not (tmp_path / "results").exists()  # refused before anything ran
    r = cli("devices", "--check", "--json")
    row = next(x for x in json.loads(r.out) if x["name"] == "arm64-emulated")
    assert "edgekit devices setup arm64-emulated" in row["status"]


def test_setup_is_for_devices_that_need_it(cli, monkeypatch, tmp_path):
    r = cli("devices", "setup", "local")
    assert r.code == 2 and "device local (local) needs no setup here" in r.err
    monkeypatch.setenv("EDGEKIT_USERLAND_DIR", str(tmp_path))
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == userland.QEMU else real_which(name))
    r = cli("devices", "setup", "arm64-emulated")
    assert r.code == 2 and "qemu-aarch64-static not found" in r.err and "apt-get install qemu-user-static" in r.err
    assert list(tmp_path.iterdir()) == []  # nothing half-built


def test_emulated_figures_are_kept_but_not_shown_compared_or_judged(cli, standin, tiny_int4, tmp_path):
    out = tmp_path / "emu.json"
    r = cli("profile", tiny_int4, "--device", standin, "-o", out, *SMALL)
    assert r.code == 0, r.err
    assert "emu is emulated: load_s, ttft_ms" in r.err
    shown = {line.split()[1] for line in r.out.splitlines() if line.startswith("│")}
    assert {"top1_agree", "dppl_pct", "file_mb"} <= shown and not shown & set(EMULATED)
    result = json.loads(out.read_text())
    assert result["device"]["emulated"] is True and result["device"]["transport"] == "qemu"
    assert {n for n, m in result["metrics"].items() if m.get("emulated")} == set(EMULATED)
    assert result["metrics"]["decode_tok_s"]["value"] > 0  # kept in the JSON

    r = cli("report", out, "-f", "csv")
    row = r.out.splitlines()[1].split(",")
    header = r.out.splitlines()[0].split(",")
    assert row[header.index("decode_tok_s")] == "" and row[header.index("top1_agree")] != ""
    r = cli("report", out, "-f", "csv", "--emulated")
    assert r.out.splitlines()[1].split(",")[header.index("decode_tok_s")] != ""
    r = cli("report", out, "-f", "html", "-o", tmp_path / "r.html")
    assert "Emulated device(s) emu: timings and memory left out" in (tmp_path / "r.html").read_text()

    r = cli("compare", out, out, "--json")
    data = json.loads(r.out)
    compared = {c["metric"] for c in data["changes"]}
    assert "top1_agree" in compared and not compared & set(EMULATED)
    assert {row[-1] for row in data["emulated_not_compared"]} == set(EMULATED) & set(result["metrics"])
    r = cli("compare", out, out)
    assert "not compared, an emulator's figures: " in r.err and "decode_tok_s" in r.err


def test_an_executorch_artifact_is_refused_in_one_line(cli, standin, tiny_int4, tmp_path):
    et = tmp_path / "tiny-et"
    shutil.copytree(tiny_int4, et)
    manifest = json.loads((et / "edgekit.json").read_text())
    (et / "edgekit.json").write_text(json.dumps({**manifest, "target": "executorch"}))
    r = cli("profile", et, "--device", standin, "--no-accuracy", *SMALL)
    assert r.code == 2
    assert ("device emu: push: runs onnx artifacts only, not executorch "
            "(ExecuTorch's Python runtime links libtorch") in r.err


def _check_file(tmp_path: Path, device: str, export_cache: Path) -> Path:
    config = tmp_path / "edgekit.toml"
    config.write_text(
        f'models = ["builtin:tiny"]\ndevices = ["{device}"]\noutput = "results"\ncache = "{export_cache}"\n'
        '[recipes]\nonnx = ["int4"]\n'
        "[profile]\nruns = 1\nwarmup = 0\nprompt_len = 16\ngen = 8\neval_tokens = 200\n"
        "[thresholds]\nparity = true\ntop1_agree = { min = 0.9 }\ndppl_pct = { max = 5 }\n"
        "decode_tok_s = { min = 1e9 }\npeak_rss_mb = { max = 1 }\n"  # impossible: judged, these would fail
    )
    return config


def test_check_gates_on_accuracy_only(cli, standin, tmp_path, export_cache):
    junit = tmp_path / "junit.xml"
    r = cli("check", _check_file(tmp_path, str(standin), export_cache), "--junit", junit)
    assert r.code == 0, r.out + r.err
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert (cases["decode_tok_s >= 1e+09"].find("skipped").get("message")
            == "decode_tok_s is an emulator's figure on emu: not judged")
    assert cases["peak_rss_mb <= 1"].find("skipped") is not None
    assert cases["top1_agree >= 0.9"].find("failure") is None and cases["top1_agree >= 0.9"].find("skipped") is None

    # against a baseline of the same device: the emulator's timings are not compared either, and say so
    config = _check_file(tmp_path, str(standin), export_cache)
    (tmp_path / "base").mkdir()
    for f in (tmp_path / "results").glob("*.json"):
        shutil.copy(f, tmp_path / "base")
    config.write_text(config.read_text() + '[baseline]\nresults = "base"\nmetrics = ["decode_tok_s", "file_mb"]\n')
    r = cli("check", config, "--junit", junit)
    assert r.code == 0, r.out + r.err
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    skipped = cases["decode_tok_s vs baseline"].find("skipped")
    assert skipped.get("message") == "decode_tok_s is an emulator's figure on emu: not compared"
    assert cases["file_mb vs baseline"].find("failure") is None and cases["file_mb vs baseline"].find("skipped") is None


# -- the real thing: Debian's arm64 python and onnxruntime's aarch64 wheel under qemu-aarch64-static --------------

@pytest.fixture(scope="module")
def arm64(tmp_path_factory):
    """The shipped arm64-emulated profile, its userland built (once: kept between sessions)."""
    for tool, package in ((userland.QEMU, "qemu-user-static"), ("apt-get", "apt"), ("dpkg", "dpkg")):
        if not shutil.which(tool):
            pytest.skip(f"no {tool}: install {package} to test the emulated arm64 device")
    if not Path(userland.KEYRING).is_file():
        pytest.skip(f"no {userland.KEYRING}: install debian-archive-keyring to test the emulated arm64 device")
    profile = load_profile("arm64-emulated")
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEKIT_USERLAND_DIR", str(USERLANDS))
    try:
        from edgekit.devices import setup

        try:
            setup(profile, lambda text: None)
        except EdgekitError as e:
            if any(step in str(e) for step in ("apt-get update failed", "pip download failed")):
                pytest.skip(f"cannot download the arm64 userland: {e}")
            raise
        yield profile
    finally:
        mp.undo()


def test_int4_on_arm64_kernels(cli, arm64, tiny_int4, tmp_path, monkeypatch, export_cache):
    monkeypatch.setenv("EDGEKIT_USERLAND_DIR", str(USERLANDS))
    r = cli("devices", "setup", "arm64-emulated")
    assert r.code == 0 and "is set up already" in r.err and "aarch64" in r.err
    out = tmp_path / "arm.json"
    r = cli("profile", tiny_int4, "--device", "arm64-emulated", "-o", out, *SMALL)
    assert r.code == 0, r.err
    result = json.loads(out.read_text())
    env, metrics = result["environment"], result["metrics"]
    assert env["machine"] == "aarch64" and env["onnxruntime"] == userland.pins()["onnxruntime"]
    assert result["device"]["cpu"] == "cortex-a76" and result["device"]["qemu"]
    assert metrics["top1_agree"]["value"] >= 0.9 and abs(metrics["dppl_pct"]["value"]) < 5
    assert metrics["decode_tok_s"]["emulated"] and "emulated" not in metrics["top1_agree"]

    junit = tmp_path / "junit.xml"
    r = cli("check", _check_file(tmp_path, "arm64-emulated", export_cache), "--junit", junit)
    assert r.code == 0, r.out + r.err
    result = json.loads((tmp_path / "results" / "builtin-tiny__onnx-int4-g64-mix1__arm64-emulated.json").read_text())
    assert result["environment"]["machine"] == "aarch64"
