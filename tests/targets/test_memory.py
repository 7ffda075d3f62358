"""Checkpoint pages are let go only where the file holds every byte, and read back unchanged."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from edgekit.targets.memory import _file_mappings, drop_file_pages, release_heap

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")


def _resident_kb(path: Path) -> int:
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                inside = line.rstrip().endswith(str(path))
            elif inside and head[0] == "Rss:":
                total += int(head[1])
    return total


def test_clean_pages_are_dropped_and_read_back(tmp_path):
    path = tmp_path / "weights.bin"
    data = bytes(range(256)) * 4096 * 4  # 4 MiB
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE) as m:
        assert m[:] == data and _resident_kb(path.resolve()) >= 4096
        assert drop_file_pages([path]) >= len(data)
        assert _resident_kb(path.resolve()) == 0
        assert m[:] == data  # faulted back in from the file


def test_mapping_with_private_writes_is_left_alone(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * (1 << 20))
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE,
                                         prot=mmap.PROT_READ | mmap.PROT_WRITE) as m:
        m[0] = 7  # a copy-on-write page: dropping it would lose the write
        assert [r[2] for r in _file_mappings({str(path.resolve())})] == [4]
        assert drop_file_pages([path]) == 0
        assert m[0] == 7


def test_unmapped_files_and_heap_release_are_harmless(tmp_path):
    assert drop_file_pages([tmp_path / "absent.safetensors"]) == 0
    release_heap()
