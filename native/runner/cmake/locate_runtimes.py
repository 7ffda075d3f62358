"""Where the runtimes' libraries and headers are in a Python environment, as CMake ``set()`` lines.

Run by CMakeLists.txt at configure time with the interpreter of that environment (EDGEKIT_PYTHON);
writes the file named by its argument. Nothing is imported: the packages are found by their metadata,
so a runtime whose import would load torch costs nothing here. A runtime not found sets nothing, and
its backend is left out of the runner.
"""

from __future__ import annotations

import sys
from importlib import metadata, util
from pathlib import Path


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _installed_file(dist: str, suffix: str) -> Path | None:
    """The installed file of ``dist`` whose path ends with ``suffix``."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(f.locate()).resolve()
    return None


def _package_dir(name: str) -> Path | None:
    spec = util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def llama_cpp() -> dict:
    package, header = _package_dir("llama_cpp"), _installed_file("llama_cpp_python", "include/llama.h")
    if package is None or header is None or not (package / "lib" / "libllama.so").is_file():
        return {}
    return {"LLAMACPP_INCLUDE_DIR": header.parent, "LLAMACPP_LIB_DIR": package / "lib",
            "LLAMACPP_VERSION": _version("llama_cpp_python")}


def executorch() -> dict:
    package = _package_dir("executorch")
    if package is None or not (package / "lib" / "libexecutorch.so").is_file():
        return {}
    return {"EXECUTORCH_ROOT": package, "EXECUTORCH_VERSION": _version("executorch")}


def onnxruntime() -> dict:
    package = _package_dir("onnxruntime")
    libs = sorted((package / "capi").glob("libonnxruntime.so*")) if package else []
    header = _installed_file("onnxruntime", "onnxruntime_c_api.h")  # the wheel has none today
    if not libs or header is None:
        return {}
    return {"ONNXRUNTIME_LIBRARY": libs[-1], "ONNXRUNTIME_INCLUDE_DIR": header.parent,
            "ONNXRUNTIME_VERSION": _version("onnxruntime")}


def main(out: str) -> None:
    found = {**llama_cpp(), **executorch(), **onnxruntime()}
    lines = [f'set({key} "{value}")' for key, value in found.items() if value is not None]
    Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
