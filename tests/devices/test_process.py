"""The command runner every transport uses: a crash is named by its signal and the log's telling line."""

from __future__ import annotations

import pytest

from edgekit.devices.process import DeviceError, run_text


def test_a_native_abort_is_named_with_its_cause_not_gdb_s_last_line():
    """ggml prints a gdb backtrace on abort; the error once read "signal 6 (360 ../csu/libc-start.c: No
    such file or directory)" (issue 30)."""
    script = ("echo 'llama-model.cpp:123: GGML_ASSERT(n_layer <= LLAMA_MAX_LAYERS) failed' >&2; "
              "echo '#1 0x00007f in _start ()' >&2; echo '360\t../csu/libc-start.c: No such file or directory.' >&2; "
              "echo '[Inferior 1 (process 1) detached]' >&2; kill -ABRT $$")
    with pytest.raises(DeviceError) as e:
        run_text(["sh", "-c", script], timeout=30)
    assert str(e.value) == ("sh exited with SIGABRT "
                            "(llama-model.cpp:123: GGML_ASSERT(n_layer <= LLAMA_MAX_LAYERS) failed)")


def test_a_failure_keeps_the_last_line_of_its_log():
    with pytest.raises(DeviceError, match=r"exited with code 3 \(the last words\)$"):
        run_text(["sh", "-c", "echo 'an error early on' >&2; echo 'the last words' >&2; exit 3"], timeout=30)
