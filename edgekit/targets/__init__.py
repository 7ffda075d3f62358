"""Target registry: target name -> module implementing it, imported only when used.

A target module provides:
    SUPPORTED: the HF ``model_type`` names it converts (a tuple, or a collection computed when asked)
    export(source, recipe, folder, stage) -> dict   # writes the model files; returns runtime info
    inspect(folder, runtime) -> dict                # what the model file holds (see ``edgekit inspect``)
    refusal(config) -> str | None                   # optional: why it cannot take a model (config.json),
                                                    # one line naming the missing feature; checked before SUPPORTED
The runner side lives in ``edgekit.runtime`` (a backend per target), which needs no torch.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from edgekit.errors import EdgekitError
from edgekit.recipes import targets as recipe_targets

MODULES = {
    "onnx": "edgekit.targets.onnx",
    "executorch": "edgekit.targets.executorch",
    "coreml": "edgekit.targets.coreml",
    "gguf": "edgekit.targets.gguf",
}

# target -> (sys.platform its runtime needs, that system's name, where else to run it)
HOST = {
    "coreml": (
        "darwin",
        "a Mac (macOS 15 or later)",
        "fill in host and user in edgekit/profiles/apple-silicon-mac.yaml, then `edgekit profile {path} --device mac-m2`",
    ),
}


def get(name: str) -> ModuleType:
    if name not in MODULES:
        known = ", ".join(t for t in recipe_targets() if t in MODULES)
        raise EdgekitError(f"unknown target '{name}'; known targets: {known}")
    return importlib.import_module(MODULES[name])


def runs_here(target: str) -> bool:
    """Whether this machine can run artifacts of ``target`` (Core ML's prediction needs macOS)."""
    return target not in HOST or sys.platform == HOST[target][0]


def require_host(target: str, path) -> None:
    """A one-line error when artifacts of ``target`` cannot run on this machine, saying where they can."""
    if not runs_here(target):
        _, system, elsewhere = HOST[target]
        raise EdgekitError(
            f"{path} is a {target} artifact: running it needs {system}, not {sys.platform}; "
            f"to profile it on a Mac over ssh, {elsewhere.format(path=path)}"
        )
