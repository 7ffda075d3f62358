"""`edgekit sweep`: every combination exported once (cached), profiled, resumable, failures recorded."""

from __future__ import annotations

import json
import shutil

import pytest

from edgekit.builtins import BUILTINS


def _results(folder) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_sweep_exports_once_and_reruns_export_nothing(cli, sweep_file, monkeypatch):
    config = sweep_file()
    r = cli("sweep", config)
    assert r.code == 0, r.err
    results = _results(config.parent / "results")
    assert sorted(results) == ["builtin-tiny__onnx-fp32__local.json", "builtin-tiny__onnx-int4-g64-mix1__local.json"]
    assert all(d["complete"] and d["metrics"]["decode_tok_s"]["value"] > 0 for d in results.values())
    assert {d["settings"]["eval_text_name"] for d in results.values()} == {"eval.txt"}  # builtin:tiny's own stories
    assert "2 combination(s): 2 measured" in r.err and "int4-g64-mix1" in r.out

    import edgekit.export

    def no_export(*args, **kwargs):
        raise AssertionError("a cached export was made again")

    monkeypatch.setattr(edgekit.export, "export", no_export)
    r = cli("sweep", config)  # same output: every result is complete, nothing runs
    assert r.code == 0 and "0 measured, 2 kept, 0 failed; exports: 0 exported, 0 cached" in r.err, r.err

    shutil.rmtree(config.parent / "results")  # results gone, exports cached: profiled again, never exported
    r = cli("sweep", config)
    assert r.code == 0 and "2 measured, 0 kept, 0 failed; exports: 0 exported, 2 cached" in r.err, r.err
    assert "export cached" in r.err
    r = cli("sweep", config, "--fresh")  # measured again, still never exported
    assert r.code == 0 and "2 measured, 0 kept, 0 failed; exports: 0 exported, 2 cached" in r.err, r.err

    import edgekit.data
    import edgekit.sweep
    from edgekit.errors import EdgekitError

    def measured_again(*args, **kwargs):
        raise EdgekitError("measured again")

    other = config.parent / "other.txt"
    other.write_text("Another evaluation text, a little longer than sixteen tokens of it. " * 4)
    monkeypatch.setattr(edgekit.data, "EVAL_TEXT", other)  # the model's default text changed: nothing is kept
    monkeypatch.setattr(edgekit.sweep, "profile", measured_again)
    r = cli("sweep", config)
    assert "0 measured, 0 kept, 2 failed" in r.err and "measured again" in r.err, r.err


def test_interrupted_sweep_resumes_with_the_missing_combination(cli, sweep_file, monkeypatch):
    import edgekit.sweep

    config = sweep_file()
    real, calls = edgekit.sweep.profile, []

    def interrupted(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(edgekit.sweep, "profile", interrupted)
    r = cli("sweep", config)
    assert r.code == 2 and "interrupted" in r.err
    folder = config.parent / "results"
    assert [p.name for p in folder.iterdir()] == ["builtin-tiny__onnx-fp32__local.json"]  # nothing half-written

    monkeypatch.setattr(edgekit.sweep, "profile", real)
    r = cli("sweep", config)
    assert r.code == 0 and "1 measured, 1 kept, 0 failed" in r.err, r.err
    assert "onnx/fp32 on local: kept" in r.err and "onnx/int4-g64-mix1 on local: export cached, measured" in r.err


def test_failing_combination_is_recorded_and_the_sweep_goes_on(cli, sweep_file, tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    config = json.loads((BUILTINS["tiny"].path() / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    (bert / "model.safetensors").symlink_to(BUILTINS["tiny"].path() / "model.safetensors")
    r = cli("sweep", sweep_file(recipes=("fp32",), models=(bert, "builtin:tiny"), extra="accuracy = false\n"))
    assert r.code == 1, r.err
    assert "1 of 2 combination(s) failed" in r.err and "FAILED: unsupported architecture 'bert'" in r.err
    results = _results(tmp_path / "results")
    failed = next(d for name, d in results.items() if name.endswith("-bert__onnx-fp32__local.json"))
    assert failed["complete"] is False and "unsupported architecture" in failed["error"]
    assert results["builtin-tiny__onnx-fp32__local.json"]["complete"] is True

    r = cli("report", tmp_path / "results", "--format", "md")  # a failed combination is a result like any other
    assert r.code == 0 and "| onnx | fp32 | local | NO |" in r.out


M, R = "models = ['builtin:tiny']\n", "[recipes]\nonnx = ['fp32']\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (M + "colour = 'blue'\n" + R, "unknown key(s) colour"),
        (M + "[recipes]\nonnx = ['int3']\n", "sweep.toml [recipes]: unknown recipe 'int3'"),
        (M + "[recipes]\ntflite = ['fp32']\n", "unknown target 'tflite'"),
        (M + R + "[profile]\nruns = 'many'\n", "'runs' must be an integer"),
        (M + R + "[profile]\ngen = 1\n", "[profile]: 'gen' must be an integer from 2"),
        (M + R + "[profile]\nseed = 1\n", "unknown key(s) seed"),
        (M + R + "[profile]\nthreads = 0\n", "[profile]: 'threads' must be an integer from 1"),
        (M + "devices = ['nowhere']\n" + R, "unknown device 'nowhere'"),
        (R, "'models' must be a non-empty list"),
        ("models = 'x' = 1\n", "not valid TOML"),
    ],
)
def test_bad_sweep_file_is_one_line_and_exit_2(cli, tmp_path, text, message):
    config = tmp_path / "sweep.toml"
    config.write_text(text)
    r = cli("sweep", config)
    assert r.code == 2 and message in r.err and r.err.strip().count("\n") == 0, r.err
    assert not (tmp_path / "results").exists()


def test_missing_sweep_file(cli, tmp_path):
    r = cli("sweep", tmp_path / "nope.toml")
    assert r.code == 2 and "config file not found" in r.err


def test_sweeps_sharing_a_cache_make_an_artifact_once(tmp_path):
    """The export of a combination holds a lock beside its cache folder: a second sweep waits, then
    finds the artifact made."""
    import fcntl
    import threading
    import time

    lock, events = tmp_path / "a.lock", []
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        other = threading.Thread(target=lambda: _exclusive_block(lock, events))
        other.start()
        for _ in range(500):
            if events:
                break
            time.sleep(0.01)
        assert events == ["waiting"]
        fcntl.flock(held, fcntl.LOCK_UN)
    other.join(10)
    assert events == ["waiting", "inside"]


def _exclusive_block(lock, events):
    from edgekit.sweep import _exclusive

    with _exclusive(lock, lambda: events.append("waiting")):
        events.append("inside")


def test_an_interrupted_profile_keeps_its_runs_in_the_sweep(cli, sweep_file, monkeypatch):
    import edgekit.sweep
    from edgekit.profile.session import Interrupted, RunResult

    config = sweep_file(recipes=("fp32",))
    real = edgekit.sweep.profile

    def interrupted(*args, **kwargs):
        data = real(*args, **kwargs).to_json()
        data.update(complete=False, error="device local: run 2/2: interrupted", runs=data["runs"][:1])
        raise Interrupted(RunResult.from_json(data))

    monkeypatch.setattr(edgekit.sweep, "profile", interrupted)
    r = cli("sweep", config)
    assert r.code == 2 and "interrupted" in r.err
    data = json.loads((config.parent / "results" / "builtin-tiny__onnx-fp32__local.json").read_text())
    assert data["complete"] is False and len(data["runs"]) == 1 and data["sweep"]["fingerprint"]
    monkeypatch.setattr(edgekit.sweep, "profile", real)
    r = cli("sweep", config)  # an incomplete result is measured again
    assert r.code == 0 and "1 measured, 0 kept" in r.err, r.err


def test_a_result_folder_that_is_a_file_is_refused_before_any_work(cli, sweep_file, monkeypatch):
    import edgekit.sweep

    config = sweep_file(recipes=("fp32",))
    (config.parent / "results").write_text("not a folder")
    monkeypatch.setattr(edgekit.sweep, "resolve", lambda *a, **k: pytest.fail("work began"), raising=False)
    r = cli("sweep", config)
    assert r.code == 2 and "cannot write" in r.err and r.err.count("\n") == 1, r.err


def test_combinations_that_would_share_a_result_file_are_a_bad_config(cli, tmp_path):
    for models in ("['models/m-x', 'models/m/x']", "['models/M', 'models/m']"):
        config = tmp_path / "sweep.toml"
        config.write_text(f"models = {models}\n" + R)
        r = cli("sweep", config)
        assert r.code == 2 and "would write the same result file" in r.err and r.err.count("\n") == 1, r.err
        assert not (tmp_path / "results").exists()


def test_a_failed_parity_check_is_shown_and_counted_as_a_failure(cli, sweep_file, monkeypatch):
    """A combination whose export failed its parity check is measured all the same, but the table
    and markdown say so, the summary counts it as failed and the sweep exits 1."""
    import edgekit.profile.session as session

    digest = session._digest

    def failed_int4(art):
        d = digest(art)
        return {**d, "parity_passed": False} if d["recipe"].startswith("int4") else d

    monkeypatch.setattr(session, "_digest", failed_int4)
    config = sweep_file()
    r = cli("sweep", config, "--fresh")
    assert r.code == 1, r.err
    assert "1 measured, 0 kept, 1 failed (1 of them their parity check, measured all the same)" in r.err, r.err
    assert "1 of 2 combination(s) failed: 1 failed their export's parity check" in r.err
    assert "its export FAILED the parity check" in r.err
    assert "FAILED" in r.out and "parity" in r.out
    md = cli("report", config.parent / "results", "-f", "md").out
    assert "| local | yes | FAILED | genai P16 G8" in md and "| onnx | fp32 | local | yes | passed | genai P16 G8" in md


def test_a_sweep_is_plan_then_export_then_profile_through_its_executor(sweep_file):
    """The export and profile phases hand their tasks to the executor (serial by default); progress
    comes back as events to one listener, a finished combination's with its outcome."""
    from edgekit.executor import Serial
    from edgekit.sweep import load_config, plan, run

    config, _ = load_config(sweep_file(recipes=("fp32",), extra="accuracy = false\n"))
    jobs = plan(config, fresh=True)
    assert [j.combination for j in jobs] == config.combinations() and not any(j.kept or j.error for j in jobs)
    phases, events = [], []

    class Recording(Serial):
        def map(self, phase, task, items, note):
            phases.append((phase, len(items)))
            yield from super().map(phase, task, items, note)

    outcomes = run(config, events.append, fresh=True, executor=Recording())
    assert phases == [("export", 1), ("profile", 1)]
    assert [o.status for o in outcomes] == ["measured"]
    assert [e.outcome for e in events if e.outcome] == outcomes and events[-1].phase == "done"
    assert {e.phase for e in events} >= {"plan", "profile", "done"}


def test_target_options_of_a_sweep_file_reach_its_recipes(sweep_file):
    from edgekit.errors import EdgekitError
    from edgekit.sweep import load_config

    config, _ = load_config(sweep_file(recipes=("fp32",), extra="[options]\nonnx = { exporter = \"optimum\" }\n"))
    assert [r.option("exporter") for r in config.recipes] == ["optimum"]
    config, _ = load_config(sweep_file(recipes=("fp32",)))
    assert [r.option("exporter") for r in config.recipes] == ["auto"]
    with pytest.raises(EdgekitError, match="unknown exporter 'fast'"):
        load_config(sweep_file(recipes=("fp32",), extra="[options]\nonnx = { exporter = \"fast\" }\n"))
    with pytest.raises(EdgekitError, match=r"\[options\]: unknown key\(s\) gguf"):
        load_config(sweep_file(recipes=("fp32",), extra="[options]\ngguf = { exporter = \"x\" }\n"))


def test_a_ctrl_c_a_library_turns_into_its_own_error_stops_the_sweep(cli, tmp_path, builder_interrupted):
    """As Ctrl-C itself does: the sweep stops, nothing is recorded as that combination's failure."""
    builder_interrupted("chained")
    config = tmp_path / "sweep.toml"
    config.write_text('models = ["builtin:tiny"]\noutput = "results"\ncache = "cache"\n'
                      '[recipes]\nonnx = ["fp32", "int8"]\n')
    r = cli("sweep", config)
    assert r.code == 2 and r.said.endswith("error: interrupted; nothing half-written was left behind\n"), r.err
    assert not list((tmp_path / "results").glob("*.json")) and not list((tmp_path / "cache").glob("*/edgekit.json"))


def test_a_pickle_only_model_needs_the_config_s_consent(cli, sweep_file, tiny_models, tmp_path):
    """The error said "pass --allow-pickle", which sweep and check have not (issue 30): the config's
    ``allow_pickle = true`` is the consent, and the advice names it."""
    import torch
    from safetensors.torch import load_file

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    config = sweep_file(recipes=("fp32",), models=(model,))
    r = cli("sweep", config)
    assert r.code != 0 and "allow_pickle = true" in r.err, r.err
    config.write_text("allow_pickle = true\n" + config.read_text())
    r = cli("sweep", config, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["results"][0]["complete"] is True


def test_a_damaged_cached_export_is_made_again(cli, sweep_file, tmp_path):
    """Every run failed with "export it again", and nothing did (issue 30): the sweep re-exports it."""
    config = sweep_file(recipes=("fp32",))
    lines = config.read_text().splitlines()  # a cache of its own: the session's shared one stays whole
    config.write_text("\n".join(f'cache = "{tmp_path}/cache"' if x.startswith("cache =") else x for x in lines) + "\n")
    r = cli("sweep", config)
    assert r.code == 0, r.err
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    with open(entry / "model.onnx", "r+b") as f:
        f.truncate(100)
    r = cli("sweep", config, "--fresh", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["results"][0]["complete"] is True
    assert [c["export"] for c in data["combinations"]] == ["exported"], data["combinations"]
    assert "the cached export is damaged (model.onnx has 100 bytes" in r.err


def test_what_no_profile_could_run_fails_in_the_plan_before_any_export(cli, tmp_path, monkeypatch):
    """issue 30: a prompt and its generation beyond the context the export will have, and a device over
    the network that does not answer (a closed port), are found in the plan, not after every export."""
    import edgekit.sweep

    monkeypatch.setattr(edgekit.sweep, "_artifact", lambda *a: pytest.fail("exported before the plan's refusal"))
    (tmp_path / "far.yaml").write_text("name: far\ntransport: ssh\nhost: 127.0.0.1\nport: 1\ntimeout_s: 10\n")
    config = tmp_path / "sweep.toml"
    head = "models = ['builtin:tiny']\noutput = 'results'\ncache = 'cache'\n"
    config.write_text("devices = ['far.yaml']\n" + head + R + "[profile]\nprompt_len = 16\ngen = 8\n")
    r = cli("sweep", config)
    assert r.code == 1 and "FAILED: device far: cannot reach it" in r.err, r.err
    config.write_text(head + R + "[profile]\nprompt_len = 500\ngen = 100\n")
    r = cli("sweep", config)
    assert r.code == 1 and "FAILED: prompt_len + gen = 600 exceeds the context of 512 tokens" in r.err, r.err


def test_a_full_disk_loses_no_measured_result(cli, sweep_file, full_disk):
    """The output folder's disk is full: each result measured is shown and kept in the temporary folder,
    the sweep goes on and fails in the end (exit 1), and no empty output folder is left."""
    config = sweep_file(recipes=("fp32",))
    scratch = full_disk("results")
    r = cli("sweep", config)
    assert r.code == 1, r.err
    [kept] = scratch.glob("edgekit-*builtin-tiny__onnx-fp32__local.json")
    result = json.loads(kept.read_text())
    assert result["complete"] is True and result["metrics"]["decode_tok_s"]["value"] > 0
    assert "No space left on device" in r.err and f"its result is in {kept} instead" in r.err, r.err
    assert "builtin:tiny" in r.out and "1 result(s)" in r.out  # the figures are shown all the same
    assert not (config.parent / "results").exists()
