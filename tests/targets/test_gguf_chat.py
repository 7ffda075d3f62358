"""A GGUF artifact as llama.cpp's apps read it: the source's general.*/tokenizer.* metadata (name, licence,
chat template, end-of-turn ids), the file in llama-cpp-python's own ``Llama`` API (standard_check,
create_chat_completion) generating what edgekit's runner generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_model import CHATML, assert_shipped, chat_copy

pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp")

from edgekit.builtins import BUILTINS  # noqa: E402
from edgekit.targets import gguf as gguf_target  # noqa: E402
from edgekit.targets.gguf_chat import OWNED  # noqa: E402

TINY = Path(BUILTINS["tiny"].path())
QUESTION = "What is the capital of France?"
_VOCABULARY = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")


def _keys(path: Path) -> dict:
    """The file's general.*/tokenizer.* keys but the vocabulary: key -> (value, gguf type names)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    return {k: (f.contents(), [t.name for t in f.types]) for k, f in fields.items()
            if k.startswith(("general.", "tokenizer.")) and k not in _VOCABULARY}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, export_builtin):
    return export_builtin(tmp_path_factory.mktemp("tiny-gguf-chat"), "gguf", ["fp32", "q4_0"])


@pytest.mark.parametrize("recipe", ["fp32", "q4_0"])
def test_standard_check_generates_the_runners_greedy_tokens(tiny, recipe):
    from edgekit import artifact
    from edgekit.runtime import load
    from edgekit.runtime.generate import greedy

    art = tiny[recipe]
    assert_shipped(art.path, "gguf")
    keys = _keys(art.path / "model.gguf")
    assert keys["general.name"][0] == "tiny" and keys["general.license"][0] == "apache-2.0"
    assert "general.license.name" not in keys  # an SPDX id says it all
    assert keys["tokenizer.ggml.eos_token_id"] == (0, ["UINT32"]) and "tokenizer.chat_template" not in keys
    prompt = artifact.tokenizer(art.path).encode("Once upon a time").ids
    expected = greedy(load(art.path), prompt, 24, stop=set()).tokens
    checked = gguf_target.standard_check(art.path, prompt, expected)
    assert checked == {"runtime": "llama.cpp", "version": llama_cpp.__version__, "api": "llama_cpp.Llama",
                       "loaded": True, "tokens": expected}
    standard = art.manifest.standard_runtime  # the export's own check (its prompt, 16 tokens)
    assert standard["loaded"] and standard["tokens_match"], standard


def test_standard_check_says_why_a_file_does_not_load(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    assert gguf_target.standard_check(folder, [1], [2])["loaded"] is False  # no manifest
    (folder / "edgekit.json").write_text(json.dumps({"runtime": {"model_file": "model.gguf", "max_context": 64}}))
    (folder / "model.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    checked = gguf_target.standard_check(folder, [1], [2])
    assert checked["loaded"] is False and checked["api"] == "llama_cpp.Llama", checked
    assert "model.gguf" in checked["error"] and "\n" not in checked["error"], checked


def test_hf_source_writes_name_licence_base_model_template_and_end_of_turn(tmp_path, cli):
    """From a Hugging Face folder, as convert_hf_to_gguf writes them; llama-cpp-python formats a
    conversation with the file's own template and answers as `edgekit run --chat` does."""
    folder, im_end = chat_copy(tmp_path / "model", "gemma")
    out = tmp_path / "art"
    r = cli("export", folder, "-t", "gguf", "-r", "q8_0", "--max-context", "256", "-o", out, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["standard_runtime"]["tokens_match"]
    keys = {k: v for k, (v, _) in _keys(out / "model.gguf").items()}
    assert keys["general.name"] == "model" and keys["tokenizer.chat_template"] == CHATML
    assert (keys["general.license"], keys["general.license.name"], keys["general.license.link"]) == (
        "gemma", "Gemma Terms of Use", "https://ai.google.dev/gemma/terms")
    assert (keys["general.base_model.count"], keys["general.base_model.0.name"],
            keys["general.base_model.0.organization"], keys["general.base_model.0.repo_url"]) == (
        1, "tiny-base", "org", "https://huggingface.co/org/tiny-base")
    assert (keys["tokenizer.ggml.eos_token_id"], keys["tokenizer.ggml.eot_token_id"]) == (0, im_end)
    inspected = json.loads(cli("inspect", out, "--json").out)["metadata"]
    assert inspected["tokenizer.chat_template"] == f"[{len(CHATML)} characters]"
    assert inspected["general.license"] == "gemma"

    llm = llama_cpp.Llama(str(out / "model.gguf"), n_ctx=256, verbose=False)
    assert llm.chat_format == "chat_template.default"  # the file's own template, not a guessed one
    answer = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                        max_tokens=12)
    r = cli("run", out, "--chat", "--prompt", QUESTION, "--max-new-tokens", "12")
    assert r.code == 0, r.err
    assert answer["choices"][0]["message"]["content"] == r.out.removesuffix("\n")


def test_carried_values_keep_the_types_llama_cpp_reads(tmp_path):
    from gguf import GGUFWriter

    from edgekit.targets.gguf_chat import put

    path = tmp_path / "keys.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("replaced")
    values = {"general.name": "kept", "tokenizer.ggml.eot_token_id": 106, "general.x.offset": -3,
              "general.x.big": 2**40, "general.x.scale": 0.5, "tokenizer.ggml.add_space_prefix": False,
              "general.tags": ["a", "b"], "general.x.ids": [1, 2], "general.x.empty": []}
    for key, value in values.items():
        put(writer, key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    keys = _keys(path)
    assert {k: keys[k][1][0] for k in values if k in keys} == {
        "general.name": "STRING", "tokenizer.ggml.eot_token_id": "UINT32", "general.x.offset": "INT32",
        "general.x.big": "UINT64", "general.x.scale": "FLOAT32", "tokenizer.ggml.add_space_prefix": "BOOL",
        "general.tags": "ARRAY", "general.x.ids": "ARRAY"}
    assert keys["general.name"][0] == "kept" and keys["general.tags"] == (["a", "b"], ["ARRAY", "STRING"])


def _with_keys(src: Path, dst: Path, extra: dict) -> None:
    """``src`` (a float32 GGUF) rewritten with ``extra`` keys: name -> (value, GGUFValueType[, item type])."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    reader = GGUFReader(str(src))
    writer = GGUFWriter(str(dst), str(reader.fields["general.architecture"].contents()))
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", *extra):
            continue
        sub = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    for key, (value, kind, *sub) in extra.items():
        writer.add_key_value(key, value, kind, sub_type=sub[0] if sub else None)
    for t in reader.tensors:
        writer.add_tensor(t.name, np.array(t.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_source_keys_are_carried_over(tiny, tmp_path, cli):
    """Every general.*/tokenizer.* key of a GGUF source reaches the artifact with its value and type,
    but those edgekit owns (the architecture, the file type the quantizer sets, the vocabulary)."""
    from gguf import GGUFValueType as T

    source = tmp_path / "tiny-chat.gguf"
    _with_keys(tiny["fp32"].path / "model.gguf", source, {
        "general.name": ("Tiny Chat", T.STRING), "general.author": ("edgekit tests", T.STRING),
        "general.license": ("gemma", T.STRING), "general.license.link": ("https://example.org/terms", T.STRING),
        "general.tags": (["text-generation", "tiny"], T.ARRAY, T.STRING), "general.languages": (["en"], T.ARRAY,
                                                                                               T.STRING),
        "general.base_model.count": (1, T.UINT32), "general.base_model.0.name": ("Tiny Base", T.STRING),
        "tokenizer.chat_template": (CHATML, T.STRING), "tokenizer.ggml.eot_token_id": (3, T.UINT32),
        "tokenizer.ggml.add_eos_token": (False, T.BOOL), "tokenizer.ggml.padding_token_id": (1, T.UINT32),
    })
    out = tmp_path / "art"
    r = cli("export", source, "-t", "gguf", "-r", "q4_0", "--max-context", "256", "-o", out, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    assert manifest["runtime"]["tokenizer"]["from_gguf"] == "tiny-chat.gguf"
    assert manifest["standard_runtime"]["tokens_match"], manifest["standard_runtime"]
    had, got = _keys(source), _keys(out / "model.gguf")
    carried = {k: v for k, v in had.items() if k not in OWNED}
    assert len(carried) >= 15 and {k: got.get(k) for k in carried} == carried
    assert got["general.file_type"][0] == 2 and got["general.quantization_version"][0] == 2  # llama.cpp's Q4_0


def test_smollm2_q4_0_answers_through_its_own_chat_template(smollm2, tmp_path, cli):
    """SmolLM2-135M-Instruct (the fast path: GGUF Q4_1 -> q4_0): llama-cpp-python's chat completion
    formats the conversation with the file's template, stops at <|im_end|> and says what `edgekit run
    --chat` says; the file keeps the source's name, licence and template."""
    out = tmp_path / "smollm2-q4_0"
    r = cli("export", "builtin:smollm2-135m", "-t", "gguf", "-r", "q4_0", "-o", out, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["standard_runtime"]["tokens_match"]
    had, got = _keys(smollm2), _keys(out / "model.gguf")
    assert {k: got.get(k) for k in had if k not in OWNED} == {k: v for k, v in had.items() if k not in OWNED}
    assert got["tokenizer.chat_template"][0].startswith("{% for message in messages %}")
    assert got["general.license"][0] == "apache-2.0" and got["tokenizer.ggml.eos_token_id"][0] == 2  # <|im_end|>

    llm = llama_cpp.Llama(str(out / "model.gguf"), n_ctx=2048, verbose=False)
    assert llm.chat_format == "chat_template.default"
    answer = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                        max_tokens=64)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "stop" and answer["usage"]["completion_tokens"] < 64  # ended at <|im_end|>
    assert "Paris" in choice["message"]["content"]
    r = cli("run", out, "--chat", "--prompt", QUESTION, "--max-new-tokens", "64")
    assert r.code == 0, r.err
    assert choice["message"]["content"] == r.out.removesuffix("\n")
