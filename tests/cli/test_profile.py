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
    # the threads the runtime ran, resolved (none asked: the runner's choice, and why), and the machine's load
    env = data["environment"]
    assert isinstance(env["threads"], int) and env["threads"] >= 1 and "physical core(s)" in env["threads_from"]
    assert env["load"]["cpus"] >= 1 and len(env["load"]["loadavg_1m"]) == 2
    # (others' share over the measured runs; a run shorter than the kernel's tick says nothing of its own)
    assert 0 <= env["load"]["others_share"] <= 1 and all(0 <= run.get("others_share", 0) <= 1 for run in data["runs"])
    asked = json.loads(cli("profile", artifact, *FAST, "--no-accuracy", "--threads", "1", "--json").out)
    assert asked["environment"]["threads"] == 1 and asked["environment"]["threads_from"] == "asked"


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
    assert r.said.startswith("error: device impatient: start runner:") and str(out) in r.err, r.err
    data = json.loads(out.read_text())
    assert data["complete"] is False and data["error"].startswith("device impatient")
    assert data["metrics"]["file_mb"]["value"] > 0


def test_devices_lists_local(cli):
    r = cli("devices", "--json")
    assert r.code == 0
    rows = json.loads(r.out)
    assert rows[0]["name"] == "local" and rows[0]["status"] == "ok (this machine)"
    # what was not reached is never "ok"
    by_name = {x["name"]: x for x in rows}
    assert by_name["pixel-8"]["status"] == "not checked" and by_name["pixel-8"]["answers"] is None
    assert by_name["rpi5"]["status"].startswith("not set up: 'host' is not filled in (make your own copy with")


def test_devices_check_fails_when_a_device_does_not_answer(cli, monkeypatch):
    import edgekit.devices
    from edgekit.devices.process import DeviceError

    real = edgekit.devices.connect

    def connect(profile):
        transport = real(profile)
        if profile.transport == "adb":
            def silent():
                raise DeviceError("no device attached")
            transport.check = silent
        else:
            transport.check = lambda: {"python": "3.11"}
        return transport

    monkeypatch.setattr(edgekit.devices, "connect", connect)
    r = cli("devices", "--check", "--json")
    assert r.code == 1 and "2 device(s) did not answer: galaxy-s24, pixel-8" in r.err, r.err
    by_name = {x["name"]: x for x in json.loads(r.out)}
    assert by_name["pixel-8"]["status"] == "no answer: no device attached" and by_name["pixel-8"]["answers"] is False
    assert by_name["local"]["answers"] is True and by_name["rpi5"]["status"].startswith("skipped: ")


def test_version(cli):
    from edgekit import __version__

    r = cli("--version")
    assert r.code == 0 and r.out == f"edgekit {__version__}\n"


def _no_partials(folder) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".partial")]


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_a_bad_output_is_refused_before_measuring(cli, artifact, tmp_path, monkeypatch, where):
    import edgekit.profile.session

    monkeypatch.setattr(edgekit.profile.session, "profile",
                        lambda *a, **k: pytest.fail("measured before -o was checked"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    out = {"folder": tmp_path / "folder", "under-a-file": tmp_path / "file" / "r.json"}[where]
    r = cli("profile", artifact, *FAST, "-o", out, "--json")
    assert r.code == 2 and r.err.startswith(f"error: cannot write {out}") and r.err.count("\n") == 1, r.err
    assert _no_partials(tmp_path) and list((tmp_path / "folder").iterdir()) == []


def test_a_failed_write_keeps_the_result(cli, artifact, tmp_path, full_disk):
    """A full disk at the end: the result goes to stdout and to a file in the temporary folder, never nowhere."""
    full_disk("r.json")
    r = cli("profile", artifact, *FAST, "--no-accuracy", "-o", tmp_path / "out" / "r.json", "--json")
    assert r.code == 2 and "No space left on device" in r.err and r.said.count("\n") == 1, r.err
    assert json.loads(r.out)["complete"] is True
    kept = list((tmp_path / "tmp").glob("edgekit-*-r.json"))
    assert len(kept) == 1 and str(kept[0]) in r.err and json.loads(kept[0].read_text())["complete"] is True
    assert _no_partials(tmp_path) and not (tmp_path / "out" / "r.json").exists()


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interrupted_profile_keeps_the_runs_measured(cli, artifact, tmp_path, monkeypatch, signum):
    import os
    import signal

    from edgekit.devices import local

    real_run = local.Transport.run

    def run_then_signal(self, argv, stdin, timeout):
        runs = 0
        for line in real_run(self, argv, stdin, timeout):
            yield line
            runs += '"event": "run"' in line
            if runs == 3:
                os.kill(os.getpid(), getattr(signal, signum))  # as Ctrl-C or `kill` would, mid-profile

    monkeypatch.setattr(local.Transport, "run", run_then_signal)
    out = tmp_path / "r.json"
    r = cli("profile", artifact, "--prompt-len", "16", "--gen", "8", "--runs", "20", "--warmup", "0", "--no-accuracy",
            "-o", out)
    assert r.code == 2 and "interrupted" in r.err and "the 3 run(s) measured are in" in r.err, r.err
    assert r.said.count("\n") == 1
    data = json.loads(out.read_text())
    assert data["complete"] is False and len(data["runs"]) == 3 and "interrupted" in data["error"]
    assert data["metrics"]["decode_tok_s"]["value"] > 0
    assert _no_partials(tmp_path)


def test_a_failure_before_any_run_does_not_claim_runs(cli, artifact, tmp_path):
    impatient = tmp_path / "impatient.yaml"
    impatient.write_text("name: impatient\ntransport: local\ntimeout_s: 0.01\n")
    r = cli("profile", artifact, *FAST, "--device", impatient, "-o", tmp_path / "r.json")
    assert r.code == 2 and "no run measured" in r.err and "runs measured" not in r.err, r.err


def test_profile_ops_and_duration(cli, artifact, tmp_path):
    """--ops: the per-operator table from ONNX Runtime's profiler, printed and kept in the result;
    --duration: a sustained run's samples (tok/s, temperature and clock where exposed) and its summary."""
    out = tmp_path / "ops.json"
    r = cli("profile", artifact, *FAST, "--no-accuracy", "--ops", "--duration", "1.5", "-o", out)
    assert r.code == 0, r.err
    assert "slowest operators (onnxruntime profiler" in r.out and "MatMul" in r.out and "% of step" in r.out
    assert "sustained" in r.err and "tok/s in the first 10 s" in r.err
    data = json.loads(out.read_text())
    ops = data["ops"]
    assert ops["source"] == "onnxruntime profiler" and ops["decode_steps"] == 7 and ops["prefill_tokens"] == 16
    assert ops["rows"] and all(row["decode_ms"] >= 0 and row["calls"] > 0 for row in ops["rows"])
    assert sum(row["decode_ms"] for row in ops["rows"]) <= ops["decode_step_ms"] * 1.01
    samples = data["sustained"]["samples"]
    assert data["sustained"]["duration_s"] == 1.5 and samples and samples[-1]["t_s"] >= 1.5
    assert all(s["decode_tok_s"] > 0 and s["runs"] >= 1 for s in samples)
    assert data["settings"]["ops"] is True and data["settings"]["duration_s"] == 1.5
    html = tmp_path / "r.html"
    assert cli("report", out, "-f", "html", "-o", html).code == 0
    page = html.read_text()
    assert "per-operator times" in page and "Decode speed over time" in page
    # a result without them records neither (its settings as before)
    plain = json.loads(cli("profile", artifact, *FAST, "--no-accuracy", "--json").out)
    assert "ops" not in plain and "sustained" not in plain and "ops" not in plain["settings"]


@pytest.mark.parametrize("value", ["0", "-1", "3601", "nan", "inf"])
def test_profile_duration_out_of_range(cli, artifact, tmp_path, value):
    """Refused before any work, as every bad input (tests/test_bad_input.py's rule)."""
    out = tmp_path / "never.json"
    r = cli("profile", artifact, "--duration", value, "-o", out)
    assert r.code == 2 and r.out == "" and not out.exists()
    assert r.err.startswith("error:") and "--duration" in r.err and r.err.strip().count("\n") == 0, r.err
