"""Resolve a model argument (builtin name, local folder, GGUF file or hub id) to a checked local folder.

Everything downstream (the exporters and the PyTorch reference) loads the model with
``from_pretrained`` on the folder this module returns, so a hub id, a local folder and a GGUF file
(converted once into the cache by ``edgekit.gguf_source``) take the same path. Checks done here,
before any heavy work: the folder exists and has a config, the architecture is one edgekit
supports, the weights are safetensors (pickle only with consent) and every safetensors file is whole.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.files import file_sha256
from edgekit.errors import EdgekitError, first_line
from edgekit.gguf_source import GGUFInfo

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.jinja"]


@dataclass(frozen=True)
class ModelSource:
    """A model ready to load: where it came from and the local folder holding it."""

    spec: str  # what the user wrote: builtin:tiny, a path or a hub id
    path: Path  # local folder with config.json and weights
    model_type: str
    revision: str | None  # hub commit, when the model came from the hub
    content_sha256: str  # hash over config and weight files
    trust_remote_code: bool = False
    allow_pickle: bool = False
    gguf: GGUFInfo | None = None  # the GGUF file the folder was converted from, if any

    def config(self) -> dict:
        """The model's config.json."""
        return _read_config(self.path)

    def as_dict(self) -> dict:
        out = {
            "model": self.spec,
            "path": str(self.path),
            "model_type": self.model_type,
            "revision": self.revision,
            "content_sha256": self.content_sha256,
        }
        if self.gguf is not None:
            out["gguf"] = self.gguf.as_dict()
        if self.allow_pickle:  # the consent, kept: a profile's reference loads the same pickle weights
            out["allow_pickle"] = True
        return out


def is_gguf(path: Path) -> bool:
    """Whether ``path`` is a GGUF file (by its magic bytes)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def resolve(
    spec: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    supported: tuple[str, ...] = (),
    gguf_file: str | None = None,
    on_stage: Callable[[str], None] = lambda name: None,
    refusal: Callable[[dict], str | None] | None = None,
) -> ModelSource:
    """Find ``spec`` locally (downloading a hub id through the HF cache, converting a GGUF file once
    into the cache) and check it: ``refusal(config)``, where given, says in one line why the target
    cannot take this model (None: it can); otherwise a model type outside ``supported`` is refused."""
    from edgekit import builtins, gguf_source

    hub_revision = None
    local = spec.startswith("builtin:") or _looks_like_path(spec)
    if revision and local:
        raise EdgekitError("--revision applies to hub ids, not to builtin models or local folders")
    if gguf_file and spec.startswith("builtin:"):
        raise EdgekitError("--gguf-file applies to hub ids and local folders, not to builtin models")
    gguf_path = None
    if spec.startswith("builtin:"):
        path = builtins.get(spec.removeprefix("builtin:")).path()
        if path.is_file():
            gguf_path = path
    elif _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise EdgekitError(f"model not found: {spec}")
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise EdgekitError("a model is a folder with config.json and weights, or a .gguf file; "
                                   f"got the file {spec}")
            if gguf_file:
                raise EdgekitError("--gguf-file names a file inside a folder or hub repo; the model is already a file")
            gguf_path = path
        else:
            gguf_path = _gguf_in_folder(path, gguf_file)
    elif gguf_file:
        gguf_path, hub_revision = _download_file(spec, gguf_file, revision)
    else:
        path, hub_revision = _download(spec, revision, trust_remote_code, allow_pickle)

    gguf = None
    if gguf_path is not None:
        path, gguf = gguf_source.convert(  # a file of an architecture the target cannot take: refused unconverted
            gguf_path, label=gguf_file or gguf_path.name, on_stage=on_stage,
            accept=lambda model_type: check_supported(spec, {"model_type": model_type}, supported))

    config = _read_config(path)
    model_type = config.get("model_type", "")
    if config.get("auto_map") and not trust_remote_code:
        raise EdgekitError(f"{spec} ships its own model code; pass --trust-remote-code if you trust it")
    check_config(config, path / "config.json", spec)
    _read_config(path, "generation_config.json", required=False)  # what transformers and the exporters read too
    check_supported(spec, config, supported, refusal)
    weights = _check_weights(path, allow_pickle)
    return ModelSource(
        spec=spec,
        path=path.resolve(),
        model_type=model_type,
        revision=hub_revision,
        content_sha256=_content_hash(path, weights),
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        gguf=gguf,
    )


def check_supported(spec: str, config: dict, supported=(), refusal: Callable[[dict], str | None] | None = None) -> None:
    """A target's word on a model (its ``config``): ``refusal(config)``, where given, says in one line
    why the target cannot take it (None: it can); otherwise a model type outside ``supported`` is refused."""
    why = refusal(config) if refusal else None
    if why:
        raise EdgekitError(why)
    model_type = config.get("model_type", "")
    if supported and model_type not in supported:
        raise EdgekitError(
            f"unsupported architecture '{model_type or '?'}' in {spec}; supported: {', '.join(sorted(supported))}"
        )


# the config.json fields (or their GPT-2 names) whose numbers edgekit and transformers build the model
# from, each checked against its range in edgekit.config.NUMBERS; the optional ones may be null
_MODEL_NUMBERS = {"num_hidden_layers": ("n_layer",), "hidden_size": ("n_embd",), "intermediate_size": ("n_inner",),
                  "num_attention_heads": ("n_head",), "num_key_value_heads": (), "head_dim": (), "vocab_size": (),
                  "max_position_embeddings": ("n_positions",)}
_OPTIONAL = ("intermediate_size", "n_inner", "num_key_value_heads", "head_dim")  # null: transformers' default


def check_config(config: dict, file: Path, spec: str) -> None:
    """A model's config.json, before anything loads it: a model type transformers knows (or the
    model's own code), and every size in its range, the heads dividing what they split; each error
    names the field (PyTorch's words on a bad size come seconds later and name none)."""
    model_type = config.get("model_type", "")
    if not isinstance(model_type, str):
        raise EdgekitError(f"{file}: 'model_type' must be a string, got {model_type!r}")
    known = known_model_types()
    if model_type and known and model_type not in known and not config.get("auto_map"):
        raise EdgekitError(f"unsupported architecture '{model_type}' in {spec}: no model type transformers knows "
                           f"(config.json's model_type)")
    text = config.get("text_config")
    fields = {**config, **text} if isinstance(text, dict) else config  # a multimodal checkpoint's decoder
    from edgekit.config import NUMBERS

    given = {}
    for name, aliases in _MODEL_NUMBERS.items():
        for key in (name, *aliases):
            if key in fields and not (fields[key] is None and key in _OPTIONAL):
                given[name] = (key, NUMBERS[name].check(fields[key], f"{file}: '{key}'"))
    heads, kv, hidden = (given.get(k) for k in ("num_attention_heads", "num_key_value_heads", "hidden_size"))
    if heads and kv and heads[1] % kv[1]:
        raise EdgekitError(f"{file}: '{kv[0]}' {kv[1]} does not divide '{heads[0]}' {heads[1]}")
    if heads and hidden and "head_dim" not in given and hidden[1] % heads[1]:
        raise EdgekitError(f"{file}: '{heads[0]}' {heads[1]} does not divide '{hidden[0]}' {hidden[1]} "
                           "(and no 'head_dim' is given)")


@functools.cache
def known_model_types() -> frozenset[str]:
    """The model types transformers knows, read from its source (importing it takes seconds and torch):
    the keys of ``CONFIG_MAPPING_NAMES``. Empty where that cannot be read (nothing is refused then)."""
    import ast
    import importlib.util

    try:
        origin = importlib.util.find_spec("transformers").origin
        tree = ast.parse((Path(origin).parent / "models" / "auto" / "configuration_auto.py").read_text())
    except (AttributeError, ImportError, OSError, SyntaxError, ValueError):
        return frozenset()
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) \
            else None
        if getattr(target, "id", None) == "CONFIG_MAPPING_NAMES" and node.value is not None:
            return frozenset(e.elts[0].value for e in ast.walk(node.value) if isinstance(e, ast.Tuple)
                             and len(e.elts) == 2 and isinstance(e.elts[0], ast.Constant))
    return frozenset()


def _gguf_in_folder(folder: Path, name: str | None) -> Path | None:
    """The GGUF file a folder stands for: ``name`` in it, else its only .gguf when it has no config.json."""
    if name:
        path = folder / name
        if not path.is_file():
            raise EdgekitError(f"--gguf-file {name}: no such file in {folder}")
        return path
    if (folder / "config.json").is_file():
        return None
    ggufs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(ggufs) > 1:
        raise EdgekitError(
            f"{folder} holds {len(ggufs)} GGUF files "
            f"({', '.join(p.name for p in ggufs[:4])}{', ...' if len(ggufs) > 4 else ''}); "
            "name one with --gguf-file"
        )
    return ggufs[0] if ggufs else None


def local_path(spec: str) -> Path | None:
    """The file or folder a model argument names on this machine, as given (None: a builtin or a hub id)."""
    if spec.startswith("builtin:") or not _looks_like_path(spec):
        return None
    return Path(spec).expanduser()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or Path(spec).exists() or spec.count("/") > 1


@contextmanager
def _hub_errors(repo_id: str, revision: str | None, what: str | None = None):
    """The hub client's errors as one line each; ``what``: the one file asked for (None: the snapshot)."""
    from huggingface_hub.errors import (
        EntryNotFoundError, HFValidationError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except HFValidationError:
        raise EdgekitError(f"'{repo_id}' is neither a local model folder nor a valid hub id (org/name)") from None
    except RepositoryNotFoundError:
        raise EdgekitError(f"model '{repo_id}' not found on the hub "
                           "(or it is private: log in with `hf auth login`)") from None
    except RevisionNotFoundError:
        raise EdgekitError(f"revision '{revision}' not found for {repo_id}") from None
    except LocalEntryNotFoundError:  # before its parent EntryNotFoundError, whose words would be "no file None"
        fetched = "as a hub id it cannot be downloaded" if what is None else f"{what} cannot be downloaded from the hub"
        raise EdgekitError(f"'{repo_id}' is not a local folder, and {fetched} "
                           "(hub unreachable, not in the HF cache)") from None
    except EntryNotFoundError:
        raise EdgekitError(f"{repo_id} has no file {what}" if what else f"{repo_id} has none of the files edgekit "
                           "reads (config.json, *.safetensors)") from None
    except (HfHubHTTPError, OSError) as e:
        raise EdgekitError(f"cannot download {what + ' of ' if what else ''}'{repo_id}': {first_line(e)}") from None


def _download(repo_id: str, revision: str | None, trust_remote_code: bool, allow_pickle: bool) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    patterns = list(_HUB_PATTERNS)
    if trust_remote_code:
        patterns.append("*.py")
    if allow_pickle:
        patterns += [f"*{s}" for s in PICKLE_SUFFIXES]
    with _hub_errors(repo_id, revision):
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    return folder, folder.name  # snapshot folders are named after the commit hash


def _download_file(repo_id: str, name: str, revision: str | None) -> tuple[Path, str | None]:
    """One GGUF file of a hub repo, through the HF cache; and the commit it came from."""
    from huggingface_hub import hf_hub_download

    if not name.lower().endswith(".gguf"):
        raise EdgekitError(f"--gguf-file must name a .gguf file, got {name}")
    with _hub_errors(repo_id, revision, name):
        path = Path(hf_hub_download(repo_id, name, revision=revision))
    commit = path.parent.name if path.parent.parent.name == "snapshots" else None
    return path, commit


def _read_config(path: Path, name: str = "config.json", required: bool = True) -> dict:
    """The folder's ``name``, a JSON object (where not ``required``: empty where missing)."""
    cfg = path / name
    if not required and not cfg.exists():
        return {}
    if not cfg.is_file():
        raise EdgekitError(f"{path} has no config.json; is it a Hugging Face model folder?" if required
                           else f"{cfg} is not a file")
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{cfg} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise EdgekitError(f"{cfg} is not a model's {name} (a JSON object): it holds a {type(config).__name__}")
    return config


def _check_weights(path: Path, allow_pickle: bool) -> list[Path]:
    safetensors = sorted(path.glob("*.safetensors"))
    pickles = sorted(p for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if safetensors:
        for f in safetensors:
            check_safetensors(f)
        return safetensors
    if pickles:
        if not allow_pickle:
            raise EdgekitError(
                f"{path} has only pickle weights ({pickles[0].name}), which can run arbitrary code when loaded; "
                "pass --allow-pickle (in a sweep or check config: allow_pickle = true) if you trust the source"
            )
        return pickles
    raise EdgekitError(f"{path} has no weights (*.safetensors)")


def check_safetensors(path: Path) -> None:
    """Cheap structural check: a readable header whose tensors exactly fill the file."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n <= 0 or 8 + n > size:
                raise ValueError("header length exceeds file size")
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"corrupt weights file {path.name}: {first_line(e)}") from None
    if 8 + n + end != size:
        raise EdgekitError(
            f"truncated or corrupt weights file {path.name}: header describes {8 + n + end} bytes, file has {size}"
        )


def _content_hash(path: Path, weights: list[Path]) -> str:
    h = hashlib.sha256()
    for f in [path / "config.json", *weights]:
        h.update(f.name.encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()
