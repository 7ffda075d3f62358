"""Devices: a profile (YAML) names a transport; a transport moves files and runs commands there.

Each transport is one module, registered under the entry-point group ``edgekit.devices`` by its
config class (a ``TransportConfig``: the profile keys of that transport, and how to connect). The
profile's ``transport:`` chooses it; the keys every profile has are ``DeviceProfile``'s. A connected
transport implements the ``Transport`` protocol. ``refusal`` is the one capability check: whether a
device can run artifacts of a target, and why not (``require_capable``: the same as an error).
Everything above that is shared: see ``edgekit.profile.session``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Protocol

from edgekit.config import NUMBERS
from edgekit.core import plugins
from edgekit.errors import EdgekitError

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"  # package data: a wheel ships them
FILL_IN = "FILL-IN"  # the value shipped profiles use for what a user must fill in
# the device commands use when none is named: this machine, reached through the transport of the same name
DEFAULT = "local"


class Transport(Protocol):
    """A device reached from here: files go there (push) and back (pull), the runner runs there."""

    def push(self, local_dir: Path, files: list[dict]) -> str:
        """Make the device hold ``files`` (manifest entries) of ``local_dir``; their folder there."""

    def pull(self, remote_dir: str, paths: list[str], local_dir: Path) -> None:
        """Copy ``remote_dir/path`` from the device to ``local_dir/path`` for each path."""

    def runner(self) -> list[str]:
        """The local argv that starts the runner (``edgekit.runtime``) there, installing it first if needed.
        A transport that runs the native runner (``runner: native``; local only so far) takes the artifact's
        target too (``runner(target)``): its build runs the targets it has a backend for."""

    def run(self, argv: list[str], stdin: bytes, timeout: float) -> Iterator[str]:
        """Run ``argv`` with ``stdin``; its stdout lines, each within ``timeout`` s (DeviceError otherwise)."""

    def info(self) -> dict:
        """What identifies the device in a result (host, serial, emulator version...)."""

    def check(self) -> dict:
        """Ask the device what the runner would run on (python, machine, runtimes)."""


@dataclass(frozen=True)
class TransportConfig:
    """A transport's own profile keys (the dataclass fields; those without a default are required)
    and what it does with them. A subclass is the transport's registry entry."""

    emulated: ClassVar[bool] = False  # its device is emulated: timings say nothing about real hardware

    def problem(self) -> str | None:
        """What is wrong with the values, in one line (None: nothing)."""
        return None

    def connect(self, profile: DeviceProfile) -> Transport:
        raise NotImplementedError

    def setup(self, profile: DeviceProfile, note: Callable[[str], None], force: bool) -> dict:
        """What the device needs once on this machine (`edgekit devices setup`)."""
        raise EdgekitError(f"device {profile.name} ({profile.transport}) needs no setup here; "
                           "see its profile for what it needs on the device")

    def refusal(self, profile: DeviceProfile, target, path) -> str | None:
        """Why this device cannot run the artifact at ``path`` of ``target`` (an ``edgekit.targets.Target``),
        as far as this machine can tell without reaching it; None: it can (or only trying will tell)."""
        return None


# the keys every profile has, and their types
_COMMON = {
    "name": str, "transport": str, "description": str, "arch": str, "threads": int, "python": str,
    "workdir": str, "timeout_s": (int, float), "emulated": bool, "runner": str,
}
RUNNERS = ("python", "native")  # what a profile's ``runner:`` may name; python is the default


@dataclass(frozen=True, init=False)
class DeviceProfile:
    name: str
    transport: str
    description: str = ""
    arch: str | None = None
    threads: int | None = None
    python: str = "python3"  # the device's python (with numpy and the runtime installed)
    workdir: str = "~/.cache/edgekit"  # where artifacts and the runner live on the device
    timeout_s: float = 600.0  # per run (load, each latency run, the accuracy pass)
    # timings and memory are an emulator's: kept in the result, never shown or compared as a device's
    emulated: bool = False
    runner: str = "python"  # "native": the C++ runner (edgekit.devices.native) for the targets it has a backend for
    options: TransportConfig | None = None  # the transport's own keys (its config class)
    source: str | None = field(default=None, compare=False)  # the file it was read from

    def __init__(self, name: str, transport: str, description: str = "", arch: str | None = None,
                 threads: int | None = None, python: str = "python3", workdir: str = "~/.cache/edgekit",
                 timeout_s: float = 600.0, emulated: bool = False, runner: str = "python",
                 options: TransportConfig | None = None, source: str | None = None, **keys):
        """``keys``: the transport's own (``host=...``, say), or ``options`` as its config object."""
        if options is None:
            options = transport_config(transport)(**keys)
        elif keys:
            options = replace(options, **keys)
        values = dict(name=name, transport=transport, description=description, arch=arch, threads=threads,
                      python=python, workdir=workdir, timeout_s=timeout_s, emulated=emulated, runner=runner,
                      options=options, source=source)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __getattr__(self, key: str):  # a transport's key, read as the profile's (profile.host)
        options = self.__dict__.get("options")
        if options is not None and key in _keys(type(options)):
            return getattr(options, key)
        raise AttributeError(f"{type(self).__name__} has no attribute '{key}'")

    @property
    def setup_command(self) -> str:
        """The `edgekit devices setup` command that finds this profile: by its name where that names a
        shipped profile read from this same file, else by its file."""
        import shlex

        shipped_file = shipped().get(self.name)
        if self.source is None or (shipped_file is not None and Path(self.source).resolve() == shipped_file.resolve()):
            return f"edgekit devices setup {shlex.quote(self.name)}"
        return f"edgekit devices setup {shlex.quote(self.source)}"

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("options", "source")}
        out.update((f.name, getattr(self.options, f.name)) for f in fields(self.options))
        out["source"] = self.source
        if self.runner == RUNNERS[0]:  # the default stays out: fingerprints from before it stay the same
            del out["runner"]
        return {k: v for k, v in out.items() if v is not None}


def transports() -> tuple[str, ...]:
    """Every registered transport, without importing any."""
    return plugins.names(plugins.DEVICES)


def transport_config(name: str) -> type[TransportConfig]:
    """The config class of transport ``name``."""
    if name not in transports():
        raise EdgekitError(f"unknown transport '{name}'; known: {', '.join(transports())}")
    return plugins.load(plugins.DEVICES, name)


@plugins.cached
def _keys(config: type) -> dict:
    """A config class's keys -> the types a profile may give them."""
    import typing

    hints = typing.get_type_hints(config)
    out = {}
    for f in fields(config):
        kinds = tuple(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        out[f.name] = tuple(dict.fromkeys(k for t in kinds for k in ((int, float) if t is float else (t,))))
        out[f.name] = out[f.name][0] if len(out[f.name]) == 1 else out[f.name]
    return out


def _required(config: type) -> list[str]:
    from dataclasses import MISSING

    return [f.name for f in fields(config) if f.default is MISSING and f.default_factory is MISSING]


def __getattr__(name: str):
    if name == "_TYPES":  # every key a profile of any transport may have, and its types
        out = dict(_COMMON)
        for transport in transports():
            out.update(_keys(transport_config(transport)))
        return out
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_profile(data: object, source: str) -> DeviceProfile:
    """Validate a profile's mapping: unknown keys, wrong types and unfilled fields are errors."""
    if not isinstance(data, dict):
        raise EdgekitError(f"device profile {source}: expected a mapping of keys to values")
    transport = data.get("transport")
    config = transport_config(transport) if isinstance(transport, str) and transport in transports() else None
    types = {**_COMMON, **_keys(config)} if config else __getattr__("_TYPES")
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise EdgekitError(f"device profile {source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(types)}")
    for key, value in data.items():
        want = types[key]
        if value is None:
            continue
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            raise EdgekitError(f"device profile {source}: '{key}' must be {_type_name(want)}, got {value!r}")
        if value == FILL_IN:
            raise EdgekitError(f"device profile {source}: '{key}' is not filled in ({_fill_in_hint(data, source)})")
    for key in ("name", "transport"):
        if not data.get(key):
            raise EdgekitError(f"device profile {source}: '{key}' is required")
    if config is None:
        known = ", ".join(transports())
        raise EdgekitError(f"device profile {source}: unknown transport '{transport}'; known: {known}")
    for key in _required(config):
        if not data.get(key):
            raise EdgekitError(f"device profile {source}: transport {transport} needs '{key}'")
    for key, value in data.items():  # every number in its range (threads, timeout_s, a transport's port)
        if key in NUMBERS and value is not None:
            NUMBERS[key].check(value, f"device profile {source}: '{key}'")
    if data.get("runner") is not None and data["runner"] not in RUNNERS:
        raise EdgekitError(f"device profile {source}: 'runner' must be one of {', '.join(RUNNERS)}, "
                           f"got {data['runner']!r}")
    if data.get("runner") == "native" and transport != DEFAULT:
        raise EdgekitError(f"device profile {source}: 'runner: native' runs on the local device only so far "
                           f"(transport {transport} pushes the Python runner)")
    data = {k: v for k, v in data.items() if v is not None}
    options = config(**{k: v for k, v in data.items() if k not in _COMMON})
    problem = options.problem()
    if problem:
        raise EdgekitError(f"device profile {source}: {problem}")
    if config.emulated:
        if data.get("emulated") is False:
            raise EdgekitError(f"device profile {source}: a {transport} device is emulated "
                               "('emulated: false' cannot be)")
        data = {**data, "emulated": True}
    return DeviceProfile(**{k: v for k, v in data.items() if k in _COMMON}, options=options, source=source)


def _fill_in_hint(data: dict, source: str) -> str:
    """Where a user fills in a profile: their own file, or for one shipped inside the package, a copy of it."""
    if Path(source).parent != PROFILES_DIR:
        return f"edit {source}"
    return f"make your own copy with `edgekit devices new my-{data.get('name', 'device')} --from {data.get('name')}`"


def user_profiles_dir() -> Path:
    """The user's own device profiles (``edgekit devices new``), found by name as the shipped ones are."""
    from edgekit.environment import config_root

    return config_root() / "devices"


def new_profile(name: str, base: str) -> tuple[Path, list[str]]:
    """Copy profile ``base`` (a name or a file) as the user's own ``name`` (its ``name:`` line changed;
    comments kept). Returns the file and the keys left to fill in. Refuses a name that is taken."""
    import re

    import yaml

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise EdgekitError(f"device name '{name}': use letters, digits, '.', '_' and '-' (at most 64)")
    if name == DEFAULT or name in shipped():
        raise EdgekitError(f"device name '{name}' is taken by a shipped profile; choose another")
    found = {**shipped(), **user_profiles()}
    path = Path(base) if base not in found and Path(base).suffix in (".yaml", ".yml") else found.get(base)
    if path is None or not path.is_file():
        raise EdgekitError(f"unknown device '{base}' to copy; known: {', '.join(sorted(found))}")
    target = user_profiles_dir() / f"{name}.yaml"
    if target.exists() or name in user_profiles():
        raise EdgekitError(f"device '{name}' exists already: {target if target.exists() else user_profiles()[name]}")
    text = path.read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise EdgekitError(f"device profile {path}: expected a mapping of keys to values")
    text, n = re.subn(r"(?m)^name:.*$", f"name: {name}", text, count=1)
    text = text if n else f"name: {name}\n{text}"
    from edgekit.output import write_file

    write_file(target, text)
    return target, [k for k, v in data.items() if v == FILL_IN]


def user_profiles() -> dict[str, Path]:
    """The user's own profiles (``user_profiles_dir``), by the ``name`` they declare."""
    return _by_name(sorted(user_profiles_dir().glob("*.y*ml")) if user_profiles_dir().is_dir() else [])


def _type_name(t) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def load_profile(name_or_path: str) -> DeviceProfile:
    """A profile by name (``DEFAULT``, or the ``name`` of a file in edgekit/profiles/) or by file path."""
    import yaml

    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        if name_or_path == DEFAULT:
            return DeviceProfile(name=DEFAULT, transport=DEFAULT, description="this machine")
        found = {**user_profiles(), **shipped()}
        if name_or_path not in found:
            raise EdgekitError(f"unknown device '{name_or_path}'; known: "
                               f"{', '.join(dict.fromkeys([DEFAULT, *sorted(found)]))}")
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
    return _by_name(sorted(PROFILES_DIR.glob("*.y*ml")))


def _by_name(paths: list[Path]) -> dict[str, Path]:
    import yaml

    out = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            data = None
        name = data.get("name") if isinstance(data, dict) else None
        out[name or path.stem] = path
    return out


def connect(profile: DeviceProfile) -> Transport:
    """The transport object for a profile."""
    return profile.options.connect(profile)


def setup(profile: DeviceProfile, note, force: bool = False) -> dict:
    """What a device needs once on this machine (an emulating transport's userland): its transport's ``setup``."""
    return profile.options.setup(profile, note, force)


def refusal(profile: DeviceProfile, target: str, path) -> str | None:
    """The capability check: why ``profile``'s device cannot run the artifact at ``path`` of
    ``target``, in one line; None where it can (or where only running it will tell)."""
    from edgekit.targets import spec

    return profile.options.refusal(profile, spec(target), path)


def require_capable(profile: DeviceProfile, target: str, path) -> None:
    """The capability check as the one-line error profile, sweep and check all give:
    ``device NAME: push: why`` (see ``refusal``)."""
    why = refusal(profile, target, path)
    if why:
        raise EdgekitError(f"device {profile.name}: push: {why}")
