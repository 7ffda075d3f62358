"""Devices: a profile (YAML) names a transport; a transport moves files and runs commands there.

A transport implements ``push(local_dir, files) -> remote_dir``, ``run(argv, stdin, timeout)``
(streaming the runner's stdout lines) and ``info()``; its module may have a ``setup(profile, note,
force)`` for what the device needs once on this machine (`edgekit devices setup`). Everything above
that is shared: see ``edgekit.profile.session``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from pathlib import Path

from edgekit.errors import EdgekitError

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"  # package data: a wheel ships them
TRANSPORTS = {
    "local": "edgekit.devices.local", "ssh": "edgekit.devices.ssh", "adb": "edgekit.devices.adb", "qemu": "edgekit.devices.qemu",
}
EMULATING = ("qemu",)  # transports whose device is emulated: its timings say nothing about real hardware
FILL_IN = "FILL-IN"  # the value shipped profiles use for what a user must fill in


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    transport: str
    description: str = ""
    arch: str | None = None
    threads: int | None = None
    python: str = "python3"  # the device's python (with numpy and the runtime installed)
    workdir: str = "~/.cache/edgekit"  # where artifacts and the runner live on the device
    timeout_s: float = 600.0  # per run (load, each latency run, the accuracy pass)
    emulated: bool = False  # timings and memory are an emulator's: kept in the result, never shown or compared as a device's
    # ssh
    host: str | None = None
    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts_file: str | None = None
    accept_new_host_key: bool = False  # trust-on-first-use; off: unknown host keys are refused
    # adb
    serial: str | None = None
    adb: str = "adb"
    # qemu
    userland: str | None = None  # the arm64 userland folder (default: see edgekit.devices.userland)
    mirror: str | None = None  # the Debian mirror the userland's packages come from
    cpu: str | None = None  # the CPU qemu emulates (`qemu-aarch64-static -cpu help`; default: max, every extension)
    source: str | None = field(default=None, compare=False)  # the file it was read from

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


_REQUIRED = {"local": (), "ssh": ("host",), "adb": (), "qemu": ()}
_TYPES = {
    "name": str, "transport": str, "description": str, "arch": str, "threads": int, "python": str,
    "workdir": str, "timeout_s": (int, float), "host": str, "user": str, "port": int, "identity_file": str,
    "known_hosts_file": str, "accept_new_host_key": bool, "serial": str, "adb": str, "emulated": bool,
    "userland": str, "mirror": str, "cpu": str,
}


def parse_profile(data: object, source: str) -> DeviceProfile:
    """Validate a profile's mapping: unknown keys, wrong types and unfilled fields are errors."""
    if not isinstance(data, dict):
        raise EdgekitError(f"device profile {source}: expected a mapping of keys to values")
    unknown = sorted(set(data) - set(_TYPES))
    if unknown:
        raise EdgekitError(f"device profile {source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_TYPES)}")
    for key, value in data.items():
        want = _TYPES[key]
        if value is None:
            continue
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            raise EdgekitError(f"device profile {source}: '{key}' must be {_type_name(want)}, got {value!r}")
        if value == FILL_IN:
            raise EdgekitError(f"device profile {source}: '{key}' is not filled in (edit {source})")
    for key in ("name", "transport"):
        if not data.get(key):
            raise EdgekitError(f"device profile {source}: '{key}' is required")
    transport = data["transport"]
    if transport not in TRANSPORTS:
        raise EdgekitError(f"device profile {source}: unknown transport '{transport}'; known: {', '.join(TRANSPORTS)}")
    for key in _REQUIRED[transport]:
        if not data.get(key):
            raise EdgekitError(f"device profile {source}: transport {transport} needs '{key}'")
    if data.get("threads") is not None and data["threads"] < 1:
        raise EdgekitError(f"device profile {source}: 'threads' must be at least 1")
    if data.get("timeout_s") is not None and not 0 < data["timeout_s"] < float("inf"):
        raise EdgekitError(f"device profile {source}: 'timeout_s' must be a number of seconds above 0, got {data['timeout_s']!r}")
    if data.get("port") is not None and not 0 < data["port"] < 65536:
        raise EdgekitError(f"device profile {source}: 'port' must be between 1 and 65535, got {data['port']}")
    if transport in EMULATING:
        if data.get("emulated") is False:
            raise EdgekitError(f"device profile {source}: a {transport} device is emulated ('emulated: false' cannot be)")
        data = {**data, "emulated": True}
    return DeviceProfile(**data, source=source)


def _type_name(t) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def load_profile(name_or_path: str) -> DeviceProfile:
    """A profile by name (``local``, or the ``name`` of a file in edgekit/profiles/) or by file path."""
    import yaml

    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        if name_or_path == "local":
            return DeviceProfile(name="local", transport="local", description="this machine")
        found = shipped()
        if name_or_path not in found:
            raise EdgekitError(f"unknown device '{name_or_path}'; known: {', '.join(dict.fromkeys(['local', *sorted(found)]))}")
        path = found[name_or_path]
    if not path.is_file():
        raise EdgekitError(f"device profile not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise EdgekitError(f"device profile {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_profile(data, str(path))


def shipped() -> dict[str, Path]:
    """Profiles shipped in edgekit/profiles/, by the ``name`` they declare (the file stem where they declare none)."""
    import yaml

    out = {}
    for path in sorted(PROFILES_DIR.glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            data = None
        name = data.get("name") if isinstance(data, dict) else None
        out[name or path.stem] = path
    return out


def connect(profile: DeviceProfile):
    """The transport object for a profile."""
    module = importlib.import_module(TRANSPORTS[profile.transport])
    return module.Transport(profile)


def setup(profile: DeviceProfile, note, force: bool = False) -> dict:
    """What a device needs once on this machine (the qemu transport's userland): its transport's ``setup``."""
    module = importlib.import_module(TRANSPORTS[profile.transport])
    if not hasattr(module, "setup"):
        raise EdgekitError(f"device {profile.name} ({profile.transport}) needs no setup here; "
                           "see its profile for what it needs on the device")
    return module.setup(profile, note, force)
