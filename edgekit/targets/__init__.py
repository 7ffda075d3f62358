"""Targets: one ``Target`` spec each, registered under the entry-point group ``edgekit.targets``
(edgekit's own in its pyproject.toml, a plug-in's in its own), imported only when used.

A target is one module (the exporter, which also holds its ``Target``), one recipe file, one runtime
backend and one registry entry. The exporter module provides:
    SUPPORTED: the HF ``model_type`` names it converts (derived from ``edgekit.core.architectures``)
    export(source, recipe, folder, stage) -> dict   # writes the model files; returns runtime info
    inspect(folder, runtime) -> dict                # what the model file holds (see ``edgekit inspect``)
    refusal(config) -> str | None                   # optional: why it cannot take a model (config.json),
                                                    # one line naming the missing feature; checked before SUPPORTED
    standard_check(folder, prompt, expected) -> dict   # optional: load the artifact in its runtime's own
                                                    # LLM API (what an app ships with), greedily generate
                                                    # len(expected) tokens after the token ids ``prompt``;
                                                    # returns a ``StandardCheck`` record (see export.py)
The runner side lives in the backend module (``edgekit.runtime``'s for the built-ins), which needs no torch.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, replace
from types import ModuleType

from edgekit.core import plugins

RUNTIME_PACKAGE = "edgekit.runtime"  # the runner package: copied to devices as it is
DEFAULT = "onnx"  # the target `edgekit export` uses when none is named


@dataclass(frozen=True)
class Target:
    """Everything edgekit knows of a target, in one place."""

    exporter: str  # the module that exports (see above)
    backend: str  # the runtime backend module: open_artifact(folder, runtime, threads) -> LanguageModel
    toolchain: tuple[str, ...] = ()  # distributions the exporter uses: their versions go in every manifest
    runtime: tuple[str, ...] = ()  # distributions the backend imports besides numpy: asked of every device
    system: str | None = None  # the sys.platform its runtime needs (None: any)
    system_name: str = ""  # that system, in words
    elsewhere: str = ""  # where else to run it, with ``{path}`` for the artifact
    arm64_wheels: str | None = None  # why its runtime cannot come from PyPI's Linux aarch64 wheels (None: it can)
    recipes: str | None = None  # its recipe file, "package:file.toml"; None: edgekit/recipes/<name>.toml
    # "module:function", function(folder, runtime): loads the artifact where a native abort is one line
    # (a child process), before a command loads it in its own process (`edgekit run`); None: not needed
    preflight: str | None = None
    name: str = ""  # its name: the entry point's

    def named(self, name: str) -> Target:
        return replace(self, name=name)

    def module(self) -> ModuleType:
        return importlib.import_module(self.exporter)

    @property
    def runner_backend(self) -> str:
        """The backend as the runner imports it: relative inside edgekit's runner package (which a
        device holds under another name), absolute elsewhere."""
        prefix = RUNTIME_PACKAGE + "."
        return self.backend[len(RUNTIME_PACKAGE):] if self.backend.startswith(prefix) else self.backend

    def check_loads(self, folder, runtime) -> None:
        """Run the target's ``preflight`` (if any) on an artifact."""
        if self.preflight:
            module, function = self.preflight.split(":")
            getattr(importlib.import_module(module), function)(folder, runtime)

    def runs_here(self) -> bool:
        """Whether this machine can run artifacts of this target (Core ML's prediction needs macOS)."""
        return self.system is None or sys.platform == self.system

    def refusal_here(self, path) -> str | None:
        """Why this machine cannot run the artifact at ``path`` of this target, saying where it can."""
        if self.runs_here():
            return None
        return (f"{path} is a {self.name} artifact: running it needs {self.system_name}, not {sys.platform}"
                + (f"; {self.elsewhere.format(path=path)}" if self.elsewhere else ""))


def names() -> tuple[str, ...]:
    """Every registered target, without importing any."""
    return plugins.names(plugins.TARGETS)


def spec(name: str) -> Target:
    if name not in names():
        from edgekit.errors import EdgekitError

        raise EdgekitError(f"unknown target '{name}'; known targets: {', '.join(names())}")
    return plugins.load(plugins.TARGETS, name)


def specs() -> dict[str, Target]:
    return {name: spec(name) for name in names()}


def get(name: str) -> ModuleType:
    """The exporter module of target ``name``."""
    return spec(name).module()


def runtime_distributions() -> tuple[str, ...]:
    """The distributions any target's runner imports besides numpy (what a device is asked about)."""
    return tuple(dict.fromkeys(d for s in specs().values() for d in s.runtime))


def runs_here(target: str) -> bool:
    """Whether this machine can run artifacts of ``target``."""
    return spec(target).runs_here()


def require_host(target: str, path) -> None:
    """A one-line error when artifacts of ``target`` cannot run on this machine, saying where they can."""
    from edgekit.errors import EdgekitError

    why = spec(target).refusal_here(path)
    if why:
        raise EdgekitError(why)
