"""Every supported architecture converts to Core ML (stateful KV cache) and every recipe of builtin:tiny
compresses as it says, checked on the saved package's spec; what needs Core ML's prediction runs on
macOS only, and elsewhere run/profile say so in one line."""

from __future__ import annotations

import json
import sys

import pytest
from chat_model import assert_shipped

pytest.importorskip("coremltools")

from edgekit import recipes  # noqa: E402
from edgekit.synthetic import ARCHITECTURES  # noqa: E402
from edgekit.targets import coreml, decoder  # noqa: E402

CONTEXT = 64  # a small cache keeps the tiny conversions quick
MAC = sys.platform == "darwin"
needs_mac = pytest.mark.skipif(not MAC, reason="Core ML prediction needs macOS 15 or later")
not_mac = pytest.mark.skipif(MAC, reason="checks the message given where Core ML is missing")

# recipe -> (stored type of the compressed weights, the constexpr op that expands them)
COMPRESSED = {
    "int8": ("int8", "constexpr_blockwise_shift_scale"),
    "int4": ("int4", "constexpr_blockwise_shift_scale"),
    "pal4": ("uint4", "constexpr_lut_to_dense"),
    "pal6": ("uint6", "constexpr_lut_to_dense"),
}
RECIPES = list(recipes.target_spec("coreml").schemes)


def test_tables_cover_supported_architectures():
    assert set(coreml.SUPPORTED) == set(decoder.ARCHITECTURES) <= set(ARCHITECTURES)  # each has a tiny checkpoint
    assert set(COMPRESSED) | {"fp16", "fp32"} == set(RECIPES)


@pytest.mark.parametrize("arch", sorted(coreml.SUPPORTED))
def test_converted_graph_matches_pytorch(arch, tiny_models):
    """The traced module Core ML converts (tensor positions, float16 cache) agrees with the HF model,
    prefill and cached decode: what Linux can check of the numbers."""
    import torch
    from transformers import AutoModelForCausalLM

    from edgekit.targets.coreml_model import CoreMLDecoder

    model = AutoModelForCausalLM.from_pretrained(tiny_models(arch), attn_implementation="eager").eval()
    ids = torch.randint(0, model.config.get_text_config().vocab_size, (1, 12),
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(ids).logits[0]
        module = CoreMLDecoder(model, arch, CONTEXT).eval()
        traced = torch.jit.trace(module, (ids[:, :4].int(), _mask(4, 1)), check_trace=False)
        module.keyCache.zero_()
        module.valueCache.zero_()
        # the position is the mask's width less the tokens' count, traced as sizes (not the example's)
        got = [traced(ids[:, :7].int(), _mask(7, 0))[0]]
        got += [traced(ids[:, i : i + 1].int(), _mask(1, i))[0] for i in range(7, 12)]
    assert (torch.cat(got) - want).abs().max() < 5e-3


def _mask(n: int, past: int):
    """A causalMask of zeros, as swift-transformers passes it: only its width is read."""
    import torch

    return torch.zeros((1, 1, n, past + n), dtype=torch.float16)


@pytest.mark.parametrize("arch", sorted(coreml.SUPPORTED))
def test_architecture_converts(arch, tiny_models, tmp_path, export_checked):
    import coremltools as ct

    out = tmp_path / "art"
    manifest = export_checked(tiny_models(arch), "coreml", "--max-context", CONTEXT, out=out)
    assert manifest["recipe"]["name"] == "fp16" and manifest["recipe"]["compute_units"] == "all"
    rt = manifest["runtime"]
    assert rt["max_context"] == CONTEXT and rt["max_prefill"] == CONTEXT
    assert rt["deployment_target"] == "iOS18" and rt["compute_precision"] == "fp16"
    layers = 2  # every tiny checkpoint
    for state in rt["states"]:
        assert state["dtype"] == "float16" and state["shape"][0] == layers and state["shape"][2] == CONTEXT
    # Apple's stateful LLM example's names, which swift-transformers' LanguageModel loads
    assert [s["name"] for s in rt["states"]] == ["keyCache", "valueCache"]
    assert rt["inputs"] == [
        {"name": "inputIds", "shape": [1, [1, CONTEXT]], "dtype": "int32"},
        {"name": "causalMask", "shape": [1, 1, [1, CONTEXT], [1, CONTEXT]], "dtype": "float16"},
    ]
    meta = rt["metadata"]
    assert meta["co.huggingface.exporters.task"] == "text-generation" and meta["edgekit.max_context"] == str(CONTEXT)
    assert meta["co.huggingface.exporters.architecture"] == arch and meta["edgekit.eos_token_ids"]
    assert rt["outputs"][0]["name"] == "logits" and rt["outputs"][0]["dtype"] == "float32"
    assert rt["ops"]["read_state"] >= 2 and rt["ops"]["write_state"] == 2 * layers
    assert set(rt["weights"]) <= {"float16", "int32"}  # fp16: nothing compressed
    assert {"load", "torch.jit.trace", "convert", "save"} <= set(manifest["export"]["stages"])
    # the package is a valid ML program: its spec loads without Core ML
    spec = ct.models.MLModel(str(out / rt["model_file"]), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram" and len(spec.description.state) == 2


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory, export_builtin):
    """builtin:tiny in every Core ML recipe (parity runs on a Mac; elsewhere it is skipped)."""
    return export_builtin(tmp_path_factory.mktemp("tiny-coreml"), "coreml", RECIPES)


def _package_bytes(art) -> int:
    return sum(f["bytes"] for f in art.manifest.files if f["path"].startswith(coreml.MODEL_FILE + "/"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_converts_builtin_tiny(recipe, tiny_exports):
    art = tiny_exports[recipe]
    assert_shipped(art.path, "coreml")
    rt = art.manifest.runtime
    weights, ops = rt["weights"], rt["ops"]
    if recipe in COMPRESSED:
        dtype, expand = COMPRESSED[recipe]
        assert weights[dtype]["bits"] == int(dtype.lstrip("uint"))
        # 4 layers of 7 linears, the tied head/embedding, the rotary's rotate-half matrix (+-1: exact in every scheme)
        assert ops[expand] == weights[dtype]["tensors"] == 4 * 7 + 2
        assert weights[dtype]["elements"] > 0.9 * sum(w["elements"] for w in weights.values())
        assert rt["compute_precision"] == "fp16"
    else:
        assert not any(op.startswith("constexpr_") for op in ops)
        assert rt["compute_precision"] == recipe
        assert max(weights, key=lambda d: weights[d]["bytes"]) == {"fp16": "float16", "fp32": "float32"}[recipe]
    assert art.manifest.parity["passed"] if MAC else art.manifest.parity["skipped"]


def test_int4_is_under_a_third_of_fp16(tiny_exports):
    fp16, int4, pal4 = (_package_bytes(tiny_exports[r]) for r in ("fp16", "int4", "pal4"))
    assert int4 < fp16 / 3 and pal4 < fp16 / 3
    assert tiny_exports["int4"].manifest.recipe["name"] == "int4-g32"


def test_recipe_options():
    assert recipes.parse("coreml", "int4-g128").group_size == 128
    assert recipes.parse("coreml", "pal6-g8").group_size == 8
    assert recipes.parse("coreml", None).name == "fp16"
    assert recipes.parse("coreml", "int8", options={"compute_units": "cpu-ne"}).option("compute_units") == "cpu-ne"


def test_compute_units_are_checked(cli, tmp_path):
    r = cli("export", "builtin:tiny", "-t", "coreml", "--compute-units", "gpu", "-o", tmp_path / "a")
    assert r.code == 2 and "unknown compute units 'gpu'" in r.err and "cpu-ne" in r.err
    r = cli("export", "builtin:tiny", "-t", "onnx", "--compute-units", "cpu", "-o", tmp_path / "b")
    assert r.code == 2 and "does not apply to target onnx" in r.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@not_mac
@pytest.mark.parametrize("command", [("run",), ("profile",), ("profile", "--device", "local")])
def test_run_and_profile_need_a_mac(command, tiny_exports, cli):
    path = tiny_exports["int4"].path
    r = cli(command[0], path, *command[1:])
    assert r.code == 2
    assert r.said.count("\n") == 1 and "Traceback" not in r.err
    assert "needs a Mac" in r.err and f"edgekit profile {path} --device mac-m2" in r.err


@needs_mac
@pytest.mark.parametrize("recipe", ["fp16", "int4"])
def test_run_on_mac(recipe, tiny_exports, cli):
    r = cli("run", tiny_exports[recipe].path, "--prompt", "Once upon a time", "--max-new-tokens", "16")
    assert r.code == 0, r.err
    assert len(r.out.split()) > 4


@needs_mac
def test_prefill_windows_match_token_by_token_on_mac(tiny_exports, prefill_windows_match):
    prefill_windows_match(tiny_exports["fp32"].path, 1e-2)


@needs_mac
def test_profile_on_mac(tiny_exports, cli, tmp_path):
    r = cli("profile", tiny_exports["int8"].path, "--prompt-len", "16", "--gen", "8", "--runs", "1", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["complete"] and result["metrics"]["top1_agree"]["value"] > 0.8
