"""The artifact folder and its manifest, ``edgekit.json``."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.source import file_sha256

MANIFEST = "edgekit.json"
SCHEMA = 1


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def recipe(self) -> str:
        return self.manifest["recipe"]["name"]

    @property
    def size_bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"])


def load(path: Path) -> Artifact:
    """Read an artifact folder written by ``edgekit export``."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"artifact not found: {path}")
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise EdgekitError(f"{path} is not an edgekit artifact (no {MANIFEST}); make one with `edgekit export`")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{manifest_file} is not valid JSON: {e}") from None
    if manifest.get("schema") != SCHEMA:
        raise EdgekitError(f"{manifest_file} has schema {manifest.get('schema')!r}; this edgekit reads schema {SCHEMA}")
    return Artifact(path, manifest)


def file_entries(folder: Path) -> list[dict]:
    """Every file of the folder but the manifest, with its size and sha256."""
    return [
        {"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists (without --overwrite), that is not an edgekit
    artifact (--overwrite replaces only what edgekit wrote), that is or holds the current folder, or
    that cannot be written."""
    here = Path.cwd().resolve()
    resolved = out.resolve()
    if resolved == here or resolved in here.parents:
        raise EdgekitError(f"-o {out} is the current folder or one above it; name a new folder for the artifact")
    if out.exists() and not overwrite:
        raise EdgekitError(f"{out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise EdgekitError(f"{out} exists and is not a folder")
    if out.exists():
        check_replaceable(out)
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise EdgekitError(f"cannot write to {out}: {parent} is not writable")


def check_apart(out: Path, source: Path) -> None:
    """Refuse an output that is, or holds, the model folder it is made from."""
    source, resolved = Path(source).resolve(), out.resolve()
    if source == resolved or resolved in source.parents:
        raise EdgekitError(f"-o {out} is or holds the model being exported ({source}); name another folder")


def check_replaceable(folder: Path) -> None:
    """Refuse to replace a folder edgekit did not write: --overwrite replaces an empty folder or an
    artifact holding only the files its manifest lists, never anything else of the user's."""
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    if not present:
        return
    hint = "; remove it yourself or choose another -o"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        listed = {f["path"] for f in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise EdgekitError(f"--overwrite replaces only edgekit artifacts, and {folder} is not one (no valid {MANIFEST}){hint}") from None
    others = [p for p in present if p != MANIFEST and p not in listed]
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise EdgekitError(f"--overwrite replaces only what edgekit wrote, and {folder} also holds {others[0]}{more}{hint}")


@contextmanager
def staged(out: Path, replace: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A temporary folder beside ``out`` that becomes ``out`` only if the block completes.

    On any error or interrupt the temporary folder is removed and ``out`` is left as it was. The
    folder's name carries the writer's pid: one left by a killed process is removed by the next.
    ``replace``: called on an ``out`` found at the end, to refuse (raise) replacing it.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".partial", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
    except OSError as e:
        raise EdgekitError(f"cannot write to {out}: {e.strerror or e}") from None
    try:
        yield tmp
        old = None
        if out.exists():
            if replace is not None:
                replace(out)
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_orphans(out: Path) -> None:
    """Staging folders of ``out`` whose writer is gone (killed before it could clean up)."""
    for folder in out.parent.glob(f".{glob.escape(out.name)}.*.partial"):
        pid = folder.name[len(out.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
