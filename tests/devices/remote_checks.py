"""Checks every remote transport passes; the device is this machine, so remote paths are local ones."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
from pathlib import Path

import pytest

from edgekit.devices.process import DeviceError
from edgekit.source import file_sha256

WEIRD_NAME = """it's a "model" $(cd;touch pwned) `touch pwned2`;touch pwned3"""


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entries(folder: Path) -> list[dict]:
    """Every file of the folder, manifest included, as push() takes them."""
    return [
        {"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def count_copies(transport) -> list[list[str]]:
    """The paths of each copy() the transport makes from now on."""
    calls: list[list[str]] = []
    copy = transport.copy

    def counting(local_dir, paths, remote_dir):
        calls.append(list(paths))
        copy(local_dir, paths, remote_dir)

    transport.copy = counting
    return calls


def request(remote_dir: str, **fields) -> bytes:
    base = {"protocol": 1, "artifact": remote_dir, "threads": 1, "prompt_ids": [1, 2, 3], "gen": 4, "runs": 1,
            "warmup": 0}
    return json.dumps({**base, **fields}).encode()


def push_skips_what_is_there(transport, folder: Path) -> Path:
    calls = count_copies(transport)
    files = entries(folder)
    remote = Path(transport.push(folder, files))
    assert remote.is_absolute() and remote.name.startswith(folder.name + "-")
    assert calls == [[f["path"] for f in files]]
    assert entries(remote) == files
    mtimes = {p: p.stat().st_mtime_ns for p in remote.rglob("*")}

    assert Path(transport.push(folder, files)) == remote  # all there: nothing sent
    assert len(calls) == 1
    assert {p: p.stat().st_mtime_ns for p in remote.rglob("*")} == mtimes

    damaged = remote / files[0]["path"]
    damaged.write_bytes(b"half a file")
    transport.push(folder, files)  # only the file that differs is sent again
    assert calls[1:] == [[files[0]["path"]]]
    assert entries(remote) == files
    return remote


def changed_artifact_goes_to_a_new_folder(transport, folder: Path, remote: Path) -> None:
    (folder / "config.json").write_text('{"changed": true}\n')
    assert Path(transport.push(folder, entries(folder))) != remote


def runner_runs_the_artifact(transport, artifact: Path) -> None:
    remote = transport.push(artifact, entries(artifact))
    argv = transport.runner()
    events = [json.loads(line) for line in transport.run(argv, request(remote), timeout=120)]
    assert [e["event"] for e in events] == ["hello", "loaded", "run", "done"], events
    assert events[0]["runner"]["python"] == platform.python_version()
    assert events[2]["warmup"] is False


def runner_is_installed_once(make_transport) -> None:
    first = make_transport()
    argv = first.runner()
    second = make_transport()
    calls = count_copies(second)
    assert second.runner() == argv and calls == []


def weird_names_run_nothing(transport, tmp_path: Path, home: Path) -> None:
    folder = tmp_path / WEIRD_NAME
    folder.mkdir()
    (folder / "edgekit.json").write_text("{}\n")
    (folder / "weird $(touch pwned4) 'name'.bin").write_bytes(b"\0\1\2")
    remote = Path(transport.push(folder, entries(folder)))
    assert remote.name.startswith(WEIRD_NAME) and entries(remote) == entries(folder)
    answer = []
    with pytest.raises(DeviceError):  # the runner starts in its folder, refuses the request, exits 1
        answer.extend(transport.run(transport.runner(), b'{"protocol": 0}', timeout=60))
    assert json.loads(answer[0])["event"] == "error"
    for where in {home, Path.home(), remote, remote.parent}:
        assert not [p for p in where.iterdir() if p.name.startswith("pwned")], where


def check_reports_the_python(transport) -> None:
    info = transport.check()
    assert info["python"] == platform.python_version()
    assert info["machine"] == platform.machine()
    assert info["numpy"] and info["onnxruntime"]


def killed_runner_is_an_error(transport, artifact: Path, ancestor: str | None = None) -> str:
    """Kill the device's runner mid-run, or its nearest ancestor process whose command starts with
    ``ancestor``; the error message."""
    remote = transport.push(artifact, entries(artifact))
    argv = transport.runner()
    lines = transport.run(argv, request(remote, runs=100_000), timeout=60)
    with pytest.raises(DeviceError) as caught:
        for i, line in enumerate(lines):
            if i == 2:  # hello, loaded, the first run
                assert json.loads(line)["event"] == "run"
                os.kill(_runner_pid(Path(remote).parents[1], ancestor), signal.SIGKILL)  # <workdir>/artifacts/<name>
    return str(caught.value)


def _runner_pid(workdir: Path, ancestor: str | None) -> int:
    """The runner started from this workdir (found by command line and working folder), or an ancestor."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            is_runner = b"edgekit_runtime" in _cmdline(int(pid)) and cwd.is_relative_to(workdir)
        except OSError:
            continue
        if is_runner:
            found.append(int(pid))
    assert len(found) == 1, f"expected one runner started from {workdir}, found {found}"
    pid = found[0]
    while ancestor and not _cmdline(pid)[0].startswith(ancestor.encode()):
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert pid > 1, f"no ancestor {ancestor}"
    return pid


def _cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def pull_brings_files_back(transport, folder: Path, dest: Path) -> None:
    """What push sent comes back by pull, byte for byte; a path out of the folder is refused."""
    files = entries(folder)
    remote = transport.push(folder, files)
    transport.pull(remote, [f["path"] for f in files], dest)
    assert entries(dest) == files
    with pytest.raises(DeviceError, match="must stay inside"):
        transport.pull(remote, ["../outside"], dest)
