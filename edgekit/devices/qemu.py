"""An emulated arm64 board: the runner runs in an arm64 userland under qemu-aarch64-static (user mode).

Accuracy figures come from the runtimes' ARM kernels (NEON, dotprod, ...): the point of this device.
Timings and memory are the emulator's, so results mark them ``emulated`` (see
``edgekit.profile.metrics.EMULATED``): kept in the JSON, never shown or compared as a device's.

The userland is built once by ``setup`` (``edgekit devices setup NAME``; see ``edgekit.devices.userland``).
The device is this machine seen through qemu: artifacts are read where they are, the runner package is
installed in the userland folder by the shared machinery of ``remote.RemoteTransport`` (its shell is a
local ``/bin/sh``), and its python is the userland's ``python`` (qemu running Debian's arm64 python).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.devices import DeviceProfile, TransportConfig
from edgekit.devices import userland
from edgekit.devices.local import copy_files
from edgekit.devices.process import DeviceError
from edgekit.devices.remote import RemoteTransport
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Config(TransportConfig):
    userland: str | None = None  # the arm64 userland folder (default: see edgekit.devices.userland)
    mirror: str | None = None  # the Debian mirror the userland's packages come from
    cpu: str | None = None  # the CPU qemu emulates (`qemu-aarch64-static -cpu help`; default: max, every extension)

    emulated = True

    def connect(self, profile: DeviceProfile) -> Transport:
        return Transport(profile)

    def setup(self, profile: DeviceProfile, note: Callable[[str], None], force: bool) -> dict:
        return setup(profile, note, force)

    def refusal(self, profile: DeviceProfile, target, path) -> str | None:
        """The userland runs the targets it has a runtime for (none before it is set up: connecting says so)."""
        found = userland.read(folder(profile))
        runtimes = (found or {}).get("runtimes", {})
        if found is None or target.name in runtimes:
            return None
        why = target.arm64_wheels or "no aarch64 runtime"
        return f"runs {', '.join(runtimes)} artifacts only, not {target.name} ({why})"


def folder(profile: DeviceProfile) -> Path:
    """The profile's userland folder: its ``userland`` key, else this install's default."""
    return Path(profile.userland).expanduser() if profile.userland else userland.default_folder()


def setup(profile: DeviceProfile, note: Callable[[str], None], force: bool = False) -> dict:
    """Build the profile's userland unless it is there already (``force``: build it again)."""
    from edgekit.output import Read, Write, check_paths

    where = folder(profile)
    found = userland.read(where)
    if found and not force:
        note(f"{profile.name}: the userland in {where} is set up already (--force builds it again)")
        return {**found, "folder": str(where), "built": False}
    # the rule for what a command writes (edgekit.output.check_paths), and a build replaces only a userland
    check_paths([Read("the device profile", profile.source)],
                [Write("the userland folder", where, folder=True, replaces=True)])
    if found is None and where.is_dir() and any(where.iterdir()):
        raise EdgekitError(f"device {profile.name}: its userland folder {where} holds files but no userland "
                           f"({userland.MANIFEST}); a setup replaces only a userland edgekit built: "
                           "empty it yourself or name another `userland:` folder")
    note(f"{profile.name}: building an arm64 userland in {where}")
    manifest = userland.build(where, profile.mirror, note)
    return {**manifest, "folder": str(where), "built": True}


class Transport(RemoteTransport):
    def __init__(self, profile: DeviceProfile):
        where = folder(profile)
        self.manifest = userland.read(where)
        if self.manifest is None:
            raise EdgekitError(f"device {profile.name}: no arm64 userland in {where}; "
                               f"run `{profile.setup_command}` once")
        self.qemu = os.environ.get("EDGEKIT_QEMU") or userland.QEMU
        if not shutil.which(self.qemu):
            raise EdgekitError(f"device {profile.name}: {self.qemu} not found "
                               "(Debian/Ubuntu: apt-get install qemu-user-static)")
        # the shared machinery runs "python" in "workdir": here, the userland's emulated python and folder
        super().__init__(replace(profile, python=str(where / "python"), workdir=str(where)))
        self.device = profile

    def shell(self, command: str) -> list[str]:
        env = [f"QEMU_CPU={self.device.cpu}"] if self.device.cpu else []
        return ["env", *env, "/bin/sh", "-c", command]

    def copy(self, local_dir: Path, paths: list[str], remote_dir: str) -> None:
        for path in paths:
            dest = Path(remote_dir, path)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(local_dir, path), dest)
            except OSError as e:
                raise DeviceError(f"cannot copy {path}: {e.strerror or e}") from None

    def push(self, local_dir: Path, files: list[dict]) -> str:
        """Nothing to copy: the emulated python reads this machine's files."""
        return str(Path(local_dir).resolve())

    def pull(self, remote_dir: str, paths: list[str], local_dir: Path) -> None:
        copy_files(Path(remote_dir), paths, Path(local_dir))

    def explain(self, error: DeviceError) -> DeviceError:
        if "exited with code 127" in str(error):
            return DeviceError(f"{self.qemu} or the userland's python is missing "
                               f"(run `{self.device.setup_command} --force`)")
        return super().explain(error)

    def info(self) -> dict:
        return {"transport": self.device.transport, "emulated": True, "qemu": _qemu_version(self.qemu),
                "cpu": self.device.cpu or "max",
                "userland": self.profile.workdir}


def _qemu_version(qemu: str) -> str | None:
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = out.split()
    return words[2] if len(words) > 2 and words[1] == "version" else None
