import subprocess
import sys

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
