"""The one HF model loader and the model's own context limit."""

from __future__ import annotations

import json

from edgekit.core.model import load_model, model_context
from edgekit.source import resolve


def test_the_context_limit_comes_from_the_config(tmp_path):
    for config, limit in (({"max_position_embeddings": 4096}, 4096), ({"n_positions": 1024}, 1024),
                          ({"text_config": {"max_position_embeddings": 512}}, 512), ({}, 2048)):
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert model_context(tmp_path) == limit


def test_the_model_loads_for_inference_in_float32_or_cast():
    import torch

    source = resolve("builtin:tiny")
    model = load_model(source)
    assert not model.training and model.config._attn_implementation == "eager"
    assert ({p.dtype for p in model.parameters()} == {torch.float32}
            and not any(p.requires_grad for p in model.parameters()))
    assert {p.dtype for p in load_model(source, torch.float16).parameters()} == {torch.float16}
