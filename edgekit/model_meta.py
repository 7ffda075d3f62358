"""What a runtime needs to know of a model beside its weights, read once from its source: the special
token ids (BOS, every id generation stops at: the EOS and the end-of-turn tokens), the chat template,
the name, the licence and the base model.

Every target writes these into the files its runtime reads (``genai_config.json``, an ExecuTorch
program's metadata methods, a GGUF's ``tokenizer.*``/``general.*`` keys, Core ML's user metadata), and
the export writes the Hugging Face files beside every artifact (``edgekit.shipping``), so that one
reading decides them all. Sources, in order of authority:

- a GGUF source: the file's own ``general.*`` and ``tokenizer.*`` keys (kept in its cache folder's
  ``gguf.json`` as ``metadata``), which are what llama.cpp runs with;
- the model folder: ``generation_config.json`` and ``config.json`` (``eos_token_id``),
  ``tokenizer_config.json`` (``bos_token``, ``eos_token``, ``chat_template``) or ``chat_template.jinja``,
  the model card's front matter (``license``, ``license_name``, ``license_link``, ``base_model``) and a
  ``LICENSE`` file;
- the end-of-turn tokens a chat template closes a turn with, among the texts llama.cpp itself treats
  as end of generation (``<|im_end|>``, ``<end_of_turn>``, ``<|eot_id|>``...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# texts llama.cpp treats as end of generation when the vocabulary has them (llama-vocab.cpp's EOG list)
END_OF_TURN_TEXTS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|endoftext|>",
                     "<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "</s>", "<eos>")
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "LICENCE.md")
# well-known licences by the Hub's id: name and link (what a model card names when the source gives only an id)
KNOWN_LICENSES = {
    "apache-2.0": ("Apache License 2.0", "https://www.apache.org/licenses/LICENSE-2.0"),
    "mit": ("MIT License", "https://opensource.org/license/mit"),
    "gemma": ("Gemma Terms of Use", "https://ai.google.dev/gemma/terms"),
    "llama3.2": ("Llama 3.2 Community License", "https://www.llama.com/llama3_2/license/"),
    "llama3.1": ("Llama 3.1 Community License", "https://www.llama.com/llama3_1/license/"),
    "llama3": ("Meta Llama 3 Community License", "https://www.llama.com/llama3/license/"),
    "qwen": ("Qwen License", "https://huggingface.co/Qwen/Qwen2.5-3B/blob/main/LICENSE"),
}


@dataclass(frozen=True)
class ModelMeta:
    """One model's runtime facts, for every target alike."""

    name: str  # the model's name, as a GGUF's general.name or the folder's / hub id's last part
    bos_id: int | None
    eos_ids: tuple[int, ...]  # every id generation stops at: the model's EOS first, then its end-of-turn ids
    pad_id: int | None
    chat_template: str | None
    license: str | None = None  # the Hub's id ("apache-2.0", "gemma", "other"), lower case
    license_name: str | None = None
    license_link: str | None = None
    license_file: Path | None = None  # the source's licence text, where it has one
    base_model: str | None = None  # the hub id of the model this was made from, where known
    gguf: dict = field(default_factory=dict)  # a GGUF source's general.* and tokenizer.* keys (no vocabulary)

    @property
    def eos_id(self) -> int | None:
        """The EOS a single-EOS format records (the model's own, not an end-of-turn one)."""
        return self.eos_ids[0] if self.eos_ids else None


def json_object(path: Path) -> dict:
    """A JSON file's object: empty where the file is missing, unreadable or not an object (a model's
    configs are read leniently; what matters in them is checked where it is used)."""
    try:
        value = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _ids(value) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _token_text(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value if isinstance(value, str) else None


def chat_template(folder: Path) -> str | None:
    """The folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s (the default
    of a list of named ones), as transformers reads it."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        try:
            return jinja.read_text()
        except (OSError, UnicodeDecodeError):
            return None
    template = json_object(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"),
                        None)
    return template if isinstance(template, str) else None


def front_matter(readme: Path) -> dict:
    """A model card's YAML front matter (empty where there is none or it does not parse)."""
    try:
        text = readme.read_text() if readme.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return {}
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    import yaml

    try:
        value = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return {}
    return value if isinstance(value, dict) else {}


def read(source, tokenizer) -> ModelMeta:
    """``source``'s facts (an ``edgekit.source.ModelSource``); ``tokenizer`` is its ``tokenizers.Tokenizer``
    (the one the artifact ships), used to find the special tokens' ids by their text."""
    folder = Path(source.path)
    config = json_object(folder / "config.json")
    config = {**config, **config.get("text_config", {})} if isinstance(config.get("text_config"), dict) else config
    generation = json_object(folder / "generation_config.json")
    tok_config = json_object(folder / "tokenizer_config.json")
    gguf = _gguf_metadata(folder)
    card = front_matter(folder / "README.md")

    def token_id(text: str | None) -> int | None:
        return tokenizer.token_to_id(text) if text else None

    bos = gguf.get("tokenizer.ggml.bos_token_id")
    if bos is None:
        bos = next(iter(_ids(generation.get("bos_token_id")) or _ids(config.get("bos_token_id"))), None)
    if bos is None:
        bos = token_id(_token_text(tok_config.get("bos_token")))
    eos: list[int] = []
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"):
        eos += _ids(gguf.get(key))
    eos += _ids(generation.get("eos_token_id")) + _ids(config.get("eos_token_id"))
    if not eos:
        eos += [i for i in [token_id(_token_text(tok_config.get("eos_token")))] if i is not None]
    template = gguf.get("tokenizer.chat_template") or chat_template(folder)
    for text in END_OF_TURN_TEXTS:  # a turn's end the template writes is a stop token too
        i = token_id(text)
        if i is not None and template and text in template:
            eos.append(i)
    if not eos:  # neither the config nor the tokenizer says: the usual texts of an EOS
        eos += [i for text in END_OF_TURN_TEXTS if (i := token_id(text)) is not None][:1]
    pad = gguf.get("tokenizer.ggml.padding_token_id")
    if pad is None:
        pad = next(iter(_ids(generation.get("pad_token_id")) or _ids(config.get("pad_token_id"))), None)

    license_id = gguf.get("general.license") or card.get("license")
    license_id = str(license_id).lower() if license_id else None
    known = KNOWN_LICENSES.get(license_id or "", (None, None))
    name = (gguf.get("general.name") or card.get("model_name")
            or (source.spec.rstrip("/").rsplit("/", 1)[-1].removeprefix("builtin:")))
    base = card.get("base_model")
    if isinstance(base, list):
        base = base[0] if base else None
    if base is None and not source.spec.startswith("builtin:") and "/" in source.spec \
            and not Path(source.spec).expanduser().exists():
        base = source.spec  # a hub id
    if base is None and source.spec.startswith("builtin:"):
        from edgekit import builtins

        base = builtins.get(source.spec.removeprefix("builtin:")).base_model
    if base is None:
        base = str(gguf.get("general.base_model.0.repo_url", "")).removeprefix("https://huggingface.co/") or None
    license_file = next((folder / n for n in LICENSE_FILES if (folder / n).is_file()), None)
    return ModelMeta(
        name=str(name), bos_id=bos, eos_ids=tuple(dict.fromkeys(eos)), pad_id=pad,
        chat_template=template,
        license=license_id,
        license_name=gguf.get("general.license.name") or card.get("license_name") or known[0],
        license_link=gguf.get("general.license.link") or card.get("license_link") or known[1],
        license_file=license_file, base_model=base, gguf=gguf,
    )


def _gguf_metadata(folder: Path) -> dict:
    """A GGUF source's metadata keys, as its cache folder keeps them (``edgekit.gguf_source``)."""
    from edgekit.gguf_source import INFO_FILE

    metadata = json_object(folder / INFO_FILE).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


_read: dict[tuple, ModelMeta] = {}


def of(source) -> ModelMeta:
    """``read`` with the source's own fast tokenizer (``tokenizer.json``, else transformers' conversion),
    once per source: every target's exporter and the export's shipping stage ask for the same facts."""
    key = (str(source.path), source.content_sha256)
    if key not in _read:
        folder = Path(source.path)
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=source.trust_remote_code)
            tokenizer = tokenizer.backend_tokenizer
        _read[key] = read(source, tokenizer)
    return _read[key]
