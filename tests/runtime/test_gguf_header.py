"""A GGUF's hyper-parameters are checked in plain Python before llama.cpp reads the file (it aborts the
process on some: a crafted block_count of 100000 was a SIGABRT and a 62-line gdb backtrace, issue 30)."""

from __future__ import annotations

import struct

import pytest

from edgekit.runtime.gguf_header import check


def _gguf(path, **values):
    """A GGUF header (version 3, no tensors) holding ``general.architecture = llama`` and ``values``
    (``llama.<key>``, uint32; a list: an array of uint32)."""
    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s.encode())) + s.encode()

    entries = [string("general.architecture") + struct.pack("<I", 8) + string("llama"),
               string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("b")]
    for key, value in values.items():
        name = string("llama." + key.replace("__", "."))
        if isinstance(value, list):
            entries.append(name + struct.pack("<IIQ", 9, 4, len(value)) + struct.pack(f"<{len(value)}I", *value))
        else:
            entries.append(name + struct.pack("<II", 4, value))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries)) + b"".join(entries))
    return path


GOOD = dict(block_count=4, context_length=512, embedding_length=256, attention__head_count=4)


def test_sane_hyper_parameters_pass(tmp_path):
    meta = check(_gguf(tmp_path / "m.gguf", **GOOD, attention__head_count_kv=[0, 2, 2, 2]))
    assert meta["llama.block_count"] == 4 and meta["llama.attention.head_count_kv"] == [0, 2, 2, 2]


@pytest.mark.parametrize(("change", "says"), [
    (dict(block_count=100000), "llama.block_count is 100000, outside what llama.cpp can take (1 to 512)"),
    (dict(block_count=0), "llama.block_count is 0"),
    (dict(attention__head_count=0), "llama.attention.head_count is 0"),
    (dict(attention__head_count=[0, 0, 0, 0]), "llama.attention.head_count is [0, 0, 0, 0]"),
    (dict(context_length=1 << 31), "llama.context_length is 2147483648"),
    (dict(embedding_length=250), "embedding_length 250 is not a multiple of llama.attention.head_count 4"),
])
def test_impossible_hyper_parameters_are_one_line(tmp_path, change, says):
    with pytest.raises(ValueError) as e:
        check(_gguf(tmp_path / "m.gguf", **{**GOOD, **change}))
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("data", "says"), [
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 5), "truncated"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60), "truncated"),
    (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "GGUF version 1"),
    (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0), "claims 1099511627776 tensors"),
    (b"GGML" + bytes(20), "not a GGUF file"),
])
def test_damaged_headers_are_one_line(tmp_path, data, says):
    (tmp_path / "m.gguf").write_bytes(data)
    with pytest.raises(ValueError, match=says):
        check(tmp_path / "m.gguf")
