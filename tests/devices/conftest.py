"""Devices under test: a real OpenSSH sshd on 127.0.0.1 and a stand-in ``adb``; both reach this machine,
whose python (this venv's) plays the device's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.devices import DeviceProfile

sys.path.insert(0, str(Path(__file__).parent))  # for remote_checks (tests import with importlib)
from remote_checks import free_port  # noqa: E402

SSHD = Path("/usr/sbin/sshd")


@pytest.fixture(scope="session")
def artifact(tiny_models, tmp_path_factory) -> Path:
    """A real (tiny, fp32) ONNX artifact folder."""
    from edgekit.export import export
    from edgekit.recipes import parse
    from edgekit.source import resolve

    out = tmp_path_factory.mktemp("artifact") / "tiny-llama-onnx"
    export(resolve(str(tiny_models("llama"))), parse("onnx", "fp32"), out)
    return out


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    home: Path  # the sessions' $HOME
    known_hosts: Path
    identity: Path

    def profile(self, workdir: str, **overrides) -> DeviceProfile:
        fields = dict(
            name="test-sshd", transport="ssh", host="127.0.0.1", port=self.port, user=self.user,
            identity_file=str(self.identity), known_hosts_file=str(self.known_hosts),
            python=sys.executable, workdir=workdir, timeout_s=120.0,
        )
        return DeviceProfile(**{**fields, **overrides})


@pytest.fixture(scope="session")
def openssh() -> None:
    """Skips unless the OpenSSH server and client are installed (session scope: before any slow fixture)."""
    if not SSHD.is_file():
        pytest.skip(f"no OpenSSH server at {SSHD}: install openssh-server to test the ssh transport for real")
    missing = [tool for tool in ("ssh", "ssh-keygen") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"no {' or '.join(missing)} on PATH: install openssh-client to test the ssh transport")


@pytest.fixture(scope="module")
def sshd(openssh, tmp_path_factory) -> Sshd:
    """An OpenSSH server on a free loopback port, with throwaway host and client keys."""
    tmp = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", tmp / key], check=True)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    home = tmp / "home"
    home.mkdir()
    port = free_port()
    (tmp / "sshd_config").write_text(textwrap.dedent(f"""\
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {tmp / "host_key"}
        AuthorizedKeysFile {tmp / "authorized_keys"}
        PidFile {tmp / "sshd.pid"}
        StrictModes no
        UsePAM no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        SetEnv HOME={home}
        """))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege separation folder
    host_key = (tmp / "host_key.pub").read_text().split()[:2]
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    log = (tmp / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(tmp / "sshd_config")], stderr=log)
    try:
        _wait_for_port(port, proc, tmp / "sshd.log")
        import pwd

        yield Sshd(port, pwd.getpwuid(os.getuid()).pw_name, home, tmp / "known_hosts", tmp / "client_key")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with code {proc.returncode}: {log.read_text().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"sshd did not listen on port {port} within 15 s: {log.read_text().strip()}")


ADB_STANDIN = """\
#!{python}
# A stand-in adb: one phone, SERIAL, whose file system is this machine's, confined to ROOT, with $HOME = ROOT.
import os, shutil, subprocess, sys
ROOT, SERIAL = {root!r}, {serial!r}
args = sys.argv[1:]
serial = args[1] if args[:1] == ["-s"] else None
args = args[2:] if serial else args
if args == ["devices"]:
    print("List of devices attached\\n" + SERIAL + "\\tdevice")
    sys.exit(0)
if serial not in (None, SERIAL):
    sys.exit("adb: device '%s' not found" % serial)
if args[0] == "push":
    local, remote = args[1:]
    if not os.path.abspath(remote).startswith(ROOT + "/"):
        sys.exit("adb: error: failed to copy '%s' to '%s': Permission denied" % (local, remote))
    os.makedirs(os.path.dirname(remote), exist_ok=True)
    shutil.copyfile(local, remote)
    print("%s: 1 file pushed" % local)
    sys.exit(0)
if args[0] == "shell":
    env = dict(os.environ, HOME=ROOT)
    code = subprocess.run(["/bin/sh", "-c", " ".join(args[1:])], cwd=ROOT, env=env).returncode
    sys.exit(128 - code if code < 0 else code)
sys.exit("adb: unknown command " + args[0])
"""


@pytest.fixture
def phone(tmp_path) -> Path:
    """The stand-in phone's root folder (its $HOME)."""
    root = tmp_path / "phone"
    root.mkdir()
    return root


@pytest.fixture
def adb_profile(tmp_path, phone):
    """Profiles for the stand-in phone (serial ``emulator-5554``), through a stand-in ``adb``."""
    adb = tmp_path / "bin" / "adb"
    adb.parent.mkdir()
    adb.write_text(ADB_STANDIN.format(python=sys.executable, root=str(phone), serial="emulator-5554"))
    adb.chmod(0o755)

    def make(**overrides) -> DeviceProfile:
        fields = dict(name="test-phone", transport="adb", adb=str(adb), serial="emulator-5554",
                      python=sys.executable, workdir="~/edgekit", timeout_s=120.0)
        return DeviceProfile(**{**fields, **overrides})

    return make
