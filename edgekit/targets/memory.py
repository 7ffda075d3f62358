"""Keeping an export's resident memory down: freed heap handed back, checkpoint pages let go.

``from_pretrained`` maps the safetensors files and the model's float tensors view that mapping:
every page an exporter reads (to quantize, cast or serialize a weight) stays in the process's
resident set until the last view dies, on top of what is made from it. Those pages are clean copies
of the file, so they can be dropped at any time: a later read faults them back in from the page cache.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterable
from pathlib import Path

_MADV_DONTNEED = 4  # Linux


def release_heap() -> None:
    """Collect, and hand freed heap back to the system (glibc keeps it otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def drop_file_pages(files: Iterable[Path]) -> int:
    """Take this process's mappings of ``files`` out of its resident set; returns the bytes dropped.

    Only mappings without private (copy-on-write) pages are touched: for those the file holds every
    byte, so dropping loses nothing. Linux only; elsewhere (or without /proc) it does nothing.
    """
    names = {str(Path(f).resolve()) for f in files}
    try:
        regions = _file_mappings(names)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return 0
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    dropped = 0
    for start, end, private in regions:
        if private == 0 and libc.madvise(start, end - start, _MADV_DONTNEED) == 0:
            dropped += end - start
    return dropped


def _file_mappings(names: set[str]) -> list[tuple[int, int, int]]:
    """(start, end, private kB) of each mapping of one of ``names``, from /proc/self/smaps."""
    regions, current = [], None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=5)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):  # a mapping's header
                current = None
                if len(head) == 6 and head[5].strip() in names:
                    start, end = (int(x, 16) for x in head[0].split("-"))
                    current = [start, end, 0]
                    regions.append(current)
            elif current is not None and head[0] == "Anonymous:":
                current[2] = int(head[1])  # copy-on-write pages of a file mapping count here
    return [tuple(r) for r in regions]
