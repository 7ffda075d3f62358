"""Every supported architecture exports to ExecuTorch (XNNPACK, static KV cache) and agrees with PyTorch;
builtin:tiny passes parity with every ExecuTorch recipe."""

from __future__ import annotations

import pytest
from chat_model import assert_shipped

pytest.importorskip("executorch")

from edgekit import recipes  # noqa: E402
from edgekit.synthetic import ARCHITECTURES  # noqa: E402
from edgekit.targets import decoder, executorch, executorch_runner  # noqa: E402

CONTEXT = "128"  # a small static cache keeps the tiny exports quick


def test_table_covers_supported_architectures():
    assert set(executorch.SUPPORTED) == set(decoder.ARCHITECTURES) <= set(ARCHITECTURES)  # each has a tiny checkpoint


@pytest.mark.parametrize("arch", sorted(executorch.SUPPORTED))
def test_architecture_exports_with_parity(arch, tiny_models, tmp_path, cli, export_checked):
    out = tmp_path / "art"
    manifest = export_checked(tiny_models(arch), "executorch", "-r", "fp32", "--max-context", CONTEXT, out=out)
    assert manifest["source"]["model_type"] == arch
    runtime = manifest["runtime"]
    assert runtime["max_context"] == int(CONTEXT) and runtime["max_prefill"] > 1
    # 2-layer models: fixed ops weigh more; Gemma 2's soft-capped attention is plain ops, not XNNPACK's
    assert runtime["delegation"]["share"] > (0.5 if arch == "gemma2" else 0.7), runtime["delegation"]
    assert (out / runtime["model_file"]).is_file() and not (out / executorch.SPILL_FOLDER).exists()
    assert {"load", "torch.export", "to_edge + XNNPACK lower", "to_executorch", "save"} <= set(
        manifest["export"]["stages"])

    r = cli("run", out, "--prompt", "Once upon a time", "--max-new-tokens", "8")
    assert r.code == 0, r.err
    assert r.out.startswith("Once upon a time")


def test_plain_attention_fallback_exports_with_parity(tiny_models, monkeypatch, export_checked):
    """Without ExecuTorch's LLM custom ops the cache is written with index_copy_ and attended with a
    masked SDPA over every slot: a sliding window and soft-capped scores (Gemma 2) included."""
    from edgekit.targets import executorch_model

    monkeypatch.setattr(executorch_model, "custom_ops_available", lambda: False)
    manifest = export_checked(tiny_models("gemma2"), "executorch", "--max-context", CONTEXT)
    assert manifest["runtime"]["custom_ops"] is False and manifest["runtime"]["kernel_libraries"] == []


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory, export_builtin):
    return export_builtin(tmp_path_factory.mktemp("tiny-et"), "executorch",
                          [*RECIPES, "8da4w-emb4", "8da4w-mix0", "8da4w-mix0-imatrix"])


RECIPES = [s for s in recipes.target_spec("executorch").schemes]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_passes_parity_on_builtin_tiny(recipe, tiny_exports, cli):
    art = tiny_exports[recipe]
    assert art.manifest.parity["passed"], art.manifest.parity
    r = cli("run", art.path, "--prompt", "Once upon a time", "--max-new-tokens", "16")
    assert r.code == 0, r.err
    assert len(r.out.split()) > 4


@pytest.mark.parametrize("recipe", ["fp32", "8da4w"])
def test_program_follows_executorch_llm_conventions(recipe, tiny_exports):
    """forward(tokens, input_pos) -> the logits of the last n - k + 2 positions, at most n (k = input_pos's
    length: the last two for TextLLMRunner's positions), and the metadata methods TextLLMRunner
    reads: sizes from the export, BOS and every stop id from the model."""
    art = tiny_exports[recipe]
    assert_shipped(art.path, "executorch")
    runtime = art.manifest.runtime
    report = executorch.inspect(art.path, runtime)
    assert [i["name"] for i in report["inputs"]] == ["tokens", "input_pos"]
    window = runtime["max_prefill"]
    assert report["inputs"][0]["shape"] == [1, window] and report["inputs"][1]["shape"] == [window]
    assert [o["shape"] for o in report["outputs"]] == [[1, window, 2048]] and runtime["logits"] == "after_positions"
    assert report["metadata"] == {
        "get_max_seq_len": runtime["max_prefill"], "get_max_context_len": 256, "get_vocab_size": 2048,
        "get_bos_id": 0, "get_eos_ids": [0], "get_n_layers": 4, "use_kv_cache": True,
        "use_sdpa_with_kv_cache": runtime["custom_ops"], "enable_dynamic_shape": True,
    }


@pytest.mark.parametrize("recipe", ["fp32", "8da4w"])
def test_textllmrunner_generates_edgekit_greedy_tokens(recipe, tiny_exports, capfd):
    """ExecuTorch's own LLM runner loads the artifact (8da4w: with its data file) and generates the
    greedy tokens edgekit's runner does; the export checked it too (manifest standard_runtime), and
    nothing of the runtime's log reaches the terminal."""
    from tokenizers import Tokenizer

    from edgekit.runtime import load
    from edgekit.runtime.generate import greedy

    art = tiny_exports[recipe]
    checked = art.manifest.extra["standard_runtime"]
    assert checked["loaded"] and checked["tokens_match"] and checked["api"] == executorch_runner.API, checked
    assert ("data_file" in art.manifest.runtime) == (recipe == "8da4w")
    prompt = Tokenizer.from_file(str(art.path / "tokenizer.json")).encode("One day, a little dog").ids
    expected = greedy(load(art.path), prompt, 40).tokens
    capfd.readouterr()
    got = executorch.standard_check(art.path, prompt, expected)
    assert capfd.readouterr() == ("", "")
    assert got == {"runtime": "executorch", "version": got["version"], "api": executorch_runner.API, "loaded": True,
                   "tokens": expected}, got


def test_standard_check_says_in_one_line_why_the_runner_cannot_load(tiny_exports, tmp_path, capfd):
    """A tokenizer ExecuTorch's tokenizer library refuses (an empty normalizer sequence), a program of
    the older form (or none): loaded False with the reason, nothing on the terminal."""
    import json
    import shutil

    folder = tmp_path / "art"
    shutil.copytree(tiny_exports["fp32"].path, folder)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    (folder / "tokenizer.json").write_text(json.dumps({**tokenizer, "normalizer": {"type": "Sequence",
                                                                                  "normalizers": []}}))
    capfd.readouterr()
    got = executorch.standard_check(folder, [0, 408, 409], [259])
    assert not got["loaded"] and "Missing normalizers" in got["error"] and "\n" not in got["error"], got
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    (folder / "model.pte").write_bytes((folder / "model.pte").read_bytes()[:4096])
    got = executorch.standard_check(folder, [0, 408, 409], [259])
    assert not got["loaded"] and got["error"] and "\n" not in got["error"], got
    assert capfd.readouterr() == ("", "")


def test_8da4w_quantizes_and_is_smaller(tiny_exports):
    """8da4w (the llama builtin) quantizes every linear and the embedding; XNNPACK takes nearly the whole graph."""
    q = tiny_exports["8da4w"].manifest
    assert q.recipe["name"] == "8da4w-g32-emb8-mix2" and "quantize" in q.export["stages"]
    quantization = q.recipe["quantization"]
    assert quantization["head"].startswith("int8") and quantization["embedding"].startswith("int8")
    assert "quantization" not in q.runtime and "calibration" not in quantization
    assert q.runtime["delegation"]["share"] > 0.85, q.runtime["delegation"]
    assert tiny_exports["8da4w"].size_bytes < 0.6 * tiny_exports["fp32"].size_bytes


def test_embedding_option_quantizes_the_table(tiny_exports):
    """-emb4 is a table of its own; builtin:tiny's embedding is tied to its head, so -emb8 (8da4w's
    default) gathers the rows of the head's int8 table, which XNNPACK's head and the embedding read from
    one data file beside the program, stored once: the artifact is smaller than with a table of its own
    at 4 bits."""
    emb4, emb8 = tiny_exports["8da4w-emb4"], tiny_exports["8da4w"]
    assert emb8.manifest.recipe["name"] == "8da4w-g32-emb8-mix2" and emb8.manifest.parity["passed"]
    assert "quantized_decomposed.embedding_4bit" in emb4.manifest.runtime["delegation"]["not_delegated"]
    assert "quantized_decomposed.embedding_byte" in emb8.manifest.runtime["delegation"]["not_delegated"]
    assert "quantized" in emb4.manifest.runtime["kernel_libraries"]
    assert emb8.manifest.recipe["quantization"]["embedding"].startswith("int8 per row, the head's table")
    data = emb8.path / emb8.manifest.runtime["data_file"]
    table = 2048 * 256  # builtin:tiny's vocabulary x hidden, one byte each
    assert table < data.stat().st_size < 1.1 * table  # the head's table once, for both
    assert "data_file" not in emb4.manifest.runtime
    assert emb8.size_bytes < emb4.size_bytes


def test_mixed_recipe_keeps_the_costliest_layers_at_8_bits(tiny_exports):
    """8da4w (-mix2 by default) measures each layer's cost on the calibration text and keeps the two
    costliest ones' linears at int8 per channel: the manifest says which, and the file grows by their
    bytes; -mix0 keeps none and measures nothing."""
    art, none = tiny_exports["8da4w"], tiny_exports["8da4w-mix0"]
    recipe = art.manifest.recipe
    assert recipe["name"] == "8da4w-g32-emb8-mix2" and recipe["mixed_layers"] == 2
    mixed = recipe["quantization"]["mixed"]
    assert len(mixed["layer_kl"]) == 4 and mixed["calibration"]["text"] == "calibration.txt"
    assert mixed["kept_layers"] == sorted(sorted(range(4), key=lambda i: -mixed["layer_kl"][i])[:2])
    assert "sensitivity" in art.manifest.export["stages"]
    assert (none.manifest.recipe["name"] == "8da4w-g32-emb8"
            and "mixed" not in none.manifest.recipe["quantization"])
    assert "sensitivity" not in none.manifest.export["stages"]
    assert none.size_bytes < art.size_bytes < tiny_exports["8da8w"].size_bytes


def test_imatrix_recipe_searches_the_4bit_scales_on_the_calibration_text(tiny_exports):
    """8da4w-imatrix collects the importance matrix of the float decoder on the calibration text and
    searches each group's scale with it: the manifest records the text and its cost; the program
    passes parity (the test above) and is the size of the round-to-nearest one."""
    art, rtn = tiny_exports["8da4w-mix0-imatrix"], tiny_exports["8da4w-mix0"]
    quantization = art.manifest.recipe["quantization"]
    assert art.manifest.recipe["method"] == "imatrix" and "imatrix" in art.manifest.export["stages"]
    assert quantization["calibration"]["text"] == "calibration.txt" and quantization["calibration"]["tokens"] > 0
    assert quantization["calibration"]["seconds"] >= 0 and "imatrix" in quantization["scales"]
    assert abs(art.size_bytes - rtn.size_bytes) < 0.01 * rtn.size_bytes


def test_8da8w_rotates_the_residual_stream(tiny_exports):
    """8da8w rotates the residual stream (norms folded) and the MLP's hidden state before quantizing;
    the manifest says so, and the program still passes parity (the test above)."""
    rotation = tiny_exports["8da8w"].manifest.recipe["quantization"]["rotation"]
    assert rotation["applied"] and rotation["residual"]["size"] == 256 and rotation["mlp_hidden"]["block"] == 64
    assert "rotation" not in tiny_exports["8da4w"].manifest.recipe["quantization"]


def test_int8_is_weight_only(tiny_exports):
    art = tiny_exports["int8"]
    assert "quantized_decomposed.dequantize_per_channel" in art.manifest.runtime["delegation"]["not_delegated"]
    assert art.size_bytes < 0.6 * tiny_exports["fp32"].size_bytes


def test_runtime_prefill_is_chunked_and_matches_token_by_token(tiny_exports, prefill_windows_match):
    prefill_windows_match(tiny_exports["fp32"].path, 1e-4)


def test_linear_conversion_is_skipped_where_no_mm_is_left_and_the_program_is_the_same(tmp_path):
    import torch
    from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
    from executorch.exir import ExecutorchBackendConfig
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass
    from torch import nn

    from edgekit.targets.executorch_lowering import calls_any

    torch.manual_seed(0)  # XNNPACK takes both linears: no [add]mm is left outside the delegate
    program = torch.export.export(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)), (torch.randn(2, 8),))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours = executorch._to_executorch(executorch._lower(program, False, lambda: None, tmp_path / "a"), lambda: None,
                                     tmp_path / "a")
    edge = executorch._lower(program, False, lambda: None, tmp_path / "b")
    assert not calls_any(edge.exported_program().graph_module, ConvertToLinearPass.targets)
    plain = edge.transform([ConvertToLinearPass()]).to_executorch(ExecutorchBackendConfig(
        extract_delegate_segments=True, do_quant_fusion_and_const_prop=True,
        memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
        sym_shape_eval_pass=ConstraintBasedSymShapeEvalPass()))
    assert ours.buffer == plain.buffer
