"""A GGUF file's header and hyper-parameters, read in plain Python and checked before llama.cpp sees the file.

llama.cpp aborts the process (a ``GGML_ASSERT``, an uncaught C++ exception) on some impossible
hyper-parameters, e.g. more layers than its ``LLAMA_MAX_LAYERS`` (512), and on others logs a hundred
lines before it fails: a crafted or damaged file is refused here with one line instead. Only the
metadata is read (the key/value section at the file's start); the tensors are not touched.
No numpy, no edgekit import: this runs on devices too.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

MAGIC = b"GGUF"
# GGUF value types: struct format of the scalar ones; 8 is a string, 9 an array
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_KEPT_ARRAY = 4096  # numeric arrays up to this length are kept (per-layer head counts); longer ones skipped

# "<arch>.<key>" -> (least, most, whether a per-layer array may hold it): llama.cpp's own limits where it
# has one (512 layers), else far beyond any real model and far below what exhausts a machine
BOUNDS: dict[str, tuple[int, int, bool]] = {
    "block_count": (1, 512, False),
    "context_length": (1, 1 << 24, False),
    "embedding_length": (1, 1 << 18, False),
    "feed_forward_length": (0, 1 << 21, True),
    "vocab_size": (1, 1 << 24, False),
    "attention.head_count": (1, 1 << 12, True),
    "attention.head_count_kv": (0, 1 << 12, True),
    "attention.key_length": (1, 1 << 16, False),
    "attention.value_length": (1, 1 << 16, False),
    "expert_count": (0, 1 << 12, False),
    "expert_used_count": (0, 1 << 12, False),
}
MAX_ENTRIES = 1 << 20  # tensors, metadata keys: far beyond any real file


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.at + size > len(self.data):
            raise ValueError("the file ends inside its metadata (truncated)")
        (value,) = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return value

    def string(self) -> bytes:
        n = self.take("Q")
        if self.at + n > len(self.data):
            raise ValueError("the file ends inside its metadata (truncated)")
        self.at += n
        return bytes(self.data[self.at - n : self.at])

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string().decode("utf-8", errors="replace")
        if kind == _ARRAY:
            inner, count = self.take("I"), self.take("Q")
            if count > len(self.data) - self.at:  # every element takes at least a byte
                raise ValueError("the file ends inside its metadata (truncated)")
            if inner in _SCALARS and count <= _KEPT_ARRAY:
                return [self.take(_SCALARS[inner]) for _ in range(count)]
            if inner in _SCALARS:
                self.at += count * struct.calcsize("<" + _SCALARS[inner])
                return None
            for _ in range(count):
                self.value(inner)
            return None
        raise ValueError(f"unknown metadata value type {kind}")


def read_metadata(path: Path) -> dict:
    """The file's metadata keys and values (long arrays and string arrays as None)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:4] != MAGIC:
            raise ValueError("not a GGUF file")
        version, tensors, entries = struct.unpack_from("<IQQ", head, 4) if len(head) == 24 else (0, 0, 0)
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}; llama.cpp reads versions 2 and 3")
        if tensors > MAX_ENTRIES or entries > MAX_ENTRIES:
            raise ValueError(f"claims {tensors} tensors and {entries} metadata keys")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:  # only the metadata's pages are read
            r = _Reader(data)
            r.at = 24
            out = {}
            for _ in range(entries):
                key = r.string().decode("utf-8", errors="replace")
                out[key] = r.value(r.take("I"))
    return out


def check(path: Path) -> dict:
    """Refuse, with one line, a file whose hyper-parameters llama.cpp cannot take (``BOUNDS``); returns its
    metadata. The line does not name the file: the caller does."""
    meta = read_metadata(path)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ValueError("names no general.architecture")
    for key, (least, most, per_layer) in BOUNDS.items():
        name = f"{arch}.{key}"
        if name not in meta:
            continue
        value = meta[name]
        values = value if per_layer and isinstance(value, list) else [value]
        if not values or any(isinstance(v, (bool, float)) or not isinstance(v, int) for v in values):
            raise ValueError(f"{name} is {value!r}, not a whole number")
        low = 0 if isinstance(value, list) else least  # a per-layer list may hold 0 (a layer without attention)
        bad = next((v for v in values if not low <= v <= most), None)
        if bad is not None or max(values) < least:
            raise ValueError(f"{name} is {bad if bad is not None else value}, "
                             f"outside what llama.cpp can take ({least} to {most}): a damaged or crafted file")
    heads, width = meta.get(f"{arch}.attention.head_count"), meta.get(f"{arch}.embedding_length")
    if (isinstance(heads, int) and isinstance(width, int) and f"{arch}.attention.key_length" not in meta
            and width % heads):
        raise ValueError(f"{arch}.embedding_length {width} is not a multiple of "
                         f"{arch}.attention.head_count {heads}: a damaged or crafted file")
    return meta
