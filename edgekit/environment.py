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


def config_root() -> Path:
    """edgekit's settings folder (the user's own device profiles): ``$EDGEKIT_CONFIG_DIR``, else
    ``$XDG_CONFIG_HOME/edgekit`` or ``~/.config/edgekit``."""
    base = (os.environ.get("EDGEKIT_CONFIG_DIR")
            or Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "edgekit")
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
