"""The residual stream's rotation (8da8w) leaves the float decoder's logits as they were on every
architecture it applies to, and names why it does not apply to the others."""

from __future__ import annotations

import pytest

from edgekit.targets import decoder_arch

pytest.importorskip("torchao")

SEQ = 12
REFUSED = {  # the architectures whose residual stream stays as it is, and why
    "gpt2": "LayerNorm", "phi": "LayerNorm", "gemma2": "norms after", "gemma3_text": "norms after",
    "gemma3": "norms after",
}


def _attend(layer, q, k, v):
    """Causal attention within the sequence, no cache (q, k, v [1, n, heads, dim])."""
    import torch

    from edgekit.targets.decoder import attention, visible

    positions = torch.arange(q.shape[1])
    mask = torch.where(visible(positions, positions, layer.window), 0.0, float("-inf"))
    rep = layer.heads // layer.kv_heads
    k, v = (t.transpose(1, 2).repeat_interleave(rep, dim=1) for t in (k, v))
    return attention(q.transpose(1, 2), k, v, mask, layer.scale, layer.softcap).transpose(1, 2)


@pytest.mark.parametrize("arch", sorted(decoder_arch.ARCHITECTURES))
def test_rotation_keeps_the_logits_or_is_refused(arch, tiny_models):
    import torch
    from transformers import AutoModelForCausalLM

    from edgekit.targets import rotation
    from edgekit.targets.decoder import Decoder

    model = AutoModelForCausalLM.from_pretrained(tiny_models(arch), attn_implementation="eager").eval()
    decoder = Decoder(model, arch, 32)
    why = rotation.refusal(decoder)
    if arch in REFUSED:
        assert why and REFUSED[arch] in why, why
        return
    assert why is None, why
    ids = torch.randint(0, decoder.lm_head.out_features, (1, SEQ), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(ids).logits[0]
        record = rotation.rotate(decoder)
        mlp = rotation.rotate_mlp_hidden(decoder, block=8)
        x, ropes = decoder.embed_and_rope(ids, torch.arange(SEQ))
        after = decoder.decode(x, ropes, _attend)[0]
    assert record["size"] == decoder.embed.weight.shape[1] and mlp["block"] == 8
    assert decoder.layers[0].mlp_rotation.shape == (8, 8)
    assert decoder.lm_head.weight is not decoder.embed.weight  # a tied head has its own (rotated, norm-folded) table
    assert all(bool((n.weight == 1).all()) for layer in decoder.layers for n in (layer.ln1, layer.ln2))
    assert (after - before).abs().max() < 1e-3
