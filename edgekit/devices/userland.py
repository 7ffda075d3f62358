"""An arm64 Debian userland on this machine, for the qemu transport: built once, without root.

``build`` fetches Debian 12's arm64 python3.11 and the libraries it needs with apt-get (a private
configuration and state: nothing of the system's apt is read or changed, no ``dpkg --add-architecture``),
unpacks them with ``dpkg -x``, adds the aarch64 wheels of numpy and onnxruntime at this install's
versions (``pip --platform``), and checks the result runs under ``qemu-aarch64-static``. A userland folder::

    root/            the arm64 tree (the emulated program's /); the wheels in root/usr/lib/python3/dist-packages
    python           this machine's way in: root's python3.11 under qemu-aarch64-static -L root
    userland.json    what it holds; written last: a folder without it is not a userland

The folder is built beside its final place and renamed at the end, so an interrupted setup leaves
nothing behind. qemu looks a path up under ``root`` first and falls back to this machine's, so the
emulated python reads artifacts where they are; ``root/proc/cpuinfo`` and ``root/sys/devices/system/cpu``
describe arm64 cores (runtimes' CPU detection crashes on this machine's x86 description).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError

SUITE = "bookworm"  # Debian 12: its python3.11 is the project's python
PYTHON = "python3.11"
PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6")  # apt adds what they depend on
MIRROR = "http://deb.debian.org/debian"  # security updates come from the same URL + "-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
GLIBC = 36  # bookworm's glibc 2.36: the newest manylinux_2_N wheel it can load
QEMU = "qemu-aarch64-static"
MANIFEST = "userland.json"
FORMAT = 1

# Host side of the emulated python: qemu with root as the file system prefix; -s -E keep this machine's
# user site-packages and PYTHON* variables (x86 packages) out.
WRAPPER = """#!/bin/sh
# edgekit's arm64 userland: Debian's arm64 {python} under qemu user-mode emulation (see userland.json).
here=$(cd "$(dirname "$0")" && pwd -P)
exec "${{EDGEKIT_QEMU:-{qemu}}}" -L "$here/root" "$here/root/usr/bin/{python}" -s -E "$@"
"""

VERIFY_SCRIPT = r"""
import json, platform
from importlib import metadata
names = json.loads(input())
for name in names:
    __import__(name)
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                  **{n: metadata.version(n) for n in names}}))
"""


def base_dir() -> Path:
    """Where userlands live: ``$EDGEKIT_USERLAND_DIR``, else ``<edgekit cache>/userland``."""
    from edgekit.environment import cache_root

    return Path(os.environ.get("EDGEKIT_USERLAND_DIR") or cache_root() / "userland").expanduser()


def wheel_targets() -> dict[str, str | None]:
    """distribution -> the target it runs (None: every target): numpy, and the runtimes of the targets
    whose runtime PyPI has as Linux aarch64 wheels (``Target.arm64_wheels``)."""
    from edgekit.targets import specs

    out: dict[str, str | None] = {"numpy": None}
    for name, spec in specs().items():
        if spec.arm64_wheels is None:
            out.update((dist, name) for dist in spec.runtime)
    return out


def pins() -> dict[str, str]:
    """The wheels a userland holds, at this install's versions (pyproject.toml's pins)."""
    from importlib import metadata

    out = {}
    for name in wheel_targets():
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise EdgekitError(f"{name} is not installed here; "
                               "the arm64 userland takes the same version as this install") from None
    return out


def default_folder() -> Path:
    """This install's userland: named for what it holds, so a change of pins makes a new one."""
    spec = {"format": FORMAT, "suite": SUITE, "packages": PACKAGES, "wheels": pins()}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return base_dir() / f"arm64-{SUITE}-{digest}"


def read(folder: Path) -> dict | None:
    """The manifest of a built userland, or None where there is none (never set up, or interrupted)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def build(folder: Path, mirror: str | None = None, note: Callable[[str], None] = lambda text: None) -> dict:
    """Build the userland in ``folder`` (replacing one there); returns its manifest."""
    from edgekit.artifact import staged

    mirror = (mirror or MIRROR).rstrip("/")
    _require_tools()
    wheels = pins()
    started = time.monotonic()
    with staged(Path(folder), replace=lambda old: None) as tmp:  # a userland is always ours to replace
        root = tmp / "root"
        debs = _debian_packages(tmp / "apt", mirror, note)
        note(f"unpacking {len(debs)} packages with dpkg -x")
        for deb in debs:
            _run(["dpkg", "-x", str(deb), str(root)], f"dpkg -x {deb.name}")
        files = _wheels(tmp / "wheels", root / "usr/lib/python3/dist-packages", wheels, note)
        note("compiling the Python modules (on this machine, once)")
        _run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(root / "usr/lib" / PYTHON)], "compileall",
             ok=(0, 1))
        _describe_cpus(root, os.cpu_count() or 1)
        wrapper = tmp / "python"
        wrapper.write_text(WRAPPER.format(python=PYTHON, qemu=QEMU))
        wrapper.chmod(0o755)
        note(f"checking that the arm64 python imports {', '.join(wheels)} under {QEMU}")
        found = _verify(wrapper, list(wheels))
        download = sum(d.stat().st_size for d in debs) + sum(w.stat().st_size for w in files)
        shutil.rmtree(tmp / "apt")
        shutil.rmtree(tmp / "wheels")
        manifest = {
            "format": FORMAT,
            "machine": found["machine"],
            "python": found["python"],
            "debian": {"suite": SUITE, "mirror": mirror, "packages": sorted(d.name for d in debs)},
            "wheels": {name: found[name] for name in wheels},
            "runtimes": {target: f"{name} {found[name]}" for name, target in wheel_targets().items() if target},
            "download_bytes": download,
            "unpacked_bytes": _size(tmp),
            "setup_s": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _require_tools() -> None:
    for tool, package in (("apt-get", "apt"), ("dpkg", "dpkg"), (QEMU, "qemu-user-static")):
        if not shutil.which(tool):
            raise EdgekitError(f"{tool} not found: the arm64 userland needs it "
                               f"(Debian/Ubuntu: apt-get install {package})")
    if not Path(KEYRING).is_file():
        raise EdgekitError(f"no Debian archive keyring at {KEYRING} (apt-get install debian-archive-keyring)")


def _debian_packages(state: Path, mirror: str, note) -> list[Path]:
    """Resolve and download PACKAGES and their dependencies for arm64; the .deb files."""
    for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "lists/partial", "archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").write_text("")  # nothing is installed: apt resolves every dependency
    lines = [f"deb [arch=arm64 signed-by={KEYRING}] {url} {suite} main"
             for url, suite in ((mirror, SUITE), (mirror, f"{SUITE}-updates"),
                                (f"{mirror}-security", f"{SUITE}-security"))]
    (state / "etc/sources.list").write_text("\n".join(lines) + "\n")
    config = {
        "Dir::Etc": f"{state}/etc/", "Dir::Etc::main": "/dev/null", "Dir::Etc::parts": "apt.conf.d",
        "Dir::Etc::trusted": f"{state}/etc/trusted.gpg", "Dir::Etc::trustedparts": f"{state}/etc/trusted.gpg.d/",
        "Dir::State": f"{state}/", "Dir::State::lists": f"{state}/lists/", "Dir::State::status": f"{state}/status",
        "Dir::Cache": f"{state}/", "Dir::Cache::archives": f"{state}/archives/", "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "", "Dir::Log": f"{state}/", "APT::Architecture": "arm64",
        "APT::Architectures": "arm64", "APT::Install-Recommends": "false", "Acquire::Languages": "none",
        "Debug::NoLocking": "true",
    }
    if os.geteuid() == 0:  # apt would hand the download to user _apt, who cannot write our folder
        config["APT::Sandbox::User"] = "root"
    conf = state / "apt.conf"
    conf.write_text("".join(f'{key} "{value}";\n' for key, value in config.items()))
    env = {**os.environ, "APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}

    note(f"reading the arm64 package lists of Debian 12 ({SUITE}) from {mirror}")
    _run(["apt-get", "-q", "update"], "apt-get update", env=env)
    plan = _run(["apt-get", "-qq", "install", "--print-uris", *PACKAGES], "apt-get install --print-uris", env=env)
    uris = [line.split() for line in plan.splitlines() if line.startswith("'")]
    total = sum(int(u[2]) for u in uris)
    names = ", ".join(sorted(n for u in uris if (n := u[1].split("_")[0]) not in PACKAGES))
    note(f"downloading {len(uris)} arm64 packages, {_mb(total)} "
         f"({', '.join(PACKAGES)} and their dependencies: {names})")
    _run(["apt-get", "-q", "-y", "install", "--download-only", *PACKAGES], "apt-get install --download-only", env=env)
    debs = sorted((state / "archives").glob("*.deb"))
    if len(debs) != len(uris):
        raise EdgekitError(f"apt-get downloaded {len(debs)} of the {len(uris)} packages it planned")
    return debs


def _wheels(cache: Path, target: Path, wheels: dict[str, str], note) -> list[Path]:
    platforms = ["manylinux2014_aarch64", *(f"manylinux_2_{n}_aarch64" for n in range(17, GLIBC + 1))]
    options = ["--only-binary=:all:", "--no-deps", "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311",
               *(x for p in platforms for x in ("--platform", p))]
    wanted = [f"{name}=={version}" for name, version in wheels.items()]
    note(f"downloading the aarch64 wheels {', '.join(wanted)} from PyPI")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "download", *options, "-d", str(cache), *wanted], "pip download")
    files = sorted(cache.glob("*.whl"))
    note("  " + ", ".join(f"{f.name} ({_mb(f.stat().st_size)})" for f in files))
    _run([*pip, "install", *options, "--no-index", "--target", str(target), *map(str, files)], "pip install --target")
    return files


def _describe_cpus(root: Path, count: int) -> None:
    """arm64 cores (Cortex-A76, as a Raspberry Pi 5's) in place of this machine's x86 ones."""
    core = ("BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
            "asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
            "CPU part\t: 0xd0b\nCPU revision\t: 1\n\n")
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/cpuinfo").write_text("".join(f"processor\t: {i}\n{core}" for i in range(count)))
    cpus = root / "sys/devices/system/cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    span = f"0-{count - 1}\n" if count > 1 else "0\n"
    for name in ("possible", "present", "online"):
        (cpus / name).write_text(span)
    (cpus / "kernel_max").write_text(f"{max(count - 1, 0)}\n")


def _verify(wrapper: Path, names: list[str]) -> dict:
    out = _run([str(wrapper), "-c", VERIFY_SCRIPT], "the arm64 python", stdin=json.dumps(names) + "\n", timeout=300)
    try:
        found = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise EdgekitError(f"the arm64 python gave no answer ({out.strip()[-200:] or 'no output'})") from None
    if found.get("machine") != "aarch64":
        raise EdgekitError(f"the emulated python reports machine '{found.get('machine')}', not aarch64")
    return found


def _run(argv: list[str], what: str, env: dict | None = None, stdin: str | None = None, timeout: float = 1800,
         ok: tuple[int, ...] = (0,)) -> str:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{what} did not finish within {timeout:g} s") from None
    except OSError as e:
        raise EdgekitError(f"cannot run {argv[0]}: {e.strerror or e}") from None
    if proc.returncode not in ok:
        lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("WARNING:")]
        reason = (lines or proc.stdout.strip().splitlines() or ["no message"])[-1]
        raise EdgekitError(f"{what} failed ({reason.strip()})")
    return proc.stdout


def _size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
