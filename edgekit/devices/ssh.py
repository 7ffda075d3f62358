"""A board or any Linux/macOS host over the system OpenSSH client, with the user's keys and known_hosts.

Host keys are verified: an unknown one is refused unless the profile sets ``accept_new_host_key``
(trust on first use), and a changed one always is. Files travel as one stream over ssh's stdin to the
device's python (no scp, so no second quoting dialect and no sftp server needed).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from dataclasses import dataclass

from edgekit.devices import DeviceProfile, TransportConfig
from edgekit.devices.process import DeviceError
from edgekit.devices.remote import RemoteTransport, exit_status, word

CONNECT_TIMEOUT_S = 10
CHUNK = 1 << 20

# Device side, stdin: the folder as a JSON line, then per file a JSON line {"path", "bytes"} and its bytes.
RECEIVE_SCRIPT = r"""
import json, os, sys
source = sys.stdin.buffer
root = json.loads(source.readline())
for line in iter(source.readline, b""):
    meta = json.loads(line)
    path = os.path.join(root, meta["path"])
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    left = meta["bytes"]
    with open(path + ".partial", "wb") as f:
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                sys.exit("the stream ended early")
            f.write(chunk)
            left -= len(chunk)
    os.replace(path + ".partial", path)
"""


@dataclass(frozen=True)
class Config(TransportConfig):
    host: str
    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    known_hosts_file: str | None = None
    accept_new_host_key: bool = False  # trust-on-first-use; off: unknown host keys are refused

    def connect(self, profile: DeviceProfile) -> Transport:
        return Transport(profile)

    def refusal(self, profile: DeviceProfile, target, path) -> str | None:
        """No ssh client on this machine: said before any work."""
        import shutil

        if shutil.which("ssh"):
            return None
        return "ssh not found on this machine (Debian/Ubuntu: apt-get install openssh-client)"


class Transport(RemoteTransport):
    @property
    def destination(self) -> str:
        p = self.profile
        return f"{p.user}@{p.host}" if p.user else p.host

    def shell(self, command: str) -> list[str]:
        p = self.profile
        if p.host.startswith("-"):
            raise DeviceError(f"'{p.host}' is not a host name")
        options = {
            "BatchMode": "yes",
            "ConnectTimeout": str(CONNECT_TIMEOUT_S),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "4",
            "StrictHostKeyChecking": "accept-new" if p.accept_new_host_key else "yes",
        }
        if p.known_hosts_file:
            options["UserKnownHostsFile"] = '"' + os.path.expanduser(p.known_hosts_file) + '"'  # ssh splits on spaces
        argv = ["ssh", "-p", str(p.port)]
        if p.identity_file:  # only that key: an agent full of others can use up the server's MaxAuthTries
            argv += ["-i", os.path.expanduser(p.identity_file), "-o", "IdentitiesOnly=yes"]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        # the login shell may be any shell: let it start a POSIX sh with the command
        return [*argv, "--", self.destination, f"exec /bin/sh -c {shlex.quote(command)}"]

    def copy(self, local_dir: Path, paths: list[str], remote_dir: str) -> None:
        argv = self.shell(f"{word(self.profile.python)} -c {shlex.quote(RECEIVE_SCRIPT)}")
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr)
            except OSError as e:
                raise DeviceError(f"cannot start ssh: {e.strerror or e}") from None
            sender = _Sender(proc.stdin, local_dir, paths, remote_dir)
            threading.Thread(target=sender.run, daemon=True).start()
            try:
                while not _exited(proc, 0.2):  # each chunk must go within the timeout
                    if time.monotonic() - sender.progress > self.profile.timeout_s:
                        raise DeviceError(f"copying stalled for {self.profile.timeout_s:g} s (timeout)")
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            if sender.error:
                raise DeviceError(sender.error)
            if proc.returncode != 0:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace").strip().splitlines()
                raise DeviceError(f"ssh exited with code {proc.returncode} ({tail[-1] if tail else 'no message'})")

    def explain(self, error: DeviceError) -> DeviceError:
        p = self.profile
        code, reason = exit_status(error)
        if str(error).startswith("cannot start ssh"):
            return DeviceError(f"{error}: install the OpenSSH client (Debian: apt-get install openssh-client)")
        if code != 255:
            return super().explain(error)
        if "Host key verification failed" in reason:
            return DeviceError(
                f"host key verification failed for {p.host} (add it to known_hosts, or set accept_new_host_key: true)"
            )
        if "Permission denied" in reason:
            return DeviceError(f"{self.destination} refused our ssh key ({reason.rsplit(': ', 1)[-1]})")
        if "connect to host" in reason or "Could not resolve" in reason:
            return DeviceError(f"cannot reach {p.host}:{p.port} ({reason.rsplit(': ', 1)[-1]})")
        return DeviceError(f"the connection to {p.host}:{p.port} dropped ({reason})")

    def info(self) -> dict:
        p = self.profile
        return {"transport": p.transport, "host": p.host, "user": p.user, "port": p.port}


def _exited(proc: subprocess.Popen, wait_s: float) -> bool:
    try:
        proc.wait(wait_s)
        return True
    except subprocess.TimeoutExpired:
        return False


class _Sender:
    """Writes the stream RECEIVE_SCRIPT reads; a local failure ends the stream early, so the copy fails."""

    def __init__(self, pipe, local_dir: Path, paths: list[str], remote_dir: str):
        self.pipe, self.local_dir, self.paths, self.remote_dir = pipe, local_dir, paths, remote_dir
        self.progress = time.monotonic()
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.pipe.write(json.dumps(self.remote_dir).encode() + b"\n")
            for path in self.paths:
                self._send(path)
        except BrokenPipeError:
            pass  # the other side went away: its exit status says why
        except OSError as e:
            self.error = f"cannot read {e.filename or 'a file'}: {e.strerror or e}"
        finally:
            try:
                self.pipe.close()
            except OSError:
                pass

    def _send(self, path: str) -> None:
        with open(self.local_dir / path, "rb") as f:
            left = os.fstat(f.fileno()).st_size
            self.pipe.write(json.dumps({"path": path, "bytes": left}).encode() + b"\n")
            while left:
                chunk = f.read(min(left, CHUNK))
                if not chunk:
                    raise OSError(0, "it shrank while being copied", str(self.local_dir / path))
                self.pipe.write(chunk)
                left -= len(chunk)
                self.progress = time.monotonic()
