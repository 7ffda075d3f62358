"""Run a command and stream its stdout lines, each within a deadline: what every transport uses."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator

from edgekit.errors import signal_name, telling_line


class DeviceError(Exception):
    """A transport or runner failure; the session names the device and the step."""


def stream_lines(argv: list[str], stdin: bytes, timeout: float) -> Iterator[str]:
    """Start ``argv``, feed it ``stdin``, yield stdout lines; each must come within ``timeout`` s.

    Raises DeviceError on a timeout (the process is killed) or a non-zero exit (with the last
    line of stderr).
    """
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise DeviceError(f"cannot start {argv[0]}: {e.strerror or e}") from None
    lines: queue.Queue = queue.Queue()
    stderr: list[bytes] = []

    def feed():
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except OSError:
            pass

    def read_out():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def read_err():
        stderr.extend(proc.stderr)

    err_reader = threading.Thread(target=read_err, daemon=True)
    for thread in (threading.Thread(target=feed, daemon=True), threading.Thread(target=read_out, daemon=True),
                   err_reader):
        thread.start()
    try:
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise DeviceError(f"no answer within {timeout:g} s (timeout)") from None
            if line is None:
                break
            yield line.decode(errors="replace").rstrip("\n")
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"did not exit within {timeout:g} s") from None
        if code != 0:
            err_reader.join(timeout)  # the process is gone, but its last words may still be in the pipe
            log = b"".join(stderr).decode(errors="replace")
            tail = log.strip().splitlines()
            # a crash (an abort in a native library): the log's telling line, not gdb's backtrace's last
            reason = telling_line(log) if code < 0 else tail[-1] if tail else "no message"
            raise DeviceError(f"{argv[0]} exited with {_describe(code)} ({reason})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_text(argv: list[str], stdin: bytes = b"", timeout: float = 60) -> str:
    """Run to completion; return stdout."""
    return "\n".join(stream_lines(argv, stdin, timeout))


def _describe(code: int) -> str:
    return f"code {code}" if code >= 0 else signal_name(-code)
