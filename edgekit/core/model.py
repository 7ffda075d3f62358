"""The one Hugging Face model loader, and the model's own context limit: what every stage that needs
the PyTorch model (the parity reference, the accuracy reference, the exporters) reads it with."""

from __future__ import annotations

import json
from pathlib import Path


def load_model(source, dtype=None):
    """The HF model of ``source`` (a ``ModelSource``: its ``path``, ``trust_remote_code`` and
    ``allow_pickle``) in eval mode without gradients: fp32 with transformers' eager attention (SDPA,
    the default, drops what it cannot express, such as Gemma 2's attention soft-capping); ``dtype``
    (a torch dtype other than float32) casts it in place after loading, as the reference is loaded."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        source.path,
        dtype=torch.float32,
        trust_remote_code=source.trust_remote_code,
        use_safetensors=None if source.allow_pickle else True,
        attn_implementation="eager",
    )
    model.eval().requires_grad_(False)
    if dtype is not None and dtype != torch.float32:
        model.to(dtype)
    return model


def model_context(model_path: Path) -> int:
    """The model's own context limit, from its config."""
    config = json.loads((Path(model_path) / "config.json").read_text())
    config = config.get("text_config", config)
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)


def non_finite_weight(model) -> str | None:
    """The name of the model's first weight that holds a NaN or an infinity (None where all are finite):
    a quantizer fed one fails in its own words ("quantizer failed (MOSTLY_Q4_0, code 1)") or writes garbage."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return name
    return None
