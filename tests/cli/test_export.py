"""`edgekit export`: bad input gets one line and an exit code, and never a half-written folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest


def _one_line_error(r, *fragments):
    assert r.err.strip().count("\n") == 0, r.err
    assert r.err.startswith("error:"), r.err
    assert "Traceback" not in r.err
    for f in fragments:
        assert f in r.err, r.err


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith((".partial", ".old"))]


def test_missing_model_folder(cli, tmp_path):
    r = cli("export", tmp_path / "nope", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "not found")
    assert not (tmp_path / "out").exists()


def test_unknown_target_and_recipe(cli, tiny_models, tmp_path):
    r = cli("export", tiny_models("llama"), "-t", "tflite", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "unknown target 'tflite'", "onnx")
    r = cli("export", tiny_models("llama"), "-r", "int3", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "unknown recipe 'int3'", "int4")
    r = cli("export", tiny_models("llama"), "-r", "int4-g7", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "group size 7")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weights(cli, tiny_models, tmp_path, damage):
    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "model.safetensors")
    assert not (tmp_path / "out").exists()


def test_pickle_only_checkpoint_needs_consent(cli, tiny_models, tmp_path):
    import torch
    from safetensors.torch import load_file

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "--allow-pickle")
    r = cli("export", model, "-o", tmp_path / "out", "--allow-pickle", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["parity"]["passed"] and json.loads(r.out)["source"]["allow_pickle"] is True
    # the consent is the manifest's: a profile's reference reads the same weights (its error said "pass
    # --allow-pickle", which profile has not, issue 30)
    r = cli("profile", tmp_path / "out", "--runs", "1", "--warmup", "0", "--prompt-len", "8", "--gen", "4",
            "--eval-tokens", "32", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["metrics"]["top1_agree"]["value"] > 0.9


def test_unsupported_architecture_lists_supported(cli, tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    model = tmp_path / "bert"
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    BertForMaskedLM(config).save_pretrained(model)
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "unsupported architecture 'bert'", "llama", "gpt2")


def test_an_unknown_model_type_is_refused_before_any_library_loads(cli, tiny_models, tmp_path, monkeypatch):
    """issue 30: a model type transformers does not know is said at once, not after the ONNX target's
    registry (optimum, torch, torchao: seconds and their log lines) has loaded."""
    import edgekit.targets.onnx

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    (model / "config.json").write_text(json.dumps({**json.loads((model / "config.json").read_text()),
                                                   "model_type": "frobnicator"}))
    monkeypatch.setattr(edgekit.targets.onnx, "optimum_decoders", lambda: pytest.fail("optimum's registry loaded"))
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "unsupported architecture 'frobnicator'")


def test_remote_code_needs_consent(cli, tiny_models, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling.MyModel"}
    (model / "config.json").write_text(json.dumps(cfg))
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "--trust-remote-code")


def test_existing_output_needs_overwrite(cli, tiny_artifacts, tiny_models, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_artifacts("llama"), out)
    r = cli("export", tiny_models("llama"), "-o", out)
    assert r.code == 2
    _one_line_error(r, "--overwrite")
    before = json.loads((out / "edgekit.json").read_text())["created"]
    r = cli("export", tiny_models("llama"), "-o", out, "--overwrite", "--no-parity")
    assert r.code == 0, r.err
    assert (out / "edgekit.json").is_file() and json.loads((out / "edgekit.json").read_text())["created"] >= before
    assert _leftovers(tmp_path) == []


def test_overwrite_never_replaces_what_edgekit_did_not_write(cli, tiny_artifacts, tiny_models, tmp_path):
    """--overwrite replaces an artifact, never a folder of the user's, nor an artifact holding the user's files."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    r = cli("export", tiny_models("llama"), "-o", mine, "--overwrite")
    assert r.code == 2
    _one_line_error(r, "not one", str(mine))
    assert (mine / "keep.txt").read_text() == "mine"

    art = tmp_path / "art"
    shutil.copytree(tiny_artifacts("llama"), art)
    (art / "notes.md").write_text("my notes")
    r = cli("export", tiny_models("llama"), "-o", art, "--overwrite")
    assert r.code == 2
    _one_line_error(r, "notes.md")
    assert (art / "notes.md").read_text() == "my notes"
    assert _leftovers(tmp_path) == []


def test_overwrite_never_replaces_the_source_or_the_current_folder(cli, tiny_models, tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    names = sorted(p.name for p in model.iterdir())
    r = cli("export", model, "-o", model, "--overwrite")
    assert r.code == 2
    _one_line_error(r)
    assert sorted(p.name for p in model.iterdir()) == names
    monkeypatch.chdir(model)
    for out in (".", "..", str(tmp_path)):
        r = cli("export", model, "-o", out, "--overwrite")
        assert r.code == 2
        _one_line_error(r, "current folder")
    assert sorted(p.name for p in model.iterdir()) == names


def test_unwritable_output(cli, tiny_models, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("export", tiny_models("llama"), "-o", blocker / "out")
    assert r.code == 2
    _one_line_error(r, "cannot write")


def test_hub_id_unreachable(cli, tmp_path, hf_cache):
    r = cli("export", "HuggingFaceTB/SmolLM2-135M", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "HuggingFaceTB/SmolLM2-135M")


def test_hub_id_from_cache_with_revision(cli, tiny_models, tmp_path, hf_cache):
    """A hub id goes through huggingface_hub's cache (offline here): the same path a download takes."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_cache / "models--acme--tiny-llama"
    shutil.copytree(tiny_models("llama"), repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    r = cli("export", "acme/tiny-llama", "--revision", "main", "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    source = json.loads(r.out)["source"]
    assert source["model"] == "acme/tiny-llama" and source["revision"] == commit
    r = cli("export", "acme/tiny-llama", "--revision", "v9", "-o", tmp_path / "out2")
    assert r.code == 2
    _one_line_error(r)


def test_revision_is_for_hub_ids(cli, tiny_models, tmp_path):
    r = cli("export", tiny_models("llama"), "--revision", "main", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "--revision")


def test_ctrl_c_mid_export_leaves_nothing(tiny_models, tmp_path):
    """Ctrl-C sent when the progress says the exporter's stage started (where onnxruntime-genai's
    builder is imported: a Ctrl-C inside its module init once read as the builder's failure)."""
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgekit", "export", str(tiny_models("llama")), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    watchdog = threading.Timer(300, proc.kill)  # a hung export fails the test instead of hanging it
    watchdog.start()
    try:
        said = []
        for line in proc.stderr:  # one plain line per stage where stderr is no terminal
            said.append(line)
            if ": export (" in line:
                break
        assert proc.poll() is None and any(p.name.endswith(".partial") for p in tmp_path.iterdir()), said
        proc.send_signal(signal.SIGINT)
        err = "".join(said) + proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        watchdog.cancel()
    assert proc.returncode == 2, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["chained", "signalled"])
def test_a_ctrl_c_a_library_turns_into_its_own_error_is_an_interrupt(
    how, cli, tiny_models, tmp_path, builder_interrupted
):
    """A Ctrl-C that onnxruntime-genai's builder turns into its own error (see ``builder_interrupted``)
    is an interrupt, not the export's failure."""
    builder_interrupted(how)
    r = cli("export", tiny_models("llama"), "-o", tmp_path / "out")
    assert r.code == 2 and r.said == "error: interrupted; nothing half-written was left behind\n", r.err
    assert list(tmp_path.iterdir()) == []


def test_manifest_contents(cli, tiny_models, tmp_path):
    out = tmp_path / "out"
    r = cli("export", tiny_models("qwen2"), "-r", "int4-g32", "-o", out)
    assert r.code in (0, 1), r.err
    m = json.loads((out / "edgekit.json").read_text())
    assert m["source"]["content_sha256"] and m["source"]["path"]
    assert m["recipe"] == {**m["recipe"], "target": "onnx", "name": "int4-g32-mix1", "scheme": "int4", "group_size": 32}
    for tool in ("torch", "transformers", "optimum", "onnx", "onnxruntime"):
        assert m["toolchain"][tool]
    names = {f["path"] for f in m["files"]}
    assert {"model.onnx", "tokenizer.json", "config.json"} <= names
    for f in m["files"]:
        assert f["bytes"] == (out / f["path"]).stat().st_size and len(f["sha256"]) == 64
    assert m["export"]["wall_s"] > 0 and m["export"]["peak_rss_mb"] > 0
    # the process's peak is its stages' highest, the parity stage's included
    assert m["export"]["peak_rss_mb"] == max(m["export"]["stage_peak_rss_mb"].values())
    assert "parity" in m["export"]["stage_peak_rss_mb"]
    # parity comes after wall_s
    assert m["export"]["total_s"] >= m["export"]["wall_s"] + m["export"]["stages"]["parity"]
    assert m["runtime"]["exporter"] == "genai"  # int4 is quantized by the builder itself
    assert {"export (genai)", "logits_to_keep", "tokenizer", "parity"} <= set(m["export"]["stages"])
    assert {"passed", "max_abs_logit_diff", "greedy_match_tokens", "top1_agree", "kl_mean", "thresholds"} <= set(
        m["parity"])


@pytest.mark.parametrize(
    "damage, message",
    [
        ("none", "has no tokenizer: none of tokenizer.json"),
        ("config-only", "has no tokenizer: none of tokenizer.json"),
        ("corrupt", "tokenizer.json is not a valid tokenizer: "),
        ("remote-code", "ships its own code (auto_map in tokenizer_config.json); pass --trust-remote-code"),
    ],
)
@pytest.mark.parametrize("target", ["onnx", "gguf"])
def test_tokenizer_problems_are_said_before_the_export(cli, tiny_models, tmp_path, monkeypatch, damage, message,
                                                       target):
    from edgekit import targets

    if target == "gguf":
        pytest.importorskip("gguf")
    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    for f in model.glob("tokenizer*"):
        if damage in ("none", "config-only") and not (damage == "config-only" and f.name == "tokenizer_config.json"):
            f.unlink()
    if damage == "corrupt":
        (model / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    if damage == "remote-code":
        cfg = json.loads((model / "tokenizer_config.json").read_text())
        (model / "tokenizer_config.json").write_text(
            json.dumps({**cfg, "auto_map": {"AutoTokenizer": ["tok.MyTok", None]}}))
    monkeypatch.setattr(targets.get(target), "export", lambda *a: pytest.fail("the export began"))
    r = cli("export", model, "-t", target, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", ["org/na me", "org/-bad-", "org/a..b"])
def test_invalid_hub_id(cli, tmp_path, hf_cache, model):
    r = cli("export", model, "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "neither a local model folder nor a valid hub id")


def test_a_full_disk_during_the_export(cli, tiny_models, tmp_path, monkeypatch):
    import errno

    import edgekit.targets.onnx

    def full(source, recipe, folder, stage):
        (folder / "model.onnx").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(edgekit.targets.onnx, "export", full)
    r = cli("export", tiny_models("llama"), "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "cannot write", "No space left on device")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_a_context_too_short_for_the_parity_check_is_refused_before_the_export(cli, tiny_models, tmp_path, monkeypatch):
    import edgekit.targets.onnx

    monkeypatch.setattr(edgekit.targets.onnx, "export", lambda *a: pytest.fail("the export began"))
    r = cli("export", tiny_models("llama"), "--max-context", "2", "-o", tmp_path / "out")
    assert r.code == 2
    _one_line_error(r, "too short for the parity check", "--no-parity")


def test_the_summary_gives_the_whole_command_s_time_with_its_stages(cli, tmp_path):
    import re

    r = cli("export", "builtin:tiny", "-o", tmp_path / "art")
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "art" / "edgekit.json").read_text())
    total = float(re.search(r"time +│ ([\d.]+) s in all: ", r.out).group(1))
    assert total >= sum(m["export"]["stages"].values()) - 0.1
    assert re.search(r"tokenizer [\d.]+ s, parity [\d.]+ s", r.out), r.out


def test_a_target_option_by_name(cli, tmp_path):
    """--option NAME=VALUE sets any option the target's recipe file declares (--exporter's too)."""
    r = cli("export", "builtin:tiny", "--option", "exporter=optimum", "--no-parity", "-o", tmp_path / "a", "--json")
    assert r.code == 0, r.err
    m = json.loads(r.out)
    assert m["recipe"]["exporter"] == "optimum" and m["runtime"]["exporter"] == "optimum"
    for args, says in ((("--option", "colour=red"), "does not apply to target onnx"),
                       (("--option", "exporter"), "NAME=VALUE"),
                       (("--option", "exporter=genai", "--exporter", "optimum"), "given twice")):
        r = cli("export", "builtin:tiny", *args, "-o", tmp_path / "b")
        assert r.code == 2, r.err
        _one_line_error(r, says)
    assert not (tmp_path / "b").exists()


def test_the_summary_times_the_source_as_its_own_stage(cli, tiny_models, tmp_path, monkeypatch):
    """Finding the model and converting a GGUF source is a stage of its own in the summary's time
    line (it was folded into "the rest": 114 of 145 s for Gemma 3)."""
    import time

    from edgekit import export

    real = export.source_for

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "source_for", slow)
    r = cli("export", tiny_models("llama"), "-t", "onnx", "-o", tmp_path / "a", "--no-parity")
    assert r.code == 0, r.err
    line = next(x for x in r.out.splitlines() if " time " in x)
    assert re.search(r"source 0\.[3-9] s", line), line
