"""This machine: the runner runs in a fresh subprocess of this Python, on the artifact in place."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator
from pathlib import Path

from edgekit.devices import DeviceProfile
from edgekit.devices.process import run_text, stream_lines


class Transport:
    def __init__(self, profile: DeviceProfile):
        self.profile = profile

    def push(self, local_dir: Path, files: list[dict]) -> str:
        return str(Path(local_dir).resolve())  # nothing to copy

    def runner(self) -> list[str]:
        return [sys.executable, "-m", "edgekit.runtime"]

    def run(self, argv: list[str], stdin: bytes, timeout: float) -> Iterator[str]:
        return stream_lines(argv, stdin, timeout)

    def info(self) -> dict:
        return {"transport": "local", "host": platform.node()}

    def check(self) -> dict:
        from edgekit.devices.remote import CHECK_SCRIPT, parse_json_line

        return parse_json_line(run_text([sys.executable, "-c", CHECK_SCRIPT], timeout=30), sys.executable)
