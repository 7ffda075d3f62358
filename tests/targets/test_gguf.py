"""llama.cpp (GGUF): every supported architecture is written with the gguf package and agrees with
PyTorch through llama.cpp; builtin:tiny passes parity with every recipe of llama.cpp's quantizer."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")

from edgekit import recipes  # noqa: E402
from edgekit.synthetic import ARCHITECTURES  # noqa: E402
from edgekit.targets import gguf as gguf_target  # noqa: E402

CONTEXT = "128"


def test_table_covers_supported_architectures():
    assert set(gguf_target.SUPPORTED) <= set(ARCHITECTURES)  # each has a tiny checkpoint


@pytest.mark.parametrize("arch", sorted(gguf_target.SUPPORTED))
def test_architecture_exports_with_parity(arch, tiny_models, tmp_path, cli):
    out = tmp_path / "art"
    r = cli("export", tiny_models(arch), "-t", "gguf", "--max-context", CONTEXT, "-o", out, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    parity = manifest["parity"]
    assert parity["passed"], parity
    assert parity["max_abs_logit_diff"] < 1e-3
    assert parity["greedy_match_tokens"] == parity["greedy_total_tokens"] > 0
    runtime = manifest["runtime"]
    assert runtime["max_context"] == int(CONTEXT) and runtime["kv_cache"] == "f32"
    assert runtime["tokenizer"]["model"] == "gpt2" and runtime["tokenizer"]["pre"] == "gpt-2"
    assert runtime["tokenizer"]["matches_hf"]  # llama.cpp's own tokenization of sample text equals HF's
    assert "model.gguf" in [f["path"] for f in manifest["files"]]

    r = cli("run", out, "--prompt", "Once upon a time", "--max-new-tokens", "8")
    assert r.code == 0, r.err
    assert r.out.startswith("Once upon a time")


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory, export_builtin):
    return export_builtin(tmp_path_factory.mktemp("tiny-gguf"), "gguf", RECIPES)


RECIPES = list(recipes.target_spec("gguf").schemes)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_passes_parity_on_builtin_tiny(recipe, tiny_exports, cli):
    art = tiny_exports[recipe]
    m = art.manifest
    assert m.parity["passed"], m.parity
    assert [f["path"] for f in m.files].count("model.gguf") == 1
    assert not any(f["path"].startswith(".") for f in m.files)  # the float32 intermediate is gone
    assert set(m.export["stages"]) >= {"load", "write gguf", "tokenizer check"}
    assert m.runtime["tokenizer"]["matches_hf"]
    r = cli("run", art.path, "--prompt", "Once upon a time", "--max-new-tokens", "16")
    assert r.code == 0, r.err
    assert len(r.out.split()) > 4


def test_quantized_files_hold_llama_cpp_types(tiny_exports, cli):
    sizes = {name: art.size_bytes for name, art in tiny_exports.items()}
    assert sizes["q4_0"] < sizes["q8_0"] < sizes["fp16"] < sizes["fp32"]
    assert sizes["int4"] == sizes["q4_0"] and sizes["int8"] == sizes["q8_0"]
    assert tiny_exports["int4"].recipe == "int4-g32"
    for recipe, stored in [("fp32", "f32"), ("fp16", "f16"), ("q8_0", "q8_0"), ("q4_0", "q4_0"), ("q4_k_m", "q4_k")]:
        r = cli("inspect", tiny_exports[recipe].path, "--json")
        assert r.code == 0, r.err
        report = json.loads(r.out)
        assert report["target"] == "gguf" and stored in report["weights"], (recipe, report["weights"])
        meta = report["metadata"]
        assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 4
        assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert json.loads(cli("inspect", tiny_exports["q4_0"].path, "--json").out)["weights"]["q4_0"]["bits"] == 4.5
    from gguf import GGUFReader

    names = {t.name for t in GGUFReader(str(tiny_exports["fp32"].path / "model.gguf")).tensors}
    assert "token_embd.weight" in names and "output.weight" not in names  # tied head: token_embd serves both
    r = cli("inspect", tiny_exports["q4_k_m"].path)
    assert r.code == 0 and "metadata" in r.out and "q4_k" in r.out


def test_profile_reports_every_metric(tiny_exports, cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("profile", tiny_exports["q4_0"].path, "--prompt-len", "16", "--gen", "8", "--runs", "2",
            "--eval-tokens", "300", "-o", out)
    assert r.code == 0, r.err
    data = json.loads(out.read_text())
    assert data["complete"], data["error"]
    want = {"load_s", "ttft_ms", "prefill_tok_s", "decode_tok_s", "token_ms_p50", "token_ms_p90", "peak_rss_mb",
            "file_mb", "ppl", "ppl_ref", "dppl_pct", "top1_agree", "kl_mean"}
    assert want <= set(data["metrics"]), set(data["metrics"])
    assert data["metrics"]["top1_agree"]["value"] > 0.8
    assert "llama_cpp_python" in json.dumps(data["environment"])


def test_runtime_logits_all_positions_and_last(tiny_exports):
    """forward (every row) and forward(last_only=True) (the last row alone) agree, token by token too; the
    context is enforced."""
    import numpy as np

    from edgekit.runtime import load

    lm = load(tiny_exports["fp32"].path)
    ids = list(range(3, 40))
    lm.reset()
    whole = lm.forward(ids)
    lm.reset()
    last = lm.forward(ids, last_only=True)[0]
    lm.reset()
    steps = np.stack([lm.forward([t], last_only=True)[0] for t in ids])
    assert whole.shape == (len(ids), lm.vocab_size) and whole.dtype == np.float32
    assert np.abs(whole[-1] - last).max() < 1e-4
    assert np.abs(whole - steps).max() < 1e-3
    lm.reset()
    with pytest.raises(ValueError, match="exceeds the context"):
        lm.forward(list(range(lm.max_context + 1)))


@pytest.mark.parametrize(
    "recipe, message",
    [("q4_0-g64", "unknown option 'g64'"), ("int4-g64", "group size 64"), ("q8_0-emb4", "unknown option 'emb4'"),
     ("q3_k", "unknown recipe 'q3_k'")],
)
def test_bad_recipes_get_one_line(recipe, message, cli, tmp_path):
    r = cli("export", "builtin:tiny", "-t", "gguf", "-r", recipe, "-o", tmp_path / "out")
    assert r.code == 2 and message in r.err and r.said.strip().count("\n") == 0, r.err
    assert not (tmp_path / "out").exists()


def test_unsupported_architecture_and_rope_scaling(tiny_models, tmp_path, cli):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "falcon"}))
    r = cli("export", model, "-t", "gguf", "-o", tmp_path / "out")
    assert r.code == 2 and "unsupported architecture 'falcon'" in r.err and "qwen2" in r.err, r.err

    qwen = tmp_path / "qwen"
    shutil.copytree(tiny_models("qwen2"), qwen)
    config = json.loads((qwen / "config.json").read_text())
    config["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    (qwen / "config.json").write_text(json.dumps(config))
    r = cli("export", qwen, "-t", "gguf", "-o", tmp_path / "out")
    assert r.code == 2 and "'yarn' rope scaling" in r.err and r.said.strip().count("\n") == 0, r.err
    assert not (tmp_path / "out").exists()


def test_llama3_rope_scaling_is_written_as_frequency_factors(tiny_models, tmp_path, cli):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    config = json.loads((model / "config.json").read_text())
    config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 32}
    (model / "config.json").write_text(json.dumps(config))
    r = cli("export", model, "-t", "gguf", "--max-context", CONTEXT, "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["parity"]["max_abs_logit_diff"] < 1e-3


def test_sentencepiece_tokenizer_is_written_as_llama_vocabulary(tmp_path, cli):
    """A Llama-2/Gemma-style tokenizer (▁, byte fallback) becomes llama.cpp's SPM vocabulary, and
    llama.cpp tokenizes as HF does."""
    from edgekit.synthetic import make_model

    model = make_model("gemma", tmp_path / "gemma-spm", spm=True)
    r = cli("export", model, "-t", "gguf", "--max-context", CONTEXT, "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    tokenizer = manifest["runtime"]["tokenizer"]
    assert (tokenizer["model"], tokenizer["matches_hf"]) == ("llama", True)
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_logit_diff"] < 1e-3


@pytest.mark.parametrize(
    "arch, overrides, missing",
    [
        ("gemma2", dict(attn_logit_softcapping=None), "no attention or final logit soft-capping"),
        ("gemma2", dict(tie_word_embeddings=False), "an output head apart from the embedding"),
        ("gemma3_text", dict(hidden_activation="gelu"), "activation 'gelu'"),
        ("phi", dict(qk_layernorm=True), "q/k LayerNorms"),
    ],
)
def test_what_llama_cpp_cannot_reproduce_is_refused_in_one_line(arch, overrides, missing, tmp_path, cli, monkeypatch):
    from edgekit.synthetic import make_model
    from edgekit.core import model as core_model

    model = make_model(arch, tmp_path / "model", **overrides)
    monkeypatch.setattr(core_model, "load_model", lambda *a: pytest.fail("refused after the weights loaded"))
    r = cli("export", model, "-t", "gguf", "-o", tmp_path / "out")
    assert r.code == 2 and missing in r.err and r.said.strip().count("\n") == 0, r.err
    assert not (tmp_path / "out").exists()


def _partials(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def test_a_native_abort_is_one_line_and_leaves_nothing(tiny_models, tmp_path, cli, monkeypatch):
    """What SmolLM2 rebuilt from its GGUF used to get: a byte-level vocabulary written as llama.cpp's
    SentencePiece one, which has no <0xNN> byte tokens, so llama.cpp's loader throws and the
    process aborts. The abort happens in the child process: exit 2, one line, no backtrace, no
    staging folder left."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    spec = json.loads((model / "tokenizer.json").read_text())
    spec["model"]["byte_fallback"] = True
    (model / "tokenizer.json").write_text(json.dumps(spec))
    monkeypatch.setattr(gguf_target, "_byte_level", lambda spec: False)  # the old rule: byte_fallback means SPM
    r = cli("export", model, "-t", "gguf", "--max-context", CONTEXT, "-o", tmp_path / "out")
    assert r.code == 2, r.err
    assert "llama.cpp crashed while loading the written model.gguf (SIGABRT" in r.err, r.err
    assert r.said.strip().count("\n") == 0 and "#0 " not in r.err, r.err
    assert not (tmp_path / "out").exists() and _partials(tmp_path) == []


def test_a_checkpoint_rebuilt_from_a_gguf_keeps_the_original_tokenizer_settings(tiny_models, tmp_path, cli,
                                                                                monkeypatch):
    """transformers' rebuild of a GGUF's gpt2 vocabulary (byte-level BPE that also sets byte_fallback)
    exports as gpt2, not SentencePiece (the SmolLM2 abort); with the original GGUF in the folder its
    pre-tokenizer name is kept; the GGUF never lands in the artifact."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    original = tmp_path / "original"
    with monkeypatch.context() as m:
        m.setattr(gguf_target, "_pre_tokenizer", lambda spec: "smollm")  # the original file's name
        r = cli("export", tiny_models("llama"), "-t", "gguf", "--no-parity", "-o", original)
    assert r.code == 0, r.err
    rebuilt = tmp_path / "rebuilt"
    AutoModelForCausalLM.from_pretrained(original, gguf_file="model.gguf", dtype=torch.float32).save_pretrained(rebuilt)
    AutoTokenizer.from_pretrained(original, gguf_file="model.gguf").save_pretrained(rebuilt)
    assert json.loads((rebuilt / "tokenizer.json").read_text())["model"]["byte_fallback"]
    (rebuilt / "source.gguf").write_bytes((original / "model.gguf").read_bytes())

    r = cli("export", rebuilt, "-t", "gguf", "-r", "q8_0", "--max-context", CONTEXT, "-o", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    tokenizer = manifest["runtime"]["tokenizer"]
    assert (tokenizer["model"], tokenizer["pre"], tokenizer["from_gguf"]) == ("gpt2", "smollm", "source.gguf")
    assert tokenizer["matches_hf"] and manifest["parity"]["passed"], manifest["parity"]
    assert not any(f["path"].endswith((".gguf", "tokenizer.model")) and f["path"] != "model.gguf"
                   for f in manifest["files"])


def test_native_child_reports_in_one_line(tmp_path):
    from edgekit.errors import EdgekitError
    from edgekit.targets import gguf_native

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(EdgekitError, match="^loading bad.gguf: llama.cpp cannot load the written file$"):
        gguf_native.run("check", "loading bad.gguf", model=str(bad), texts=[], want=[])
    with pytest.raises(EdgekitError, match="quantizing to MOSTLY_Q4_0: llama.cpp's quantizer failed"):
        gguf_native.run("quantize", "quantizing to MOSTLY_Q4_0", src=str(bad), dst=str(tmp_path / "q.gguf"),
                        ftype="MOSTLY_Q4_0")


def test_q4_0_imatrix_weighs_rounding_by_the_calibration_text(tiny_exports, tmp_path, cli):
    """q4_0-imatrix: the same llama.cpp types and file size as q4_0, other weights; the calibration
    (text, tokens, time) in the manifest; --calibration takes another text."""
    out = tmp_path / "imatrix"
    r = cli("export", "builtin:tiny", "-t", "gguf", "-r", "q4_0-imatrix", "--max-context", "256", "-o", out, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    assert manifest["parity"]["passed"] and manifest["recipe"]["name"] == "q4_0-imatrix"
    calibration = manifest["runtime"]["calibration"]
    assert calibration["method"] == "imatrix" and calibration["text"] == "calibration.txt"
    assert calibration["tokens"] > 1000 and calibration["tensors"] == 4 * 7 + 1  # 7 linears a layer, the tied head
    assert "calibrate" in manifest["export"]["stages"]
    plain = tiny_exports["q4_0"].path / "model.gguf"
    assert (out / "model.gguf").stat().st_size == plain.stat().st_size
    assert (out / "model.gguf").read_bytes() != plain.read_bytes()
    assert not any(f["path"].startswith(".") for f in manifest["files"])

    text = tmp_path / "other.txt"
    text.write_text("The river runs past the mill, and the miller counts the sacks of grain. " * 40)
    r = cli("export", "builtin:tiny", "-t", "gguf", "-r", "q4_0-imatrix", "--calibration", text, "--no-parity",
            "-o", tmp_path / "other", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["runtime"]["calibration"]["text"] == "other.txt"

    r = cli("export", "builtin:tiny", "-t", "gguf", "-r", "q4_0-imatrix", "--calibration", tmp_path / "none.txt",
            "-o", tmp_path / "none")
    assert r.code == 2 and "calibration text not found" in r.err and not (tmp_path / "none").exists()


def test_nan_weights_are_named_before_quantizing(cli, tiny_models, tmp_path):
    """The quantizer said only "quantizer failed (MOSTLY_Q4_0, code 1)" (issue 30): the tensor is named
    before it runs, and nothing is left behind."""
    import shutil

    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), model)
    weights = load_file(model / "model.safetensors")
    name = next(k for k in weights if k.endswith("layers.1.mlp.up_proj.weight"))
    weights[name][3, 5] = float("nan")
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    r = cli("export", model, "-t", "gguf", "-r", "q4_0", "-o", tmp_path / "out")
    assert r.code == 2, r.err
    assert r.said.startswith("error: ") and r.said.count("\n") == 1, r.said
    assert "weight model.layers.1.mlp.up_proj.weight holds NaN" in r.said and "q4_0" in r.said, r.said
    assert not (tmp_path / "out").exists()
