"""Facts about this process and machine: toolchain versions, the cache folder; library noise."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

TOOLCHAIN = ("torch", "transformers")  # what every exporter uses; each target adds its own (Target.toolchain)


def toolchain() -> tuple[str, ...]:
    """The distributions whose versions make an export: TOOLCHAIN and every registered target's."""
    from edgekit.core import plugins

    found = [d for name in plugins.names(plugins.TARGETS) for d in plugins.load(plugins.TARGETS, name).toolchain]
    return tuple(dict.fromkeys((*TOOLCHAIN, *found)))


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "edgekit": distribution_version("edgekit")}
    for name in toolchain():
        v = distribution_version(name)
        if v:
            out[name] = v
    return out


def cache_root() -> Path:
    """edgekit's cache folder: ``$EDGEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgekit`` or ``~/.cache/edgekit``."""
    base = (os.environ.get("EDGEKIT_CACHE_DIR")
            or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgekit")
    return Path(base)


def cache_folder(*parts: str) -> Path:
    """The cache's subfolder ``parts``, made where missing; a cache that cannot be made (``$EDGEKIT_CACHE_DIR``
    a file, read-only, a full disk) is one line naming it."""
    folder = cache_root().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cache_error(folder, e.strerror or str(e)) from None
    return folder


def cache_error(path: Path, reason: str):
    """The one-line error (an EdgekitError, to raise) for a write into the cache that failed for ``reason``."""
    from edgekit.errors import EdgekitError

    where = "$EDGEKIT_CACHE_DIR" if os.environ.get("EDGEKIT_CACHE_DIR") else "the cache folder"
    return EdgekitError(f"cannot write {path} ({where} {cache_root()}): {reason}; "
                        "set EDGEKIT_CACHE_DIR to a writable folder with room")


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def idle_cpus(window_s: float = 0.2) -> int:
    """How many of this process's CPUs are idle now (at least 1): their idle time over ``window_s``,
    from /proc/stat, while this process sleeps. Where there is no /proc/stat, every usable CPU."""
    import time

    def idle_and_total() -> tuple[int, int]:
        idle = total = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in allowed:
                    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                    idle += ticks[3] + ticks[4]
                    total += sum(ticks)
        return idle, total

    try:
        allowed = os.sched_getaffinity(0)
        idle0, total0 = idle_and_total()
        time.sleep(window_s)
        idle1, total1 = idle_and_total()
    except (AttributeError, OSError, ValueError):
        return usable_cpus()
    if total1 <= total0:
        return len(allowed)
    return max(1, round(len(allowed) * (idle1 - idle0) / (total1 - total0)))


def idle_threads() -> int | None:
    """Threads for a reference model and an artifact's runtime in this process (a parity check, a
    sensitivity measurement): the CPUs idle now when some are busy, else None (each library's
    default). The figures do not depend on it, the time does: a pool wider than the idle CPUs waits
    at every operator for a thread that another process holds (on a busy 2-core machine, 2 torch
    threads made the reference 10x slower than 1)."""
    idle = idle_cpus()
    return idle if idle < usable_cpus() else None


def distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def quiet_libraries() -> None:
    """Keep the exporters' warnings and info logs off the user's terminal."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    import torch  # noqa: F401  (torch configures its loggers on import: quiet them after)
    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars of the exporters' own; ours is the stage display
    for name in ("transformers", "optimum", "torch", "onnxruntime", "onnx_ir", "torchao", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    root = logging.getLogger()
    if not root.handlers:  # a library's logging.basicConfig(level=INFO) on import (ONNX Runtime's
        handler = logging.StreamHandler()  # MatMulNBits quantizer) then finds one and changes nothing
        handler.setLevel(logging.ERROR)
        root.addHandler(handler)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
