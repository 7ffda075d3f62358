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
    assert [p.name for p in tmp_path.iterdir()] == ["art"]  # nothing staged is left
