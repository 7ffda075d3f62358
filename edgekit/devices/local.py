"""This machine: the runner runs in a fresh subprocess, on the artifact in place: this Python's
``edgekit.runtime``, or the native runner (built into the cache on first use) where the profile says
``runner: native`` and the build has a backend for the artifact's target."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator
from pathlib import Path

from dataclasses import dataclass

from edgekit.devices import DeviceProfile, TransportConfig
from edgekit.devices.process import DeviceError, run_text, stream_lines


@dataclass(frozen=True)
class Config(TransportConfig):
    """No keys of its own: this machine."""

    def connect(self, profile: DeviceProfile) -> Transport:
        return Transport(profile)

    def refusal(self, profile: DeviceProfile, target, path) -> str | None:
        if profile.runner == "native":  # built now (or found in the cache), before any work
            from edgekit.devices import native
            from edgekit.errors import EdgekitError
            from edgekit.output import note

            try:
                native.build(note=note)
            except EdgekitError as e:
                return f"native runner: {e}"
        return target.refusal_here(path)


class Transport:
    def __init__(self, profile: DeviceProfile):
        self.profile = profile

    def push(self, local_dir: Path, files: list[dict]) -> str:
        return str(Path(local_dir).resolve())  # nothing to copy

    def pull(self, remote_dir: str, paths: list[str], local_dir: Path) -> None:
        copy_files(Path(remote_dir), paths, Path(local_dir))

    def runner(self, target: str | None = None) -> list[str]:
        if self.profile.runner == "native" and target is not None:
            from edgekit.devices import native

            build = native.build()
            if target in build.targets:
                return [str(build.binary)]
        return [sys.executable, "-m", "edgekit.runtime"]

    def run(self, argv: list[str], stdin: bytes, timeout: float) -> Iterator[str]:
        return stream_lines(argv, stdin, timeout)

    def info(self) -> dict:
        return {"transport": self.profile.transport, "host": platform.node()}

    def check(self) -> dict:
        from edgekit.devices.remote import CHECK_SCRIPT, check_request, parse_json_line

        out = run_text([sys.executable, "-c", CHECK_SCRIPT], check_request(), timeout=30)
        return parse_json_line(out, sys.executable)


def copy_files(source_dir: Path, paths: list[str], dest_dir: Path) -> None:
    """Copy ``source_dir/path`` to ``dest_dir/path`` on this machine (a file copied onto itself is left)."""
    import shutil

    for path in paths:
        src, dest = source_dir / path, dest_dir / path
        try:
            if dest.exists() and dest.samefile(src):
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        except OSError as e:
            raise DeviceError(f"cannot copy {path}: {e.strerror or e}") from None
