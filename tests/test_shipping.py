"""What every artifact ships beside its model file: the runtimes' configs with the model's real stop ids,
the chat template, the source's licence and a model card the Hub reads (edgekit.shipping, edgekit.model_meta)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from chat_model import CHATML, chat_copy
import yaml

from edgekit import model_meta
from edgekit.builtins import BUILTINS

TINY = Path(BUILTINS["tiny"].path())
# a ChatML template: a turn ends with <|im_end|>, a special token of its own


def test_model_meta_reads_stop_ids_template_licence_and_base_model(tmp_path):
    from tokenizers import Tokenizer

    folder, im_end = chat_copy(tmp_path / "m", "mit", "Permission is hereby granted, free of charge...\n")
    source = type("S", (), {"path": folder, "spec": str(folder), "content_sha256": "x",
                            "trust_remote_code": False})()
    meta = model_meta.read(source, Tokenizer.from_file(str(folder / "tokenizer.json")))
    assert meta.eos_ids == (0, im_end)  # the config's EOS first, then the turn's end the template writes
    assert meta.bos_id == 0 and meta.chat_template == CHATML
    assert (meta.license, meta.license_name, meta.base_model) == ("mit", "MIT License", "org/tiny-base")
    assert meta.license_file == folder / "LICENSE"


def test_a_gguf_sources_own_keys_decide(tmp_path):
    """A GGUF source's tokenizer.ggml.* ids and chat template (kept in its cache folder's gguf.json) come
    before what transformers' rebuild of its folder says."""
    from tokenizers import Tokenizer

    folder = tmp_path / "g"
    shutil.copytree(TINY, folder)
    (folder / "gguf.json").write_text(json.dumps({"metadata": {
        "general.name": "Tiny GGUF", "general.license": "gemma", "tokenizer.ggml.bos_token_id": 5,
        "tokenizer.ggml.eos_token_id": 7, "tokenizer.ggml.eot_token_id": 9, "tokenizer.chat_template": "{{ x }}"}}))
    source = type("S", (), {"path": folder, "spec": "model.gguf", "content_sha256": "y", "trust_remote_code": False})()
    meta = model_meta.read(source, Tokenizer.from_file(str(folder / "tokenizer.json")))
    assert (meta.name, meta.bos_id, meta.eos_ids[:2], meta.chat_template) == ("Tiny GGUF", 5, (7, 9), "{{ x }}")
    assert (meta.license, meta.license_name, meta.license_link) == (
        "gemma", "Gemma Terms of Use", "https://ai.google.dev/gemma/terms")


def test_every_artifact_ships_runtime_configs_a_card_and_the_licence(cli, tmp_path):
    folder, im_end = chat_copy(tmp_path / "model", "mit", "Permission is hereby granted, free of charge...\n")
    out = tmp_path / "art"
    r = cli("export", folder, "-t", "onnx", "-r", "int8", "-o", out, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [0, im_end] and generation["bos_token_id"] == 0
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<|endoftext|>"
    assert json.loads((out / "config.json").read_text())["eos_token_id"] == 0
    assert (out / "LICENSE").read_text() == (folder / "LICENSE").read_text()
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "org/tiny-base" and front["license"] == "mit"
    assert front["library_name"] == "onnxruntime-genai" and {"edgekit", "onnx", "int8"} <= set(front["tags"])
    assert "## Parity with the float model" in card and "Passed" in card and "MIT License" in card
    roles = {f["path"]: f["role"] for f in manifest["files"]}
    assert roles["README.md"] == roles["LICENSE"] == "other"  # listed (so --overwrite may replace them), not sized
    assert cli("inspect", out).code == 0  # every listed file is whole


def test_the_card_says_when_nothing_was_checked(cli, tmp_path):
    out = tmp_path / "art"
    assert cli("export", "builtin:tiny", "-t", "onnx", "-o", out, "--no-parity").code == 0
    card = (out / "README.md").read_text()
    assert "Not checked" in card and "Apache License 2.0" in card
    assert not (out / "LICENSE").exists()  # the source has no licence text, its name and link are in the card


@pytest.mark.parametrize("missing", ["README.md", "generation_config.json"])
def test_a_source_without_card_or_generation_config_still_ships_both(cli, tmp_path, missing):
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    (folder / missing).unlink()
    out = tmp_path / "art"
    assert cli("export", folder, "-t", "onnx", "-o", out, "--no-parity").code == 0
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 0
    assert (out / "README.md").read_text().startswith("---\n")
