"""A GGUF checkpoint as a model source: converted once into an ordinary Hugging Face folder in the cache.

Many users hold their models as GGUF files (Ollama, LM Studio, the hub's GGUF repos). transformers
reads them (``from_pretrained(folder, gguf_file=name)``), dequantizing every tensor to float32 and
rebuilding the tokenizer from the file's vocabulary. edgekit does that once per file content and
saves the result as safetensors under ``<cache>/gguf/<sha256>/``, so every stage downstream (the
exporters, the parity and accuracy reference) sees a plain model folder. What the file was is kept
beside it (``gguf.json``): its name, sha256, llama.cpp file type and tensor types; the manifest's
``source.gguf`` records it, and an export says when the reference is itself a quantized model.

The tokenizer is the file's as llama.cpp reads it: transformers' rebuild is kept for byte-level BPE
(``gpt2``) vocabularies, and replaced for SentencePiece (``llama``) ones, which it turns into a Unigram
model for some architectures (Gemma) where llama.cpp runs SentencePiece-BPE (see ``_sentencepiece_bpe``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from edgekit.errors import EdgekitError, first_line

INFO_FILE = "gguf.json"
_FLOAT_TYPES = ("ALL_F32", "MOSTLY_F16", "MOSTLY_BF16")
_FORMAT = 6  # bump when the conversion changes, so older cache entries are made again


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF source was: the parity reference is its dequantized weights."""

    file: str  # the file's name (or the path the user gave)
    sha256: str
    file_type: str  # llama.cpp's general.file_type, e.g. MOSTLY_Q4_1
    tensor_types: dict[str, int]  # tensor type -> count, e.g. {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    architecture: str  # general.architecture

    @property
    def quantized(self) -> bool:
        return self.file_type not in _FLOAT_TYPES or any(t not in ("F32", "F16", "BF16") for t in self.tensor_types)

    def as_dict(self) -> dict:
        return {**asdict(self), "quantized": self.quantized}


def convert(gguf_path: Path, *, label: str | None = None, on_stage: Callable[[str], None] = lambda s: None,
            accept: Callable[[str], None] = lambda model_type: None) -> tuple[Path, GGUFInfo]:
    """The cached Hugging Face folder made from ``gguf_path`` (made now if missing) and what the file was.
    ``accept(model_type)``: raises where the model type the file's architecture becomes cannot be taken,
    before anything is loaded or converted (only the file's metadata is read)."""
    from edgekit.core.files import file_sha256
    from edgekit.environment import cache_error, cache_folder
    from edgekit.output import no_room
    from edgekit.runtime.gguf_header import check as check_header

    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise EdgekitError(f"GGUF file not found: {gguf_path}")
    root = cache_folder("gguf")  # a cache that cannot be written is said before the file is read
    sha = file_sha256(gguf_path)
    folder = root / f"{sha[:32]}-v{_FORMAT}"
    info_file = folder / INFO_FILE
    if info_file.is_file() and (folder / "config.json").is_file():
        kept = json.loads(info_file.read_text())
        info = GGUFInfo(**{k: v for k, v in kept.items() if k in GGUFInfo.__dataclass_fields__})
        return folder, replace(info, file=label or gguf_path.name)  # the same content under this name
    try:  # a crafted file's hyper-parameters (100000 layers) would have transformers build that model
        check_header(gguf_path)
    except (ValueError, OSError) as e:
        raise EdgekitError(f"{gguf_path} is not a readable GGUF file: {first_line(e)}") from None
    fields, info = _read_info(gguf_path, sha, label or gguf_path.name)
    accept(model_type(info.architecture))
    on_stage(f"convert {info.file_type.removeprefix('MOSTLY_')} GGUF")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as e:  # a read-only cache
        raise cache_error(folder, e.strerror or str(e)) from None
    try:
        _write_folder(gguf_path, tmp, info, fields)
        # the file's own general.* and tokenizer.* keys travel with every artifact made from it (model_meta)
        (tmp / INFO_FILE).write_text(json.dumps({**info.as_dict(), "metadata": metadata(fields)}, indent=2,
                                                ensure_ascii=False) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # made meanwhile by another process (or a stale entry): keep the complete one
            if not (folder / INFO_FILE).is_file():
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(tmp, folder)
    except Exception as e:
        if no_room(e):  # a full disk or quota, in whatever form the writer gives it
            raise cache_error(folder, no_room(e)) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, info


# llama.cpp architectures that transformers loads as another HF model type (its GGUF loader's renames)
_MODEL_TYPES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gemma3": "gemma3_text", "command-r": "cohere"}


def model_type(architecture: str) -> str:
    """The HF model type transformers makes of a GGUF file of llama.cpp's ``architecture``."""
    return _MODEL_TYPES.get(architecture, architecture)


def _read_info(path: Path, sha: str, label: str) -> tuple[dict, GGUFInfo]:
    """The file's metadata fields (read once: a 262k-token vocabulary takes the reader a while) and what it is."""
    try:
        from gguf import GGUFReader, LlamaFileType
    except ImportError:
        raise EdgekitError("GGUF sources need the gguf package: bash scripts/setup.sh installs it") from None
    try:
        reader = GGUFReader(str(path))
    except Exception as e:  # the reader's own words: bad magic, truncated, unknown version
        raise EdgekitError(f"{path} is not a readable GGUF file: "
                           f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None

    arch = _field(reader.fields, "general.architecture") or "?"
    ftype = _field(reader.fields, "general.file_type")
    try:
        file_type = LlamaFileType(int(ftype)).name if ftype is not None else "unknown"
    except ValueError:
        file_type = f"type {int(ftype)}"
    types = Counter(t.tensor_type.name for t in reader.tensors)
    return reader.fields, GGUFInfo(label, sha, file_type, dict(types.most_common()), arch)


# the vocabulary itself: tokenizer.json holds it; the rest of tokenizer.* and general.* is metadata
VOCABULARY_KEYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                    "tokenizer.ggml.merges", "tokenizer.ggml.precompiled_charsmap")


def metadata(fields: dict) -> dict:
    """The file's ``general.*`` and ``tokenizer.*`` keys but the vocabulary (the chat template, the name,
    the licence, the special token ids, the pre-tokenizer), as JSON values."""
    out = {}
    for key in fields:
        if key.startswith(("general.", "tokenizer.")) and key not in VOCABULARY_KEYS:
            value = _field(fields, key)
            if value is not None and not (isinstance(value, list) and len(value) > 64):
                out[key] = value
    return out


def _field(fields: dict, key: str):
    """A metadata value (a string, number, bool, or a list for arrays), None where the file lacks it."""
    f = fields.get(key)
    return f.contents() if f is not None and f.data else None


def _write_folder(gguf_path: Path, folder: Path, info: GGUFInfo, fields: dict) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgekit.environment import quiet_libraries

    quiet_libraries()
    parent, name = str(gguf_path.parent), gguf_path.name
    try:
        with _no_progress_bar():
            model = AutoModelForCausalLM.from_pretrained(parent, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EdgekitError(
            f"transformers cannot load {gguf_path.name} ({info.architecture}, {info.file_type}): {first}"
        ) from None
    model.save_pretrained(folder, safe_serialization=True)
    del model
    try:
        tok = AutoTokenizer.from_pretrained(parent, gguf_file=name)
    except (ValueError, KeyError, OSError) as e:
        raise EdgekitError(f"transformers cannot rebuild the tokenizer of {gguf_path.name}: "
                           f"{str(e).splitlines()[0]}") from None
    tok.save_pretrained(folder)
    _tokenizer_as_the_file_says(fields, folder)
    _tokenizer_config_as_the_file_says(fields, folder)
    # some tokenizer classes keep the GGUF itself as their vocabulary file: not a tokenizer, don't copy it
    size = gguf_path.stat().st_size
    for f in folder.iterdir():
        if f.is_file() and f.stat().st_size == size and f.suffix != ".safetensors":
            f.unlink()


@contextmanager
def _no_progress_bar():
    """transformers' GGUF loader draws its own tqdm bar (not behind its logging switch); our stage display
    already says what is happening."""
    from transformers import modeling_gguf_pytorch_utils as loader

    original = loader.tqdm
    loader.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        loader.tqdm = original


def _tokenizer_as_the_file_says(fields: dict, folder: Path) -> None:
    """Make ``folder/tokenizer.json`` (transformers' rebuild) tokenize as llama.cpp does with the file."""
    sentencepiece = _field(fields, "tokenizer.ggml.model") == "llama"
    if sentencepiece:
        _sentencepiece_bpe(fields).save(str(folder / "tokenizer.json"))
    else:
        _byte_level_bpe(folder / "tokenizer.json", _BYTE_LEVEL_PRE.get(_field(fields, "tokenizer.ggml.pre")))
    # llama.cpp's defaults where the file does not say: BOS and no EOS for SentencePiece vocabularies
    _special_tokens_as_the_file_says(fields, folder, defaults=(True, False) if sentencepiece else None)


# llama.cpp's pre-tokenizer names (``tokenizer.ggml.pre``) of byte-level BPE vocabularies whose splitting
# transformers' rebuild drops (it gives every gpt2 vocabulary GPT-2's ByteLevel split), as the
# ``tokenizers`` pre-tokenizers that split alike: SmolLM's splits every digit apart first.
_BYTE_LEVEL_PRE = {
    "smollm": [{"type": "Digits", "individual_digits": True},
               {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}],
}


def _byte_level_bpe(path: Path, parts: list[dict] | None) -> None:
    """A byte-level BPE vocabulary (``gpt2``) as such a tokenizer.json is written by its own authors:
    transformers' rebuild gives it SentencePiece's trappings (an empty normalizer sequence, byte
    fallback, a ``▁``-replacing decoder), which change no id or text (every byte is a token of the
    vocabulary) but which other runtimes' tokenizer libraries read as SentencePiece or refuse
    (ONNX Runtime GenAI's encodes most text to -1; ExecuTorch's has no empty normalizer sequence).
    ``parts``: the pre-tokenizers the file's ``tokenizer.ggml.pre`` names, where the rebuild drops them."""
    spec = json.loads(path.read_text())
    if parts is not None:
        spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": parts}
    if spec.get("normalizer") == {"type": "Sequence", "normalizers": []}:
        spec["normalizer"] = None
    if any(p.get("type") == "ByteLevel" for p in (spec.get("pre_tokenizer") or {}).get("pretokenizers", [])) \
            or (spec.get("pre_tokenizer") or {}).get("type") == "ByteLevel":
        spec["model"]["byte_fallback"] = False
        spec["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    path.write_text(json.dumps(spec, ensure_ascii=False))


def _sentencepiece_bpe(fields: dict):
    """A ``llama``-type vocabulary (SentencePiece: tokens, scores, token types, no merges) as llama.cpp
    tokenizes it (``llm_tokenizer_spm``): a text fragment's spaces become ``▁`` (one is put in front when
    ``tokenizer.ggml.add_space_prefix`` says so, llama.cpp's default), then the adjacent pair whose
    concatenation is the vocabulary token of highest score is merged, again and again, and characters no
    token covers fall back to ``<0xNN>`` byte tokens. That is a ``tokenizers`` BPE whose merges are every
    split of a token into two tokens, ranked by the token's score, over the whole fragment (no
    pre-tokenizer: merges may cross ``▁`` as llama.cpp's do). Control, unknown and user-defined tokens are
    matched in the raw text first, as llama.cpp does (control ones when it parses specials); control and
    unknown ones are special tokens.

    Two differences remain by construction, both absent from SentencePiece vocabularies such as Gemma's
    (distinct scores for normal tokens; every character of a token is a token): llama.cpp breaks a tie
    between equal-scored tokens by their place in the text (leftmost first), a merge list by rank (here:
    token id, then split point); and it can merge a character that is no token with a neighbour, where
    BPE turns the character into bytes first."""
    from gguf import TokenType
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE

    tokens = _field(fields, "tokenizer.ggml.tokens") or []
    scores = _field(fields, "tokenizer.ggml.scores") or [0.0] * len(tokens)  # llama.cpp's defaults
    types = _field(fields, "tokenizer.ggml.token_type") or [TokenType.NORMAL] * len(tokens)
    vocab = {text: i for i, text in enumerate(tokens)}  # a text given twice is its last id, as in llama.cpp
    ranked = []
    for text, i in vocab.items():
        for cut in range(1, len(text)):
            if text[:cut] in vocab and text[cut:] in vocab:
                ranked.append((-scores[i], i, cut))
    ranked.sort()
    merges = [(tokens[i][:cut], tokens[i][cut:]) for _, i, cut in ranked]
    unk = _field(fields, "tokenizer.ggml.unknown_token_id")
    unk_token = tokens[unk] if unk is not None and 0 <= unk < len(tokens) else None
    tok = Tokenizer(BPE(vocab, merges, unk_token=unk_token, byte_fallback=True, fuse_unk=False))

    prefix = _field(fields, "tokenizer.ggml.add_space_prefix")
    prefix = True if prefix is None else bool(prefix)
    escape = normalizers.Replace(" ", "▁")
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), escape]) if prefix else escape
    strip = [decoders.Strip(" ", 1, 0)] if prefix else []
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *strip])
    special, user = {TokenType.CONTROL, TokenType.UNKNOWN}, TokenType.USER_DEFINED
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, k in zip(tokens, types) if k in special and t])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == user and t])
    return tok


def _special_tokens_as_the_file_says(fields: dict, folder: Path, defaults: tuple[bool, bool] | None = None) -> None:
    """Add BOS/EOS exactly as the GGUF's ``tokenizer.ggml.add_bos_token`` / ``add_eos_token`` say (``defaults``
    where it says neither): transformers' rebuilt tokenizer follows its own class defaults instead
    (SmolLM2's says no BOS; LlamaTokenizerFast adds one)."""
    from tokenizers import Tokenizer, processors

    add_bos, add_eos = _field(fields, "tokenizer.ggml.add_bos_token"), _field(fields, "tokenizer.ggml.add_eos_token")
    if add_bos is None and add_eos is None:
        if defaults is None:
            return  # the file does not say: keep what transformers made
        add_bos, add_eos = defaults
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    specials = []
    for flag, key in ((add_bos, "tokenizer.ggml.bos_token_id"), (add_eos, "tokenizer.ggml.eos_token_id")):
        token_id = _field(fields, key)
        specials.append((tok.id_to_token(int(token_id)), int(token_id)) if flag and token_id is not None else None)
    bos, eos = specials
    single = ([f"{bos[0]}:0"] if bos else []) + ["$A:0"] + ([f"{eos[0]}:0"] if eos else [])
    pair = single + ([f"{bos[0]}:1"] if bos else []) + ["$B:1"] + ([f"{eos[0]}:1"] if eos else [])
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair,
                                                       special_tokens=[s for s in specials if s])
    tok.save(str(folder / "tokenizer.json"))
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config.update(add_bos_token=bool(bos), add_eos_token=bool(eos))  # else LlamaTokenizerFast redoes its own on load
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _tokenizer_config_as_the_file_says(fields: dict, folder: Path) -> None:
    """``tokenizer_config.json``'s BOS and EOS texts and the chat template as the file has them:
    transformers' rebuild names SmolLM2's ``<|im_start|>`` as its EOS where the file says ``<|im_end|>``,
    and an app that reads the config would stop at the wrong token."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    for name, key in (("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id"),
                      ("pad_token", "tokenizer.ggml.padding_token_id"),
                      ("unk_token", "tokenizer.ggml.unknown_token_id")):
        token_id = _field(fields, key)
        text = tok.id_to_token(int(token_id)) if token_id is not None else None
        if text is not None:
            config[name] = text
    template = _field(fields, "tokenizer.chat_template")
    if isinstance(template, str):
        jinja = folder / "chat_template.jinja"
        if jinja.is_file():
            jinja.write_text(template)
        else:
            config["chat_template"] = template
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    special_map = folder / "special_tokens_map.json"
    if special_map.is_file():
        mapped = json.loads(special_map.read_text())
        for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
            if name in config and isinstance(config[name], str):
                mapped[name] = config[name]
        special_map.write_text(json.dumps(mapped, indent=2, ensure_ascii=False) + "\n")
