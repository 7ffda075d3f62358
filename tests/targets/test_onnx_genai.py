"""Every ONNX artifact is an ONNX Runtime GenAI model folder: ``og.Model`` + ``og.Generator`` load it
and generate edgekit's own greedy tokens; ``logits_to_keep`` has a default a runtime that does not
know it gets; optimum's ``ORTModelForCausalLM`` loads it too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.targets import onnx

og = pytest.importorskip("onnxruntime_genai")

PROMPT = "Once upon a time"
NEW_TOKENS = 16


def _export(source: str, recipe: str, out: Path, exporter: str = "auto", parity: bool = False):
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    return export(resolve(source), parse("onnx", recipe, options={"exporter": exporter}), out, parity=parity)


def _edgekit_greedy(folder: Path, prompt: list[int], stop, count: int = NEW_TOKENS) -> list[int]:
    from edgekit.runtime import load
    from edgekit.runtime.generate import greedy

    return list(greedy(load(folder), prompt, count, stop=stop).tokens)


def _ids(folder: Path, text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """(exporter, recipe) -> builtin:tiny's ONNX artifact, exported once for this module."""
    made: dict[tuple, Path] = {}

    def get(exporter: str, recipe: str) -> Path:
        if (exporter, recipe) not in made:
            out = tmp_path_factory.mktemp("onnx") / f"{exporter}-{recipe}"
            _export("builtin:tiny", recipe, out, exporter)
            made[exporter, recipe] = out
        return made[exporter, recipe]

    return get


CASES = [(exporter, recipe) for exporter in ("genai", "optimum") for recipe in ("fp32", "int8", "int4")]
CASES.append(("optimum", "fp16"))  # the builder has no fp16 CPU graph


@pytest.mark.parametrize(("exporter", "recipe"), CASES)
def test_genai_generates_edgekit_tokens(exporter, recipe, tiny_onnx):
    from edgekit import artifact, model_meta
    from edgekit.source import resolve

    folder = tiny_onnx(exporter, recipe)
    manifest = artifact.load(folder).manifest
    runtime = manifest.runtime
    assert runtime["exporter"] == exporter
    config = json.loads((folder / "genai_config.json").read_text())
    meta = model_meta.of(resolve("builtin:tiny"))
    model, search = config["model"], config["search"]
    assert model["eos_token_id"] == list(meta.eos_ids) and model["bos_token_id"] == meta.bos_id
    assert model["context_length"] == search["max_length"] == runtime["max_context"]
    assert model["decoder"]["filename"] == runtime["model_file"]
    assert search["past_present_share_buffer"] == (runtime["kv_cache"] == "shared")
    assert search["do_sample"] is False and search["num_beams"] == 1
    entry = next(f for f in manifest.files if f["path"] == "genai_config.json")
    assert entry["role"] == "config"

    prompt = _ids(folder, PROMPT)
    mine = _edgekit_greedy(folder, prompt, meta.eos_ids)
    check = onnx.standard_check(folder, prompt, mine)
    assert check == {"runtime": "onnxruntime-genai", "version": og.__version__,
                     "api": "onnxruntime_genai.Model + Generator", "loaded": True, "tokens": mine}


@pytest.mark.parametrize("exporter", ["genai", "optimum"])
def test_logits_to_keep_has_a_default(exporter, tiny_onnx):
    """ONNX Runtime runs the graph without ``logits_to_keep`` (its default: every position), and with
    it (1: the last position), as edgekit's runner gives it on prefill."""
    import onnxruntime as ort

    from edgekit.runtime import load

    folder = tiny_onnx(exporter, "int4")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    assert "logits_to_keep" not in {i.name for i in session.get_inputs()}  # not required
    assert [i.name for i in session.get_overridable_initializers()] == ["logits_to_keep"]
    ids = [5, 6, 7, 8, 9]
    feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), np.int64)}
    for i in session.get_inputs():
        if i.name.startswith("past_key_values."):
            feeds[i.name] = np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
    if "position_ids" in {i.name for i in session.get_inputs()}:
        feeds["position_ids"] = np.arange(len(ids))[None]
    every = session.run(["logits"], feeds)[0]
    last = session.run(["logits"], {**feeds, "logits_to_keep": np.array([1])})[0]
    assert every.shape[1] == len(ids) and last.shape[1] == 1
    lm = load(folder)
    assert "logits_to_keep" in lm.input_names
    assert np.abs(every[0] - lm.forward(ids)).max() < 1e-4
    lm.reset()
    assert np.abs(last[0] - lm.forward(ids, last_only=True)).max() < 1e-4


@pytest.mark.parametrize(("exporter", "recipe"), [("optimum", "fp32"), ("genai", "int4")])
def test_optimum_generates_edgekit_tokens(exporter, recipe, tiny_onnx):
    """optimum's ORTModelForCausalLM loads either exporter's graph and generates edgekit's tokens."""
    torch = pytest.importorskip("torch")
    ort_models = pytest.importorskip("optimum.onnxruntime")

    folder = tiny_onnx(exporter, recipe)
    prompt = _ids(folder, PROMPT)
    mine = _edgekit_greedy(folder, prompt, stop=(0,))  # builtin:tiny's EOS
    model = ort_models.ORTModelForCausalLM.from_pretrained(folder)
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=0)
    assert out[0, len(prompt):].tolist() == mine


def test_standard_check_says_why_it_cannot_load(tmp_path, tiny_onnx):
    empty = tmp_path / "empty"
    empty.mkdir()
    check = onnx.standard_check(empty, [1, 2], [3])
    assert check["loaded"] is False and check["runtime"] == "onnxruntime-genai" and check["version"] == og.__version__
    assert "genai_config.json" in check["error"] and "\n" not in check["error"]

    broken = tmp_path / "broken"
    broken.mkdir()
    folder = tiny_onnx("genai", "int4")
    for f in folder.iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[:100] if f.name == "model.onnx" else f.read_bytes())
    check = onnx.standard_check(broken, [1, 2], [3])
    assert check["loaded"] is False and check["error"] and "\n" not in check["error"]


CAPITAL = "What is the capital of France?"


@pytest.fixture(scope="module")
def smollm2_int4(smollm2, tmp_path_factory):
    """builtin:smollm2-135m's ONNX int4 artifact (the fast path), with the chat prompt's ids."""
    from tokenizers import Tokenizer

    from edgekit.generate import _chat_prompt

    folder = tmp_path_factory.mktemp("smollm2") / "int4"
    _export("builtin:smollm2-135m", "int4", folder)
    text = _chat_prompt(folder, CAPITAL)
    prompt = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    return folder, prompt


def test_smollm2_chat_answer_in_genai(smollm2_int4):
    """GenAI's greedy answer to the chat question is edgekit's, and ends at <|im_end|> (id 2)."""
    from edgekit import model_meta
    from edgekit.source import resolve

    folder, prompt = smollm2_int4
    meta = model_meta.of(resolve("builtin:smollm2-135m"))
    assert meta.eos_ids[0] == 2
    config = json.loads((folder / "genai_config.json").read_text())
    assert config["model"]["eos_token_id"] == list(meta.eos_ids) and config["model"]["bos_token_id"] == 1
    assert config["model"]["context_length"] == 8192 and config["search"]["past_present_share_buffer"] is True
    mine = _edgekit_greedy(folder, prompt, meta.eos_ids, count=64)
    assert mine[-1] == 2 and len(mine) < 64
    check = onnx.standard_check(folder, prompt, mine)
    assert check["loaded"] and check["tokens"] == mine, check


def test_smollm2_chat_answer_in_optimum(smollm2_int4):
    torch = pytest.importorskip("torch")
    ort_models = pytest.importorskip("optimum.onnxruntime")

    folder, prompt = smollm2_int4
    mine = _edgekit_greedy(folder, prompt, (2,), count=64)
    model = ort_models.ORTModelForCausalLM.from_pretrained(folder)
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=64, do_sample=False, eos_token_id=2)
    assert out[0, len(prompt):].tolist() == mine


def test_smollm2_tokenizer_in_genai(smollm2_int4):
    """GenAI's own tokenizer (what an app encodes the prompt with) gives edgekit's ids: the GGUF source's
    byte-level vocabulary is written as a byte-level BPE (gguf_source._byte_level_bpe), which GenAI does
    not mistake for SentencePiece."""
    from edgekit.generate import _chat_prompt

    folder, prompt = smollm2_int4
    tokenizer = og.Tokenizer(og.Model(str(folder)))
    assert [int(i) for i in tokenizer.encode(_chat_prompt(folder, CAPITAL))] == prompt


def test_config_takes_the_model_s_search_defaults():
    """generation_config.json's search settings are GenAI's defaults (a missing or null one: GenAI's own);
    the pad id is the EOS where the model has none; a model type GenAI runs its own way is a plain decoder."""
    from types import SimpleNamespace

    from edgekit.targets import onnx_genai

    io = {"inputs": ["input_ids", "attention_mask"], "outputs": ["logits"], "layers": 2, "kv_heads": 1, "head_size": 16}
    model = SimpleNamespace(model_type="phi3", vocab_size=100, hidden_size=32, num_attention_heads=2)
    meta = SimpleNamespace(eos_ids=(7, 9), bos_id=None, pad_id=None)
    value = onnx_genai.config(io, model, meta, {"do_sample": True, "temperature": 0.6, "top_k": None},
                              model_file="model.onnx", max_context=64, shared=False)
    assert value["model"]["type"] == "decoder" and "bos_token_id" not in value["model"]
    assert value["model"]["eos_token_id"] == [7, 9] and value["model"]["pad_token_id"] == 7
    assert value["model"]["decoder"]["inputs"] == {
        "input_ids": "input_ids", "attention_mask": "attention_mask",
        "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value"}
    search = value["search"]
    assert search["do_sample"] is True and search["temperature"] == 0.6 and search["top_k"] == 50
    assert search["max_length"] == 64 and search["past_present_share_buffer"] is False
