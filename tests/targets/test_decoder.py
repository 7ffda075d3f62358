"""The decoder shared by ExecuTorch and Core ML reproduces the HF model of every architecture it has a row
for, through its cache (prefill, decode past the sliding window, a later chunk), on both ExecuTorch
attention paths; what it cannot express is refused in one line that names the missing feature."""

from __future__ import annotations

import json

import pytest

from edgekit.targets import decoder_arch

SEQ = 24  # longer than the tiny checkpoints' sliding window (8)


def _hf(path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    ids = torch.randint(0, model.config.get_text_config().vocab_size, (1, SEQ),
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model, ids, model(ids).logits[0]


def _through_cache(module, ids):
    """Logits of every position: a 7-token prefill, single tokens to position 13 (past the window),
    then the rest as one chunk that starts mid-sequence."""
    import torch

    calls = [(0, 7), *((i, i + 1) for i in range(7, 13)), (13, SEQ)]
    with torch.no_grad():
        return torch.cat([module(ids[:, a:b], torch.tensor([a]))[0] for a, b in calls])


@pytest.mark.parametrize("custom", [True, False], ids=["custom-ops", "plain-sdpa"])
@pytest.mark.parametrize("arch", sorted(decoder_arch.ARCHITECTURES))
def test_executorch_decoder_matches_hf(arch, custom, tiny_models):
    pytest.importorskip("executorch")
    import torch

    from edgekit.targets.executorch_model import DecoderWithCache, custom_ops_available

    if custom and not custom_ops_available():
        pytest.skip("this ExecuTorch install has no LLM custom ops")
    model, ids, want = _hf(tiny_models(arch))
    module = DecoderWithCache(model, arch, 64, custom_ops=custom, all_logits=True).eval()
    assert (_through_cache(module, ids) - want).abs().max() < 1e-4
    module.all_logits = False  # the program's form: the last n - k + 2 rows (at most n), k = input_pos's length
    with torch.no_grad():
        last = module(ids[:, :7], torch.arange(7))  # every token's position (TextLLMRunner's): the last two rows
        every = module(ids[:, :7], torch.tensor([0]))  # the start alone (edgekit's scoring): every row
    assert last.shape == (1, 2, want.shape[-1]) and (last[0] - want[5:7]).abs().max() < 1e-4
    assert every.shape == (1, 7, want.shape[-1]) and (every[0] - want[:7]).abs().max() < 1e-4


# arch -> what each feature of the tiny checkpoint is (a layer attribute or the decoder's)
FEATURES = {
    "gemma3_text": ("window", "rope"),
    "gemma2": ("window", "softcap", "final_softcap"),
}


@pytest.mark.parametrize(("arch", "feature"), [(a, f) for a, fs in FEATURES.items() for f in fs])
def test_tiny_checkpoints_exercise_each_feature(arch, feature, tiny_models):
    """Left out, each feature moves the logits past fp32 parity's 1e-3: the tests above would see it."""
    from edgekit.targets.executorch_model import DecoderWithCache

    model, ids, want = _hf(tiny_models(arch))
    module = DecoderWithCache(model, arch, 64, custom_ops=False, all_logits=True).eval()
    if feature == "final_softcap":
        module.final_softcap = None
    for layer in module.layers:
        setattr(layer, feature, 0 if feature == "rope" else None)
    assert (_through_cache(module, ids) - want).abs().max() > 1e-3


@pytest.mark.parametrize("target", ["executorch", "coreml"])
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_type": "gpt_neox"}, "gpt_neox is not supported (parallel attention and MLP with two separate norms"),
        ({"model_type": "mixtral"}, "mixtral is not supported (mixture-of-experts MLP)"),
        ({"model_type": "bloom"}, "bloom is not supported (ALiBi position biases)"),
        ({"model_type": "gemma3_text", "use_bidirectional_attention": True},
         "gemma3_text with bidirectional attention"),
        ({"model_type": "gemma3", "text_config": {"model_type": "gemma3n_text"}}, "not 'gemma3n_text'"),
        ({"model_type": "qwen2", "layer_types": ["chunked_attention"]}, "attention layers of type chunked_attention"),
        ({"model_type": "bert"},  # a model type transformers knows (an unknown one is refused before: source.py)
         "bert is not supported (not an architecture edgekit's decoder knows; supported: gemma,"),
    ],
)
def test_refusals_name_the_missing_feature(target, config, message, cli, tmp_path):
    """Refused from the config alone, before the weights are read: the folder has none."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(config))
    r = cli("export", model, "-t", target, "-o", tmp_path / "out")
    assert r.code == 2 and r.said.strip().count("\n") == 0 and "Traceback" not in r.err
    assert r.said.startswith(f"error: {target}: ") and message in r.err, r.err
    assert not (tmp_path / "out").exists()


def test_windows_follow_the_config():
    from types import SimpleNamespace as Config

    from edgekit.targets.decoder import layer_windows

    assert layer_windows(Config(), 2) == [None, None]  # llama: no sliding_window attribute
    # qwen2 off
    assert layer_windows(Config(sliding_window=None, layer_types=["full_attention"] * 2), 2) == [None, None]
    assert layer_windows(Config(sliding_window=16), 2) == [16, 16]  # mistral: every layer
    types = ["sliding_attention", "sliding_attention", "full_attention"]
    assert layer_windows(Config(sliding_window=16, layer_types=types), 3) == [16, 16, None]  # gemma 2/3
