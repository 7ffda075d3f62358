"""The GGUF as an app reads it: the ``general.*`` / ``tokenizer.*`` metadata that llama.cpp's chat needs
(name, licence, chat template, end-of-turn ids), and the artifact loaded in llama-cpp-python's own
LLM API (``llama_cpp.Llama``, ``standard_check``).

Metadata, as ``convert_hf_to_gguf.py`` writes it for a Hugging Face checkpoint:

- from a Hugging Face source (``edgekit.model_meta``): ``general.name``, ``general.license`` (with
  ``general.license.name`` / ``.link`` for a licence that is no SPDX id, such as ``gemma``),
  ``general.base_model.*`` where the base model is known, ``tokenizer.chat_template``, the EOS and the
  end-of-turn / end-of-message ids (``tokenizer.ggml.eot_token_id`` / ``eom_token_id``) where they are
  tokens of their own;
- from a GGUF source (the file's keys that its cache folder keeps) or the original GGUF of a checkpoint
  that transformers rebuilt from one (in the folder): every ``general.*`` and ``tokenizer.*`` key of the
  file, over the ones above, but for those edgekit owns (``OWNED``).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.environment import distribution_version
from edgekit.errors import first_line
from edgekit.gguf_source import VOCABULARY_KEYS

# keys a carried-over GGUF's value never replaces:
# - general.architecture: the writer's, for the graph edgekit wrote;
# - general.file_type, general.quantization_version: llama.cpp's quantizer sets them for the file it makes
#   (edgekit writes ALL_F32 for the float32 intermediate);
# - general.alignment: the tensor data layout of the file edgekit writes;
# - the vocabulary arrays and tokenizer.ggml.model: edgekit rebuilds the vocabulary (id for id, from the
#   source's tokenizer.json) and the model kind goes with the arrays it writes (gpt2 or llama).
# Everything else is the source's where it has the key: its tokenizer.ggml.pre names the splitting
# llama.cpp ran the source with (transformers' rebuild drops it; edgekit's own is a guess from
# tokenizer.json), its special ids and add-BOS/EOS flags index the same vocabulary, and its name,
# licence and chat template are what an app shows and formats a conversation with.
OWNED = ("general.architecture", "general.file_type", "general.quantization_version", "general.alignment",
         "tokenizer.ggml.model", *VOCABULARY_KEYS)
# licence ids that are SPDX ids: the id says it all (convert_hf_to_gguf adds a name and link for "other" ones)
_SPDX = ("apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "gpl-3.0",
         "lgpl-3.0", "agpl-3.0", "mpl-2.0", "openrail", "unlicense")
# llama.cpp gives the "</s>" token attributes when general.name contains one of these; a vocabulary without
# it fails to load (llama-vocab.cpp's per-model attributes)
_NAME_QUIRKS = ("phi-3", "phi3")


def source_metadata(source, original: dict) -> dict:
    """The GGUF keys carried over: a GGUF source's (model_meta), else those of the original GGUF in the
    folder (``original``: ``gguf._original_gguf``'s answer), else none."""
    from edgekit import model_meta

    carried = model_meta.of(source).gguf or original.get("metadata") or {}
    return {k: v for k, v in carried.items() if k.startswith(("general.", "tokenizer.")) and k not in OWNED}


def write_metadata(w, source, tokens: list[str], carried: dict) -> None:
    """The name, licence, base model, chat template and end-of-turn ids (from the source's files), then
    every carried GGUF key over them. The vocabulary (``tokens``) and the BOS/EOS/padding ids are written."""
    from edgekit import model_meta

    meta = model_meta.of(source)
    name = meta.name
    if name and not (any(q in name.lower() for q in _NAME_QUIRKS) and "</s>" not in tokens):
        w.add_name(name)
    if meta.license:
        w.add_license(meta.license)
        if meta.license not in _SPDX:
            if meta.license_name:
                w.add_license_name(meta.license_name)
            if meta.license_link:
                w.add_license_link(meta.license_link)
    if meta.base_model and not any(k.startswith("general.base_model.") for k in carried):
        org, _, repo = meta.base_model.rpartition("/")
        w.add_base_model_count(1)
        w.add_base_model_name(0, repo)
        if org:
            w.add_base_model_organization(0, org)
            w.add_base_model_repo_url(0, f"https://huggingface.co/{meta.base_model}")
    if meta.chat_template:
        w.add_chat_template(meta.chat_template)
    # the model's other stop ids: llama.cpp ends generation at its EOS, EOT and EOM (and at tokens whose text
    # it knows as an end of turn); the first that is "<|eom_id|>" is the end of message, the first other the EOT
    others = [i for i in meta.eos_ids[1:] if 0 <= i < len(tokens)]
    eom = next((i for i in others if tokens[i] == "<|eom_id|>"), None)
    eot = next((i for i in others if i != eom), None)
    if eot is not None:
        w.add_eot_token_id(eot)
    if eom is not None:
        w.add_eom_token_id(eom)
    for key, value in carried.items():
        put(w, key, value)


def put(w, key: str, value) -> None:
    """``key`` = ``value`` (a JSON value as ``gguf_source.metadata`` keeps it) in the type llama.cpp reads
    such a key with: integers as uint32 (token ids, counts: llama.cpp refuses an int32 where it reads a
    uint32), int32 / 64-bit where the value does not fit, floats as float32, lists as arrays of their
    items' type (the gguf package's: int32 for integers). A value written before is replaced."""
    for kv in w.kv_data:
        kv.pop(key, None)
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, int):
        if 0 <= value < 2**32:
            w.add_uint32(key, value)
        elif -(2**31) <= value < 0:
            w.add_int32(key, value)
        else:
            (w.add_uint64 if value > 0 else w.add_int64)(key, value)
    elif isinstance(value, float):
        w.add_float32(key, value)
    elif isinstance(value, str):
        w.add_string(key, value)
    elif isinstance(value, list) and len({type(v) for v in value}) == 1 and isinstance(value[0], (str, int, float)):
        w.add_array(key, value)  # (an empty list or one of mixed or nested items is no key llama.cpp reads)


# ---------------------------------------------------------------- the artifact in llama-cpp-python


def standard_check(folder: Path, prompt: list[int], expected: list[int]) -> dict:
    """Load the artifact's GGUF in ``llama_cpp.Llama`` (what an app uses), with the manifest's context,
    KV cache type and flash attention as edgekit's runner uses them, and greedily generate
    ``len(expected)`` tokens after the token ids ``prompt``. llama.cpp runs in a child process
    (``gguf_native``): a file that makes it abort is ``loaded: False`` with its last words."""
    from edgekit.errors import EdgekitError
    from edgekit.targets import gguf_native

    record = {"runtime": "llama.cpp", "version": distribution_version("llama_cpp_python"), "api": "llama_cpp.Llama"}
    try:
        runtime = json.loads((Path(folder) / "edgekit.json").read_text())["runtime"]
        request = {"model": str(Path(folder) / runtime["model_file"]), "prompt": [int(t) for t in prompt],
                   "n": len(expected), "n_ctx": int(runtime["max_context"]),
                   "kv_cache": runtime.get("kv_cache", "f16"), "flash_attn": runtime.get("flash_attn", "auto")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        return {**record, "loaded": False, "error": f"cannot read {folder}/edgekit.json: {first_line(e)}"}
    try:
        answer = gguf_native.run("standard", f"loading {runtime['model_file']} in llama_cpp.Llama", **request)
    except EdgekitError as e:
        return {**record, "loaded": False, "error": first_line(e)}
    return {**record, "loaded": True, "tokens": answer["tokens"]}


def generate(model: str, prompt: list[int], n: int, n_ctx: int, kv_cache: str, flash_attn: str) -> dict:
    """The child side of ``standard_check`` (``gguf_native``'s ``standard`` request)."""
    import llama_cpp

    from edgekit.runtime.llamacpp import _KV_TYPES
    from edgekit.runtime.machine import usable_cpus

    threads = usable_cpus()
    try:
        llm = llama_cpp.Llama(
            model, verbose=False, n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, n_threads_batch=threads,
            type_k=_KV_TYPES[kv_cache], type_v=_KV_TYPES[kv_cache],
            # the constructor takes flash attention on or off; "auto" is on where every layer runs on
            # the CPU, as here (llama.cpp's auto setting picks it where the device has the kernel)
            flash_attn=flash_attn != "off",
        )
    except ValueError as e:  # llama-cpp-python's own words when llama.cpp returns no model or context
        raise ValueError(f"llama_cpp.Llama cannot load {Path(model).name}: {first_line(e)}") from None
    tokens: list[int] = []
    if n > 0:
        for token in llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            tokens.append(int(token))
            if len(tokens) == n:
                break
    return {"tokens": tokens}
