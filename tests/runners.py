"""The runners that speak the protocol (docs/runner-protocol.md), as the tests start them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_runner() -> list[str]:
    return [sys.executable, "-m", "edgekit.runtime"]


def runner_env() -> dict[str, str]:
    """The environment a runner starts in: this checkout's edgekit first on the path."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}
