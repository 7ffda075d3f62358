"""An Android phone over adb: ``adb push`` copies, ``adb shell`` runs (stdin passes through with the
shell protocol of adb 1.0.35+ / Android 7+). The phone needs a python the shell user can run, with
numpy and the target's runtime (e.g. Termux's, on a rooted phone)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from dataclasses import dataclass

from edgekit.devices import DeviceProfile, TransportConfig
from edgekit.devices.process import DeviceError, run_text
from edgekit.devices.remote import RemoteTransport, exit_status

_UNREACHABLE = ("not found", "no devices", "offline", "unauthorized", "no emulators", "closed")


@dataclass(frozen=True)
class Config(TransportConfig):
    serial: str | None = None
    adb: str = "adb"

    def connect(self, profile: DeviceProfile) -> Transport:
        return Transport(profile)

    def refusal(self, profile: DeviceProfile, target, path) -> str | None:
        """No adb on this machine: said before any work (the reference, the export of a sweep)."""
        import shutil

        if not shutil.which(self.adb):
            return f"adb not found at '{self.adb}' (install Android platform-tools, or set adb: in the profile)"
        return None


class Transport(RemoteTransport):
    def adb(self, *args: str) -> list[str]:
        serial = ["-s", self.profile.serial] if self.profile.serial else []
        return [self.profile.adb, *serial, *args]

    def shell(self, command: str) -> list[str]:
        return self.adb("shell", command)

    def copy(self, local_dir: Path, paths: list[str], remote_dir: str) -> None:
        for path in paths:  # adb push takes the device path as it is: no shell sees it
            argv = self.adb("push", str(local_dir / path), posixpath.join(remote_dir, path))
            run_text(argv, timeout=self.profile.timeout_s)

    def explain(self, error: DeviceError) -> DeviceError:
        code, reason = exit_status(error)
        if str(error).startswith("cannot start"):
            return DeviceError(
                f"adb not found at '{self.profile.adb}' (install Android platform-tools, or set adb: in the profile)"
            )
        if code == 1 and reason.startswith(("adb:", "error:")) and any(words in reason for words in _UNREACHABLE):
            device = self.profile.serial or "the device"
            return DeviceError(f"adb cannot reach {device} ({reason}); see `{self.profile.adb} devices`")
        return super().explain(error)

    def info(self) -> dict:
        return {"transport": self.profile.transport, "serial": self.profile.serial}
