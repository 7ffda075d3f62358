"""The ExecuTorch backend refuses a file that is not a whole program before its runtime reads it (the
runtime aborts the process on some malformed headers)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from edgekit.runtime.executorch import check_program


def _header(identifier: bytes = b"ET12", program: int = 64, segment_base: int = 128, segments: int = 64) -> bytes:
    return struct.pack("<I", 60) + identifier + b"eh00" + struct.pack("<IQQQ", 32, program, segment_base, segments)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not an ExecuTorch program"),
        (b"\xff" * 4096, "not an ExecuTorch program"),
        (_header(b"\xf4\x90\x80\x80").ljust(192, b"\0"), "not an ExecuTorch program"),
        (_header(b"ABCD").ljust(192, b"\0"), "not an ExecuTorch program"),
        (_header().ljust(150, b"\0"), "truncated or corrupt"),
        (_header(program=10**9).ljust(192, b"\0"), "truncated or corrupt"),
    ],
)
def test_check_program_refuses(tmp_path, data, message):
    path = tmp_path / "model.pte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        check_program(path)


def test_check_program_passes_a_whole_header(tmp_path):
    path = tmp_path / "model.pte"
    path.write_bytes(_header().ljust(192, b"\0"))
    check_program(path)
    with pytest.raises(ValueError, match="cannot read"):
        check_program(tmp_path / "missing.pte")


@pytest.mark.parametrize("garbage, command", [("random", "run"), ("ff", "inspect"), ("identifier", "run")])
def test_a_corrupt_program_is_one_line_not_an_abort(forge_artifact, garbage, command):
    """In a subprocess: before the check, the runtime killed the whole process with SIGABRT."""
    pytest.importorskip("executorch")
    data = {"random": os.urandom(1 << 16), "ff": b"\xff" * (1 << 16),
            "identifier": struct.pack("<I", 60) + b"\xf4\x90\x80\x80" + os.urandom(1 << 16)}[garbage]
    folder = forge_artifact("executorch", "model.pte", data, max_prefill=8)
    proc = subprocess.run([sys.executable, "-m", "edgekit", command, str(folder)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert "not an ExecuTorch program" in proc.stderr
