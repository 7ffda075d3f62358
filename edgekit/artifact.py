"""The artifact folder and its manifest, ``edgekit.json``."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edgekit import jsonfile
from edgekit.core.manifest import MANIFEST_SCHEMA, Manifest
from edgekit.errors import EdgekitError
from edgekit.core.files import file_sha256

MANIFEST = "edgekit.json"
SCHEMA = MANIFEST_SCHEMA


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: Manifest  # a manifest's dict is read into one

    def __post_init__(self):
        if not isinstance(self.manifest, Manifest):
            object.__setattr__(self, "manifest", Manifest.from_json(self.manifest))

    @property
    def target(self) -> str:
        return self.manifest.target

    @property
    def recipe(self) -> str:
        return self.manifest.recipe_name

    @property
    def size_bytes(self) -> int:
        """The artifact's own files: the model files, the tokenizer and the config (``file_mb``);
        anything else the folder holds (``role`` "other") is not the model's size."""
        return sum(f["bytes"] for f in self.manifest.files if self.role(f) in OWN_ROLES)

    @property
    def other_bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest.files if self.role(f) not in OWN_ROLES)

    def role(self, entry: dict) -> str:
        """A file entry's role (recorded at export; older manifests: from its name)."""
        return entry.get("role") or file_role(entry["path"], self.manifest.model_file)


# what an artifact holds besides its model files: the tokenizer its runner reads (tokenizer.json) with
# what a Hugging Face user expects beside it, and the model's configs; the rest is "other"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "added_tokens.json")
CONFIG_FILES = ("config.json", "generation_config.json", "genai_config.json")
OWN_ROLES = ("model", "tokenizer", "config")


def file_role(rel: str, model_file: str | None) -> str:
    """"model" (the model file, what lies under it, or its external data, ``model.onnx.data``),
    "tokenizer", "config" or "other"."""
    if model_file and (rel == model_file or rel.startswith(model_file.rstrip("/") + "/")
                       or rel.startswith(model_file + ".") or rel.startswith(model_file + "_")):
        return "model"
    if rel in TOKENIZER_FILES:
        return "tokenizer"
    if rel in CONFIG_FILES:
        return "config"
    return "other"


def load(path: Path) -> Artifact:
    """Read an artifact folder written by ``edgekit export``."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"artifact not found: {path}")
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise EdgekitError(f"{path} is not an edgekit artifact (no {MANIFEST}); make one with `edgekit export`")
    try:
        manifest = jsonfile.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{manifest_file} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise EdgekitError(f"{manifest_file} is not an edgekit manifest (not a JSON object); export the artifact again")
    if manifest.get("schema") != SCHEMA:
        raise EdgekitError(f"{manifest_file} has schema {manifest.get('schema')!r}; this edgekit reads schema {SCHEMA}")
    problem = _shape_problem(manifest)
    if problem:
        raise EdgekitError(f"{manifest_file} is not a whole edgekit manifest ({problem}); export the artifact again")
    return Artifact(path, Manifest.from_json(manifest))


# what every reader of a manifest relies on: key -> type, and the keys of the tables within
_SHAPE = {
    "target": str, "recipe": {"name": str}, "source": {"model": str, "model_type": str},
    "runtime": {"model_file": str, "max_context": int}, "files": list,
}
_FILE = {"path": str, "bytes": int, "sha256": str}


def _shape_problem(manifest: dict) -> str | None:
    def wrong(table: dict, spec: dict, where: str) -> str | None:
        for key, kind in spec.items():
            value = table.get(key)
            if isinstance(kind, dict):
                if not isinstance(value, dict):
                    return f"'{where}{key}' is missing or not an object"
                if problem := wrong(value, kind, f"{where}{key}."):
                    return problem
            elif not isinstance(value, kind) or isinstance(value, bool):
                return f"'{where}{key}' is missing or not {_KINDS[kind]}"
        return None

    if problem := wrong(manifest, _SHAPE, ""):
        return problem
    for i, entry in enumerate(manifest["files"]):
        if not isinstance(entry, dict):
            return f"'files[{i}]' is not an object"
        if problem := wrong(entry, _FILE, f"files[{i}]."):
            return problem
    return None


_KINDS = {str: "a string", int: "an integer", list: "a list"}


def verify(art: Artifact, full: bool = False) -> None:
    """Check an artifact's files against its manifest before anything runs or is pushed: every path
    the manifest names stays inside the folder, the model file is one of the listed files, each file
    is there with its size, and its sha256 matches. The sha256 is read once per file and remembered
    (under the cache folder, by path, size, mtime and inode); ``full`` reads every file again."""
    folder = art.path
    files = {entry["path"]: entry for entry in art.manifest.files}
    for rel in files:
        inside(folder, rel, "a file")
    model_file = art.manifest.model_file
    if model_file is not None:
        inside(folder, model_file, "the model file")
        if model_file not in files and not any(p.startswith(model_file.rstrip("/") + "/") for p in files):
            raise EdgekitError(f"{folder}: the model file {model_file} is not among the files its manifest lists")
    again = "the artifact was changed or damaged after export; export it again"
    for rel, entry in files.items():
        path = folder / rel
        try:
            st = path.stat()
        except OSError:
            raise EdgekitError(f"{folder}: {rel} is missing; {again}") from None
        if not path.is_file():
            raise EdgekitError(f"{folder}: {rel} is not a file; {again}")
        if st.st_size != entry["bytes"]:
            raise EdgekitError(f"{folder}: {rel} has {st.st_size} bytes, its manifest says {entry['bytes']}; {again}")
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "sha256": entry["sha256"]}
        if not full and _verified(path) == stamp:
            continue
        if file_sha256(path) != entry["sha256"]:
            raise EdgekitError(f"{folder}: {rel} does not match the sha256 its manifest records; {again}")
        _remember(path, stamp)
    check_files(art)


def check_files(art: Artifact) -> None:
    """The runtime backend's own check of its files (``check_files(folder, runtime)``, where the backend
    has one), before any native library reads them: llama.cpp aborts the process on an impossible
    GGUF, and the file's sha256 may have been recorded for a crafted one."""
    import importlib

    from edgekit.errors import first_line

    runtime = art.manifest.runtime
    backend = runtime.get("backend") if hasattr(runtime, "get") else None
    if not isinstance(backend, str) or not backend.startswith("."):
        return  # a plug-in's backend: its own load says what is wrong
    try:
        module = importlib.import_module(backend, "edgekit.runtime")
    except ImportError:
        return
    check = getattr(module, "check_files", None)
    if check is not None:
        try:
            check(art.path, runtime)
        except (ValueError, OSError) as e:
            raise EdgekitError(f"{art.path}: {first_line(e)}") from None


def remember_verified(folder: Path, files) -> None:
    """Record files whose sha256 was just computed (by the export that wrote them) as verified."""
    for entry in files:
        path = folder / entry["path"]
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_size == entry["bytes"]:
            _remember(path, {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino,
                             "sha256": entry["sha256"]})


def inside(folder: Path, rel: object, what: str) -> Path:
    """``folder / rel`` where ``rel`` is a relative path that stays inside ``folder`` (links included)."""
    parts = PurePosixPath(rel).parts if isinstance(rel, str) else ()
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel or "\0" in rel:
        raise EdgekitError(f"{folder}/{MANIFEST}: {what} {rel!r} is not a path inside the artifact folder")
    path = folder / rel
    if not path.resolve().is_relative_to(folder.resolve()):
        raise EdgekitError(f"{folder}/{MANIFEST}: {what} {rel} leads outside the artifact folder")
    return path


def _verified_record(path: Path) -> Path:
    from edgekit.environment import cache_root

    key = hashlib.sha256(str(path.resolve()).encode(errors="surrogateescape")).hexdigest()[:32]
    return cache_root() / "verified" / f"{key}.json"


def _verified(path: Path) -> dict | None:
    try:
        return json.loads(_verified_record(path).read_text())
    except (OSError, ValueError):
        return None


def _remember(path: Path, stamp: dict) -> None:
    """Best effort: a cache that cannot be written only means the next check reads the file again."""
    record, tmp = _verified_record(path), None
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".partial", dir=record.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(stamp, f)
        os.replace(tmp, record)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def tokenizer(folder: Path):
    """The artifact's tokenizer.json, or a one-line error naming it."""
    from tokenizers import Tokenizer

    tok_file = folder / "tokenizer.json"
    if not tok_file.is_file():
        raise EdgekitError(f"{folder} has no tokenizer.json")
    try:
        return Tokenizer.from_file(str(tok_file))
    except Exception as e:  # the tokenizers library raises a bare Exception for a file it cannot parse
        raise EdgekitError(f"{tok_file} is not a valid tokenizer: "
                           f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None


def file_entries(folder: Path, model_file: str | None = None, only: list[str] | None = None) -> list[dict]:
    """Every file of the folder but the manifest (or the paths ``only``), with its size, sha256 and
    role (``file_role``)."""
    out = []
    for p in sorted(folder.rglob("*")) if only is None else [folder / name for name in only]:
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            out.append({"path": rel, "bytes": p.stat().st_size, "sha256": file_sha256(p),
                        "role": file_role(rel, model_file)})
    return out


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(jsonfile.dumps(manifest) + "\n")


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists (without --overwrite), that is not an edgekit
    artifact (--overwrite replaces only what edgekit wrote), that is or holds the current folder, or
    that cannot be written."""
    from edgekit.output import real

    here = Path.cwd().resolve()
    resolved = real("-o", out)  # a link that loops is one line
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
    """Refuse an output that is, is inside, or holds the model folder it is made from (found where the
    model was resolved: a builtin's, a hub download's or a GGUF's conversion in the cache)."""
    from edgekit.output import Read, Write, check_paths

    check_paths([Read("the model being exported", source)], [Write("-o", out, folder=True, replaces=True)])


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
        raise EdgekitError(f"--overwrite replaces only edgekit artifacts, and {folder} is not one (no valid "
                           f"{MANIFEST}){hint}") from None
    others = [p for p in present if p != MANIFEST and p not in listed]
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise EdgekitError(f"--overwrite replaces only what edgekit wrote, and {folder} also holds "
                           f"{others[0]}{more}{hint}")


@contextmanager
def staged(out: Path, replace: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A temporary folder beside ``out`` that becomes ``out`` only if the block completes.

    On any error or interrupt the temporary folder is removed and ``out`` is left as it was. The
    folder's name carries the writer's pid: one left by a killed process is removed by the next.
    ``replace``: called on an ``out`` found at the end, to refuse (raise) replacing it; None: an
    ``out`` that appeared meanwhile (another writer) is never replaced. The final rename cannot
    replace a folder another writer has just put there: this one is then discarded.
    """
    if out.is_symlink():  # a link to a folder: the folder it leads to is written (and replaced), the link stays
        out = out.resolve()
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
        try:
            yield tmp
        except Exception as e:
            # a full disk or quota, a read-only file system, a file too big, in whatever form a library
            # gives it (numpy's short write, a copy's list of errors): one line, naming the folder that is full
            from edgekit.output import room_problem

            problem = room_problem(out, e)
            if problem:
                raise EdgekitError(problem) from None
            raise
        old = None
        if out.exists() or out.is_symlink():
            if replace is None:
                raise EdgekitError(f"{out} appeared while this one was written (another export to the same folder?); "
                                   "it is left as it is, and this one discarded")
            replace(out)
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            try:
                out.rename(old)
            except FileNotFoundError:  # another writer moved it away first
                old = None
        try:
            tmp.rename(out)  # never replaces a non-empty folder: another writer's result stays
        except OSError as e:
            if old is not None and not out.exists():
                old.rename(out)
                old = None
            raise EdgekitError(f"cannot write {out}: another writer put a folder there meanwhile "
                               f"({e.strerror or e}); this one is discarded") from None
        finally:
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
