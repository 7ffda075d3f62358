"""The native runner (``native/runner``, C++17): built with CMake into edgekit's cache, once per content.

A build is keyed by a hash of the runner's sources, the compiler, CMake, the architecture and the
versions of the runtimes it links (the libraries of this Python environment's wheels), as
scripts/llama_cpp.sh keys its wheel: the same key is the same binary, reused; anything changed builds a
new one beside it. ``<cache>/runner/<arch>-<key>/`` holds ``bin/edgekit-runner``, ``lib/`` (the
libraries it links, found through its RUNPATH) and ``build.json`` (what was built and how long it took).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from edgekit.errors import EdgekitError

SOURCE = Path(__file__).resolve().parents[2] / "native" / "runner"
BINARY = "bin/edgekit-runner"
RECORD = "build.json"
ARCHES = ("x86_64", "aarch64")
# target -> the runtime (as CMake reports it in backends.txt) whose backend runs it natively
TARGETS = {"gguf": "llama.cpp", "executorch": "executorch"}
_RUNTIME_DISTRIBUTIONS = ("llama_cpp_python", "executorch", "onnxruntime")


@dataclass(frozen=True)
class Build:
    folder: Path
    key: str
    arch: str
    built: bool  # False: reused from the cache
    build_s: float  # how long it took when it was built
    binary_bytes: int
    lib_bytes: int
    backends: tuple[str, ...]  # "llama.cpp 0.3.36", ...

    @property
    def binary(self) -> Path:
        return self.folder / BINARY

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets whose artifacts this build runs."""
        names = {b.split()[0] for b in self.backends}
        return tuple(t for t, runtime in TARGETS.items() if runtime in names)


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def check_arch(arch: str) -> None:
    """Refuse, in one line before any work, an architecture this machine cannot build for yet."""
    if arch not in ARCHES:
        raise EdgekitError(f"--arch must be one of {', '.join(ARCHES)}, got '{arch}'")
    if arch != host_arch():
        raise EdgekitError(f"building the native runner for {arch} on {host_arch()} (a cross-compile) is not "
                           f"supported yet; run build-runner on the {arch} machine itself")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise EdgekitError(f"the native runner needs {name} to build (install it: apt-get install {name})")
    return found


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.splitlines()[0].strip() if out.strip() else "?"


def build_key(arch: str) -> str:
    """What the binary depends on, hashed: sources, compiler, CMake, architecture, runtime versions."""
    if not SOURCE.is_dir():
        raise EdgekitError(f"the native runner's sources are not here ({SOURCE}); it builds from edgekit's "
                           "source checkout")
    h = hashlib.sha256()
    for path in sorted(p for p in SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(SOURCE)).encode() + b"\0" + path.read_bytes() + b"\0")
    compiler = os.environ.get("CXX") or "c++"
    h.update(_first_line([_tool(compiler), "--version"]).encode())
    h.update(_first_line([_tool("cmake"), "--version"]).encode())
    h.update(arch.encode())
    for dist in _RUNTIME_DISTRIBUTIONS:
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    from edgekit.environment import cache_root

    return cache_root() / "runner"


def build(arch: str | None = None, note: Callable[[str], None] = lambda message: None) -> Build:
    """The native runner for ``arch`` (default: this machine's), built now or reused from the cache."""
    arch = arch or host_arch()
    check_arch(arch)
    key = build_key(arch)
    folder = cache_dir() / f"{arch}-{key}"
    cached = _read(folder, key)
    if cached is not None:
        return cached
    work = folder.parent / f".{folder.name}.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
    except OSError as e:
        raise EdgekitError(f"cannot write the runner's cache folder {folder.parent}: {e.strerror or e}") from None
    note(f"building the native runner ({arch}) in {folder}")
    started = time.monotonic()
    try:
        _cmake(work / "build", work / "install", key)
        seconds = time.monotonic() - started
        install = work / "install"
        backends = tuple(b for b in (work / "build" / "backends.txt").read_text().strip().split(";") if b)
        record = {"key": key, "arch": arch, "build_s": round(seconds, 2), "backends": list(backends),
                  "binary_bytes": (install / BINARY).stat().st_size,
                  "lib_bytes": sum(p.stat().st_size for p in (install / "lib").glob("*") if p.is_file()
                                   and not p.is_symlink()) if (install / "lib").is_dir() else 0,
                  "compiler": _first_line([os.environ.get("CXX") or "c++", "--version"])}
        (install / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if folder.exists() and _read(folder, key) is None:  # a damaged build of this key: replaced
            shutil.rmtree(folder)
        try:
            install.rename(folder)
        except OSError:  # another process built the same key meanwhile: use its build
            if _read(folder, key) is None:
                raise
    except OSError as e:
        raise EdgekitError(f"cannot write the native runner into {folder}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = _read(folder, key)
    if found is None:
        raise EdgekitError(f"the native runner built in {folder} cannot be read back")
    return Build(**{**found.__dict__, "built": True})


def _cmake(build_dir: Path, prefix: Path, key: str) -> None:
    cmake = _tool("cmake")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    steps = [
        [cmake, "-S", str(SOURCE), "-B", str(build_dir), *generator, "-DCMAKE_BUILD_TYPE=Release",
         f"-DEDGEKIT_PYTHON={sys.executable}", f"-DEDGEKIT_RUNNER_VERSION={key}", f"-DCMAKE_INSTALL_PREFIX={prefix}"],
        [cmake, "--build", str(build_dir), "--parallel"],
        [cmake, "--install", str(build_dir)],
    ]
    for argv in steps:
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            log = prefix.parent.parent / f"{prefix.parent.name.lstrip('.')}.log"
            log.write_text(p.stdout + p.stderr)
            lines = [line for line in (p.stderr or p.stdout).splitlines() if line.strip()]
            raise EdgekitError(f"building the native runner failed ({lines[-1].strip() if lines else 'no message'}); "
                               f"the whole log: {log}")


def _read(folder: Path, key: str) -> Build | None:
    """The build in ``folder`` where it is whole and of ``key``; None otherwise."""
    try:
        record = json.loads((folder / RECORD).read_text())
        if record.get("key") != key or not (folder / BINARY).is_file():
            return None
        return Build(folder, key, record["arch"], False, float(record["build_s"]), int(record["binary_bytes"]),
                     int(record["lib_bytes"]), tuple(record["backends"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
