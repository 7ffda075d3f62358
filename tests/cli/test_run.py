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
