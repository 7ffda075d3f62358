"""Target registry: target name -> module implementing it, imported only when used.

A target module provides:
    SUPPORTED: tuple of HF ``model_type`` names it converts
    export(source, recipe, folder, stage) -> dict   # writes the model files; returns runtime info
The runner side lives in ``edgekit.runtime`` (a backend per target), which needs no torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgekit.errors import EdgekitError
from edgekit.recipes import targets as recipe_targets

MODULES = {
    "onnx": "edgekit.targets.onnx",
    "executorch": "edgekit.targets.executorch",
}


def get(name: str) -> ModuleType:
    if name not in MODULES:
        known = ", ".join(t for t in recipe_targets() if t in MODULES)
        raise EdgekitError(f"unknown target '{name}'; known targets: {known}")
    return importlib.import_module(MODULES[name])
