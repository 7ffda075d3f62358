import shutil
import subprocess
import sys

import pytest

from edgekit import artifact


def test_staged_removes_the_staging_folders_of_dead_writers(tmp_path):
    out = tmp_path / "art"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".art.{dead.stdout.strip()}.x1.partial"
    alive = tmp_path / f".art.{1}.x2.partial"  # pid 1 is always running: its writer may still be busy
    orphan.mkdir()
    alive.mkdir()
    with artifact.staged(out) as tmp:
        (tmp / "f").write_text("x")
    assert (out / "f").read_text() == "x"
    assert not orphan.exists() and alive.exists()


def test_overwrite_refuses_an_artifact_that_gained_files_during_the_export(tiny_artifacts, tmp_path):
    from edgekit import artifact
    from edgekit.errors import EdgekitError

    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts("llama"), out)
    with pytest.raises(EdgekitError, match="late.txt"):
        with artifact.staged(out, artifact.check_replaceable) as tmp:
            (tmp / "x").write_text("new")
            (out / "late.txt").write_text("written while the export ran")
    assert (out / "late.txt").is_file() and (out / "edgekit.json").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".partial", ".old"))]  # nothing staged is left


@pytest.fixture
def art(tiny_artifacts, tmp_path):
    """A copy of a tiny ONNX artifact this test may damage."""
    folder = tmp_path / "art"
    shutil.copytree(tiny_artifacts("llama"), folder)
    return folder


def _edit_manifest(folder, change):
    import json

    manifest = json.loads((folder / "edgekit.json").read_text())
    change(manifest)
    (folder / "edgekit.json").write_text(json.dumps(manifest))


def _damage(path, offset: int = 0, length: int = 400_000):
    data = bytearray(path.read_bytes())
    length = min(length, len(data) - offset)
    data[offset : offset + length] = bytes(length)
    path.write_bytes(bytes(data))


def test_verify_catches_changed_truncated_and_missing_files(art):
    from edgekit.errors import EdgekitError

    artifact.verify(artifact.load(art))  # as exported: passes
    data = next(f for f in ("model.onnx.data", "model.onnx") if (art / f).is_file())
    _damage(art / data)
    with pytest.raises(EdgekitError, match=f"{data} does not match the sha256"):
        artifact.verify(artifact.load(art))
    (art / data).write_bytes(b"short")
    with pytest.raises(EdgekitError, match=f"{data} has 5 bytes, its manifest says"):
        artifact.verify(artifact.load(art))
    (art / data).unlink()
    with pytest.raises(EdgekitError, match=f"{data} is missing"):
        artifact.verify(artifact.load(art))


def test_verify_remembers_a_checked_file_until_it_changes(art, monkeypatch):
    import os

    from edgekit.errors import EdgekitError

    artifact.verify(artifact.load(art))
    reads = []
    real = artifact.file_sha256
    monkeypatch.setattr(artifact, "file_sha256", lambda p: reads.append(p.name) or real(p))
    artifact.verify(artifact.load(art))
    assert reads == []  # every file was checked before and has not changed since
    tokenizer = art / "tokenizer.json"
    st = tokenizer.stat()
    _damage(tokenizer, 0, 10)  # the same size, and the old mtime put back: only a full check sees it
    os.utime(tokenizer, ns=(st.st_atime_ns, st.st_mtime_ns))
    artifact.verify(artifact.load(art))
    with pytest.raises(EdgekitError, match="tokenizer.json does not match"):
        artifact.verify(artifact.load(art), full=True)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["runtime"].update(model_file="../../other/model.onnx"), "is not a path inside the artifact"),
        (lambda m: m["runtime"].update(model_file="/etc/passwd"), "is not a path inside the artifact"),
        (lambda m: m["runtime"].update(model_file="config.json/x"), "is not among the files"),
        (lambda m: m["files"].append({"path": "../secret", "bytes": 1, "sha256": "0" * 64}), "is not a path inside"),
    ],
)
def test_manifest_paths_stay_inside_the_artifact(art, cli, change, message):
    _edit_manifest(art, change)
    for command in ("run", "inspect", "profile"):
        r = cli(command, art)
        assert r.code == 2 and message in r.err and r.err.count("\n") == 1, (command, r.err)


def test_a_link_out_of_the_artifact_is_refused(art, tmp_path):
    from edgekit.errors import EdgekitError

    (tmp_path / "elsewhere.json").write_text((art / "tokenizer.json").read_text())
    (art / "tokenizer.json").unlink()
    (art / "tokenizer.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(EdgekitError, match="leads outside the artifact folder"):
        artifact.verify(artifact.load(art))


def test_damaged_artifact_is_refused_before_it_runs_or_is_profiled(art, cli):
    data = next(f for f in ("model.onnx.data", "model.onnx") if (art / f).is_file())
    _damage(art / data, 1000)
    for args in (("run", art, "-n", "2"), ("profile", art, "--runs", "1", "--no-accuracy"), ("inspect", art)):
        r = cli(*args)
        assert r.code == 2 and "does not match the sha256" in r.err and r.err.count("\n") == 1, (args, r.err)


def test_two_exports_to_one_folder_at_once_never_both_succeed(tiny_models, tmp_path):
    """The second export finishes while the first is still writing: the first must not replace it
    (nor claim success) without --overwrite."""
    import json

    from edgekit.errors import EdgekitError
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    out = tmp_path / "out"
    done = []

    def meanwhile(stage: str) -> None:
        if stage == "tokenizer" and not done:
            done.append(export(resolve(str(tiny_models("llama"))), parse("onnx", "fp32"), out, parity=False))

    with pytest.raises(EdgekitError, match="appeared while this one was written"):
        export(resolve(str(tiny_models("llama"))), parse("onnx", "int8"), out, parity=False, on_stage=meanwhile)
    assert json.loads((out / "edgekit.json").read_text())["recipe"]["name"] == "fp32"  # the one that finished first
    assert artifact.verify(artifact.load(out)) is None
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".partial", ".old"))]


def test_the_final_rename_never_replaces_a_folder_another_writer_put_there(tmp_path, monkeypatch):
    """Between the last check and the rename another writer may still arrive: the rename itself
    refuses to replace a non-empty folder."""
    from edgekit.errors import EdgekitError

    out = tmp_path / "art"
    real_exists = type(out).exists

    def arrives_after_the_check(self, *args, **kwargs):
        seen = real_exists(self, *args, **kwargs)
        if self == out and not seen:
            out.mkdir()
            (out / "theirs").write_text("x")
        return seen

    with pytest.raises(EdgekitError, match="another writer put a folder there"):
        with artifact.staged(out) as tmp:
            (tmp / "mine").write_text("y")
            monkeypatch.setattr(type(out), "exists", arrives_after_the_check)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["theirs"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".partial", ".old"))]


def test_the_size_is_the_model_files_tokenizer_and_config(tiny_models, tmp_path, cli):
    """An export keeps no second copy of the vocabulary the source carries, every file has its role,
    and the size (file_mb, inspect's) counts the model files, tokenizer and config, nothing else."""
    import hashlib
    import json

    source = tmp_path / "src"
    shutil.copytree(tiny_models("llama"), source)
    for name in ("tokenizer.model", "vocab.json", "merges.txt"):
        (source / name).write_bytes(b"\0" * 100_000)
    out = tmp_path / "art"
    r = cli("export", source, "-o", out, "--no-parity", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    names = {f["path"]: f["role"] for f in manifest["files"]}
    assert not {"tokenizer.model", "vocab.json", "merges.txt"} & set(names) and not (out / "tokenizer.model").exists()
    assert (names["model.onnx"] == "model" and names["tokenizer.json"] == "tokenizer"
            and names["config.json"] == "config")
    art = artifact.load(out)
    card = (out / "README.md").stat().st_size  # the model card: listed, not the model's size
    assert names["README.md"] == "other" and art.other_bytes == card
    assert art.size_bytes == sum(f["bytes"] for f in manifest["files"]) - card

    extra = b"x" * 5000  # a file the manifest lists that is none of the model's own: not its size
    (out / "notes.bin").write_bytes(extra)
    manifest["files"].append({"path": "notes.bin", "bytes": len(extra), "sha256": hashlib.sha256(extra).hexdigest()})
    for f in manifest["files"]:
        f.pop("role", None)  # an older manifest: the roles come from the names
    (out / "edgekit.json").write_text(json.dumps(manifest))
    art = artifact.load(out)
    assert art.other_bytes == len(extra) + card
    assert art.size_bytes == sum(f["bytes"] for f in manifest["files"]) - len(extra) - card
    r = cli("inspect", out)
    assert r.code == 0 and "other files" in r.out
    assert artifact.file_role("model.onnx.data", "model.onnx") == "model"
    assert artifact.file_role("model.mlpackage/Data/weights.bin", "model.mlpackage") == "model"
