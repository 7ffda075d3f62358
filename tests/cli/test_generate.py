import json

import pytest


@pytest.fixture
def artifact(tiny_artifacts):
    return tiny_artifacts("llama")


def test_run_generates_and_reports_speed(cli, artifact):
    r = cli("run", artifact, "--prompt", "The cat", "--max-new-tokens", "6", "--threads", "1")
    assert r.code == 0, r.err
    assert r.out.startswith("The cat")
    assert "6 tokens" in r.err and "tok/s" in r.err


def test_run_missing_artifact(cli, tmp_path):
    r = cli("run", tmp_path / "nope")
    assert r.code == 2 and r.err.startswith("error: artifact not found")


def test_run_folder_without_manifest(cli, tmp_path):
    r = cli("run", tmp_path)
    assert r.code == 2 and "not an edgekit artifact" in r.err


def test_run_corrupt_manifest(cli, tmp_path, artifact):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "edgekit.json").write_text("{not json")
    r = cli("run", bad)
    assert r.code == 2 and "not valid JSON" in r.err


def test_run_prompt_longer_than_context(cli, artifact):
    context = json.loads((artifact / "edgekit.json").read_text())["runtime"]["max_context"]
    r = cli("run", artifact, "--prompt", "cat " * (context + 10))
    assert r.code == 2 and "context" in r.err


def _relist(folder, name):
    """Record ``name``'s present size and sha256 in the manifest: the file is bad, the manifest agrees."""
    import hashlib

    manifest = json.loads((folder / "edgekit.json").read_text())
    data = (folder / name).read_bytes()
    for f in manifest["files"]:
        if f["path"] == name:
            f.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / "edgekit.json").write_text(json.dumps(manifest))


@pytest.fixture
def copy(artifact, tmp_path):
    import shutil

    folder = tmp_path / "art"
    shutil.copytree(artifact, folder)
    return folder


def test_run_bad_prompt_bytes(cli, artifact):
    r = cli("run", artifact, "--prompt", b"\xff\xfeabc".decode("utf-8", "surrogateescape"))
    assert r.code == 2 and r.err == "error: --prompt is not valid UTF-8 text\n", r.err


def test_run_corrupt_tokenizer(cli, copy):
    (copy / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    _relist(copy, "tokenizer.json")
    for command in ("run", "profile"):
        r = cli(command, copy)
        assert r.code == 2 and "tokenizer.json is not a valid tokenizer" in r.err and r.err.count("\n") == 1, r.err


@pytest.mark.parametrize("swap", ["garbage", "truncated", "data gone"])
def test_run_model_file_the_runtime_refuses(cli, copy, swap):
    """A model file that matches its manifest but not the runtime (a bad export, an edited manifest)."""
    model = copy / "model.onnx"
    if swap == "data gone":
        data = [p for p in copy.iterdir() if p.name.startswith("model.onnx") and p != model]
        if not data:
            pytest.skip("this artifact keeps its weights inside model.onnx")
        manifest = json.loads((copy / "edgekit.json").read_text())
        manifest["files"] = [f for f in manifest["files"] if f["path"] != data[0].name]
        (copy / "edgekit.json").write_text(json.dumps(manifest))
        data[0].unlink()
    else:
        model.write_bytes(b"\x00garbage" * 1000 if swap == "garbage" else model.read_bytes()[:5000])
        _relist(copy, "model.onnx")
    r = cli("run", copy, "-n", "2")
    assert r.code == 2 and r.err.startswith(f"error: cannot run {copy}: ") and r.err.count("\n") == 1, r.err
    assert "unexpected" not in r.err


@pytest.mark.parametrize(
    "manifest, message",
    [
        ([], "not an edgekit manifest (not a JSON object)"),
        ({"schema": 1}, "'target' is missing"),
        ("drop files", "'files' is missing or not a list"),
        ("files of strings", "'files[0]' is not an object"),
        ("no model file", "'runtime.model_file' is missing"),
        ("bytes as text", "'files[0].bytes' is missing or not an integer"),
    ],
)
def test_manifest_of_the_wrong_shape(cli, copy, manifest, message):
    m = json.loads((copy / "edgekit.json").read_text())
    if manifest == "drop files":
        del m["files"]
    elif manifest == "files of strings":
        m["files"] = [f["path"] for f in m["files"]]
    elif manifest == "no model file":
        del m["runtime"]["model_file"]
    elif manifest == "bytes as text":
        m["files"][0]["bytes"] = str(m["files"][0]["bytes"])
    else:
        m = manifest
    (copy / "edgekit.json").write_text(json.dumps(m))
    for command in ("run", "inspect", "profile"):
        r = cli(command, copy)
        assert r.code == 2 and message in r.err and r.err.count("\n") == 1, (command, r.err)


def test_run_says_when_it_stops_at_the_context_limit(cli, artifact):
    context = json.loads((artifact / "edgekit.json").read_text())["runtime"]["max_context"]
    r = cli("run", artifact, "--prompt", "The cat", "-n", str(context + 50))
    assert r.code == 0, r.err
    assert f"stopped at the model's context limit of {context} tokens" in r.err
    r = cli("run", artifact, "--prompt", "The cat", "-n", "3")
    assert "context limit" not in r.err


def test_sampling_is_repeatable_with_a_seed_and_greedy_by_default(cli, artifact):
    def run(*extra):
        r = cli("run", artifact, "--prompt", "The cat", "-n", "12", "--threads", "1", *extra)
        assert r.code == 0, r.err
        return r.out

    greedy = run()
    assert run("--temperature", "0") == greedy
    sampled = [run("--temperature", "1.5", "--seed", str(seed)) for seed in (1, 1, 2, 3)]
    assert sampled[0] == sampled[1]  # the same seed, the same draw
    assert len(set(sampled[1:])) > 1 or sampled[2] != greedy
    assert run("--temperature", "1.5", "--top-p", "0.000001", "--seed", "5") == greedy  # only the likeliest token left


def test_chat_wraps_the_prompt_in_the_model_s_template(cli, copy):
    r = cli("run", copy, "--chat", "--prompt", "hi")
    assert r.code == 2 and "has no chat template" in r.err and "without --chat" in r.err
    (copy / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    r = cli("run", copy, "--chat", "--prompt", "The cat", "-n", "6", "--threads", "1")
    assert r.code == 0, r.err
    assert not r.out.startswith("The cat") and "6 tokens" in r.err  # the reply only; the prompt is the template's
    r = cli("run", copy, "--chat", "--prompt", "The cat", "-n", "6", "--threads", "1", "--json")
    assert r.code == 0 and not json.loads(r.out)["text"].startswith("The cat")  # --json too: the reply alone
    (copy / "chat_template.jinja").write_text("{{ raise_exception('only system and user roles') }}")
    r = cli("run", copy, "--chat", "--prompt", "hi")
    assert r.code == 2 and "chat template" in r.err and "only system and user roles" in r.err


def test_run_stops_with_a_word_on_nan_logits(cli, nan_artifact):
    """It stopped after one token without a word (issue 30): the argmax of a NaN row is token 0, a stop token."""
    for extra in ((), ("--temperature", "0.8", "--seed", "1")):
        r = cli("run", nan_artifact, "--prompt", "The cat", "-n", "4", *extra)
        assert r.code == 2, r.err
        assert r.err.startswith("error: ") and r.err.count("\n") == 1 and "NaN/inf logits" in r.err, r.err


def test_run_loads_a_gguf_first_where_an_abort_is_one_line(cli, tiny_artifacts, tmp_path, monkeypatch):
    """llama.cpp aborts the process on some files: `edgekit run` ended in SIGABRT and a gdb backtrace
    (issue 30). The file is loaded in a child process first (``gguf_native``); here the child aborts."""
    import os
    import sys

    art = tiny_artifacts("llama", "gguf", "fp32")
    r = cli("run", art, "--prompt", "The cat", "-n", "2")
    assert r.code == 0, r.err
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\necho 'llama.cpp:1: GGML_ASSERT(n_layer <= 512) failed' >&2\nkill -ABRT $$\n")
    os.chmod(crashing, 0o755)
    monkeypatch.setattr(sys, "executable", str(crashing))
    r = cli("run", art, "--prompt", "The cat", "-n", "2")
    assert r.code == 2 and r.out == "", r.err
    assert r.err.count("\n") == 1 and "llama.cpp crashed while loading" in r.err, r.err
    assert "SIGABRT: llama.cpp:1: GGML_ASSERT(n_layer <= 512) failed" in r.err, r.err
