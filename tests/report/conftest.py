from __future__ import annotations

import json

import pytest

from edgekit.profile.metrics import metric


@pytest.fixture
def make_result():
    """A result dict as `edgekit profile` writes it, with the given metric values."""

    def make(recipe: str, target: str = "onnx", device: str = "local", complete: bool = True,
             parity: bool | None = True, **values) -> dict:
        return {
            "schema": 1, "complete": complete, "error": None if complete else f"device {device}: load: it broke",
            "artifact": {"model": "builtin:tiny", "target": target, "recipe": recipe, "name": recipe,
                         "parity_passed": parity},
            "device": {"name": device},
            "metrics": {name: metric(name, [v]) for name, v in values.items()},
        }

    return make


@pytest.fixture
def write_results():
    """Write results as a folder of result files (plus a JSON file that is not a result)."""

    def write(folder, *results):
        folder.mkdir()
        for i, r in enumerate(results):
            (folder / f"{i}.json").write_text(json.dumps(r))
        (folder / "notes.json").write_text('{"not": "a result"}')  # other JSON in a results folder is ignored
        return folder

    return write
