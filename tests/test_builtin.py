"""builtin:tiny, the shipped trained model: small, trained, and exported with every ONNX recipe."""

from __future__ import annotations

import json
import re

import pytest

from edgekit.builtins import BUILTINS
from edgekit.source import resolve

TINY = BUILTINS["tiny"].path()


def test_tiny_is_small_llama_with_tokenizer():
    total = sum(p.stat().st_size for p in TINY.iterdir())
    assert total <= 20 * 1024 * 1024
    assert json.loads((TINY / "config.json").read_text())["model_type"] == "llama"
    assert (TINY / "tokenizer.json").is_file() and (TINY / "model.safetensors").is_file()
    assert resolve("builtin:tiny").model_type == "llama"


def test_tiny_is_trained():
    """Held-out perplexity far below a random model of the same shape."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from edgekit.data import eval_text

    ids = Tokenizer.from_file(str(TINY / "tokenizer.json")).encode(eval_text()).ids[:1024]
    batch = torch.tensor([ids[i : i + 256] for i in range(0, 1024, 256)])
    trained = AutoModelForCausalLM.from_pretrained(TINY).eval()
    torch.manual_seed(0)
    random = AutoModelForCausalLM.from_config(trained.config).eval()
    with torch.inference_mode():
        ppl = {name: float(torch.exp(m(batch, labels=batch).loss))
               for name, m in (("trained", trained), ("random", random))}
    assert ppl["trained"] < ppl["random"] / 20, ppl


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from edgekit.errors import ParityError
    from edgekit.export import export
    from edgekit.recipes import parse

    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for recipe in ("fp32", "fp16", "int8", "int4", "int4-g128"):
        try:
            out[recipe] = export(resolve("builtin:tiny"), parse("onnx", recipe), root / recipe)
        except ParityError as e:
            pytest.fail(str(e))
    return out


@pytest.mark.parametrize("recipe", ["fp32", "fp16", "int8", "int4", "int4-g128"])
def test_every_onnx_recipe_passes_parity_and_tells_a_story(recipe, exports, cli):
    art = exports[recipe]
    assert art.manifest.parity["passed"], art.manifest.parity
    r = cli("run", art.path, "--prompt", "Once upon a time", "--max-new-tokens", "32")
    assert r.code == 0, r.err
    text = r.out.strip()
    assert text.startswith("Once upon a time") and "\ufffd" not in text
    words = re.findall(r"[A-Za-z]+", text[len("Once upon a time"):])
    assert len(words) >= 10, text  # real words, not byte soup


def test_int4_under_half_of_fp32(exports):
    assert exports["int4"].size_bytes < exports["fp32"].size_bytes / 2
    assert exports["int4"].size_bytes < exports["int8"].size_bytes
