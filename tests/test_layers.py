"""The package's layers: every import (module-level or inside a function) points down. Units are the
top-level modules and packages of ``edgekit``; LAYERS orders them bottom to top, and a unit may import
its own layer's units (without a cycle) and those of the layers below, never one above."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgekit"

LAYERS = [
    # core: errors, configuration, files, typed results and manifest, the environment's versions
    {"errors", "jsonfile", "config", "data", "core", "environment"},
    # what the stages share: recipes, sources, artifacts, the runtime (no edgekit import: it runs on devices)
    {"recipes", "calibration", "builtins", "gguf_source", "model_meta", "synthetic", "source", "artifact", "output",
     "executor", "runtime"},
    # stages: convert, check parity, run, reach devices, measure
    {"targets", "parity", "shipping", "export", "generate", "inspection", "devices", "profile"},
    # orchestration: reports over results, sweeps and the CI check
    {"report", "sweep", "check", "speed_gates"},
    # the command line
    {"cli", "__main__", "__init__"},
]


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    known = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").is_file()}
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                     *([base] if base else [])])
                found.update([base, *(f"{base}.{a.name}" for a in node.names)])
        mine = _unit(module)
        edges.setdefault(mine, set()).update(
            u for name in found if name.startswith("edgekit.") and (u := _unit(name)) in known and u != mine)
    return edges


def test_every_unit_has_a_layer():
    placed = set().union(*LAYERS)
    assert set(_imports()) <= placed, sorted(set(_imports()) - placed)


def test_imports_point_down_and_have_no_cycle():
    level = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    edges = _imports()
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if level[b] > level[a])
    assert not upward, upward
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError on a cycle


def test_the_runtime_imports_nothing_of_edgekit():
    """It is what a device runs: no torch, no edgekit above it."""
    assert not _imports().get("runtime")
