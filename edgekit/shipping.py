"""What makes an artifact a deliverable beside its model file: the files every runtime's app side reads
(``config.json``, ``generation_config.json`` with every stop id, ``tokenizer_config.json`` and
``special_tokens_map.json`` naming the model's real BOS and EOS, the chat template), the source's
licence, and a model card (``README.md`` with the Hub's YAML front matter) so that the folder can be
uploaded as it is. One reading of the model (``edgekit.model_meta``) decides them for every target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from edgekit.model_meta import ModelMeta, json_object

CARD = "README.md"
LICENSE = "LICENSE"
# what the Hub calls each target's library (its `library_name`), and the runtime API the card shows
LIBRARIES = {"onnx": "onnxruntime-genai", "executorch": "executorch", "gguf": "gguf", "coreml": "coreml"}


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def write_runtime_files(folder: Path, source_folder: Path, meta: ModelMeta, tokenizer) -> None:
    """``config.json`` and ``generation_config.json`` (the source's, where the exporter wrote none, with
    the stop ids), and the tokenizer's configs naming the model's own BOS/EOS and chat template.
    ``tokenizer``: the artifact's ``tokenizers.Tokenizer`` (to name ids by their text)."""
    folder, source_folder = Path(folder), Path(source_folder)
    config = json_object(folder / "config.json") or json_object(source_folder / "config.json")
    if meta.eos_id is not None:
        config["eos_token_id"] = meta.eos_id if not isinstance(config.get("eos_token_id"), list) \
            else list(meta.eos_ids)
    if meta.bos_id is not None:
        config["bos_token_id"] = meta.bos_id
    _write_json(folder / "config.json", config)

    generation = json_object(folder / "generation_config.json") or json_object(source_folder / "generation_config.json")
    generation.setdefault("_from_model_config", False)
    if meta.bos_id is not None:
        generation["bos_token_id"] = meta.bos_id
    if meta.eos_ids:  # every id generation stops at: the EOS and the end-of-turn tokens
        generation["eos_token_id"] = list(meta.eos_ids) if len(meta.eos_ids) > 1 else meta.eos_ids[0]
    if meta.pad_id is not None:
        generation.setdefault("pad_token_id", meta.pad_id)
    _write_json(folder / "generation_config.json", generation)

    names = {"bos_token": meta.bos_id, "eos_token": meta.eos_id, "pad_token": meta.pad_id}
    texts = {k: tokenizer.id_to_token(v) for k, v in names.items() if v is not None}
    tok_config = json_object(folder / "tokenizer_config.json")
    tok_config.update({k: v for k, v in texts.items() if v is not None})
    if meta.chat_template and not (folder / "chat_template.jinja").is_file():
        tok_config["chat_template"] = meta.chat_template
    _write_json(folder / "tokenizer_config.json", tok_config)
    special = json_object(folder / "special_tokens_map.json")
    special.update({k: v for k, v in texts.items() if v is not None})
    _write_json(folder / "special_tokens_map.json", special)


def write_license(folder: Path, meta: ModelMeta) -> str | None:
    """The source's licence text beside the artifact, where the source has one; returns its file name."""
    if meta.license_file is None:
        return None
    shutil.copyfile(meta.license_file, Path(folder) / LICENSE)
    return LICENSE


def write_card(folder: Path, meta: ModelMeta, manifest: Mapping) -> None:
    """``README.md``: the Hub's front matter (``base_model``, ``license``, ``library_name``, ``tags``) and
    what a reader needs: the recipe, the parity check's figures, the standard runtime it was checked in,
    the stop tokens and how to run it."""
    import yaml

    target = manifest["target"]
    recipe = manifest["recipe"]
    front: dict = {}
    if meta.base_model:
        front["base_model"] = meta.base_model
    if meta.license:
        front["license"] = meta.license if meta.license in _HUB_LICENSES else "other"
        if front["license"] == "other":
            front["license_name"] = meta.license
            if meta.license_link:
                front["license_link"] = meta.license_link
    front["library_name"] = LIBRARIES.get(target, target)
    front["pipeline_tag"] = "text-generation"
    front["tags"] = ["edgekit", target, recipe["name"], str(manifest["source"].get("model_type", ""))]
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {meta.name} — {target} `{recipe['name']}`", "",
             f"Exported by edgekit from `{manifest['source']['model']}` for {_RUNTIMES.get(target, target)}."]
    gguf = manifest["source"].get("gguf")
    if isinstance(gguf, Mapping) and gguf.get("quantized"):
        lines += ["", f"The source was the GGUF file `{gguf.get('file')}` ({gguf.get('file_type')}): "
                      "its weights were dequantized, and every figure below compares against that quantized "
                      "model, not the original float weights."]
    lines += ["", "## Recipe", "", f"- recipe: `{recipe['name']}` (scheme `{recipe.get('scheme')}`)",
              f"- context: {manifest['runtime'].get('max_context')} tokens",
              f"- stop tokens: {', '.join(str(i) for i in meta.eos_ids) or 'none'}",
              f"- chat template: {'yes' if meta.chat_template else 'none'}"]
    parity = manifest.get("parity") or {}
    lines += ["", "## Parity with the float model", ""]
    if parity.get("passed") is None:
        lines.append(f"Not checked ({parity.get('skipped') if isinstance(parity.get('skipped'), str) else 'skipped'}).")
    else:
        lines.append(f"{'Passed' if parity['passed'] else 'FAILED'}: top-1 agreement {_g(parity.get('top1_agree'))}, "
                     f"mean KL {_g(parity.get('kl_mean'))}, largest |logit difference| "
                     f"{_g(parity.get('max_abs_logit_diff'))}, greedy tokens matching "
                     f"{parity.get('greedy_match_tokens')}/{parity.get('greedy_total_tokens')} "
                     "(against the float PyTorch model, on edgekit's parity prompts).")
    checked = (manifest.get("standard_runtime") or {})
    if checked:
        lines += ["", "## Checked to load in", "",
                  f"- {checked.get('api')} ({checked.get('runtime')} {checked.get('version')}): "
                  + ("loads; greedy tokens " + ("match edgekit's" if checked.get("tokens_match") else "DIFFER")
                     if checked.get("loaded") else f"does not load: {checked.get('error')}")]
    lines += ["", "## Licence", "", _licence_line(meta)]
    (Path(folder) / CARD).write_text("\n".join(lines) + "\n")


def _g(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _licence_line(meta: ModelMeta) -> str:
    if not meta.license and meta.license_file is None:
        return "The source names no licence; check the original model's terms before you ship it."
    name = meta.license_name or meta.license
    line = f"{name}" + (f" ({meta.license_link})" if meta.license_link else "")
    return line + (f"; its text is in `{LICENSE}`." if meta.license_file else ".")


_RUNTIMES = {"onnx": "ONNX Runtime GenAI", "executorch": "ExecuTorch (XNNPACK)", "gguf": "llama.cpp",
             "coreml": "Core ML"}
# licence ids the Hub knows by name (the rest are "other" with a name and link)
_HUB_LICENSES = {"apache-2.0", "mit", "gemma", "llama3", "llama3.1", "llama3.2", "llama3.3", "cc-by-4.0",
                 "cc-by-sa-4.0", "cc-by-nc-4.0", "bsd-3-clause", "openrail", "creativeml-openrail-m", "gpl-3.0",
                 "agpl-3.0", "lgpl-3.0", "bigscience-openrail-m", "llama2", "afl-3.0"}
