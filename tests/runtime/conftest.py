"""What the runtime tests share: builtin:tiny's GGUF artifacts and the runners that speak the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners import python_runner

GGUF_RECIPES = ("q8_0", "q4_0")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, export_builtin) -> dict[str, Path]:
    """recipe -> folder of builtin:tiny's GGUF artifact (context 256), exported once per session."""
    return {name: art.path for name, art in
            export_builtin(tmp_path_factory.mktemp("tiny-gguf-runners"), "gguf", GGUF_RECIPES).items()}


@pytest.fixture(params=["python", "native"])
def runner(request) -> list[str]:
    """argv of each runner the conformance suite holds to the protocol: the Python one and the native
    one (native/runner, built once per session)."""
    if request.param == "python":
        return python_runner()
    return [str(request.getfixturevalue("native_build").binary)]
