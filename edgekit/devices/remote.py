"""What the ssh and adb transports share: a device reached through a POSIX shell, with a python there.

A subclass says how to run a shell command on the device (``shell``: the local argv) and how to copy
files there (``copy``). Everything else is here: one ``python -c`` call on the device hashes what a
folder already holds so unchanged files are never sent twice, the runner package is installed under
a folder named by its own hash, and ``check`` asks the device's python what it has.

Nothing from a profile or an artifact reaches the device's shell unquoted: folders travel as JSON on
the python's stdin (it expands a leading ``~/`` itself), and the few shell words go through ``word``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from edgekit.devices import DeviceProfile
from edgekit.devices.process import DeviceError, run_text, stream_lines
from edgekit.errors import signal_name

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"  # copied as the package below
RUNNER_PACKAGE = "edgekit_runtime"
CHECK_TIMEOUT_S = 30.0

# Device side, stdin {"dir", "paths"}: make the folder; print its absolute path and the sha256 of
# each listed file it already holds.
HASH_SCRIPT = r"""
import hashlib, json, os, sys
request = json.load(sys.stdin)
root = os.path.abspath(os.path.expanduser(request["dir"]))
if not os.path.isdir(root):
    os.makedirs(root)
found = {}
for path in request["paths"]:
    full = os.path.join(root, path)
    if os.path.isfile(full):
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        found[path] = h.hexdigest()
print(json.dumps({"dir": root, "sha256": found}))
"""

# Device side (or this machine's), stdin: the runtimes to report (a JSON list). What the runner will run on.
CHECK_SCRIPT = r"""
import json, platform, sys
def version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return None
names = json.loads(sys.stdin.read() or "[]") or []
print(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                  "system": platform.system(), "numpy": version("numpy"), **{n: version(n) for n in names}}))
"""

# Device side, stdin {"dir", "paths"}: each file as a JSON line {"path", "base64"}.
PULL_SCRIPT = r"""
import base64, json, os, sys
request = json.load(sys.stdin)
root = os.path.expanduser(request["dir"])
for path in request["paths"]:
    with open(os.path.join(root, path), "rb") as f:
        print(json.dumps({"path": path, "base64": base64.b64encode(f.read()).decode()}))
"""


def check_request() -> bytes:
    """CHECK_SCRIPT's stdin: every registered target's runtime distributions."""
    from edgekit.targets import runtime_distributions

    return json.dumps(list(runtime_distributions())).encode()


def word(text: str) -> str:
    """``text`` as one word for the device's shell; a leading ``~/`` stays the device user's home."""
    if text.startswith("~/"):
        return '"$HOME"/' + shlex.quote(text[2:])
    return shlex.quote(text)


def exit_status(error: DeviceError) -> tuple[int | None, str]:
    """The exit code and last stderr line of a failed command (``process.stream_lines``'s message)."""
    match = re.search(r" exited with code (\d+) \((.*)\)$", str(error))
    return (int(match[1]), match[2]) if match else (None, str(error))


def parse_json_line(out: str, what: str) -> dict:
    """The last line of ``out`` as a JSON object (a login script may print before it)."""
    lines = out.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        answer = None
    if not isinstance(answer, dict):
        tail = lines[-1][:200] if lines else "no output"
        raise DeviceError(f"{what} gave no JSON answer ({tail})")
    return answer


def runner_files() -> list[dict]:
    """The runner package's files, as artifact file entries."""
    return [
        {"path": p.name, "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(RUNTIME_DIR.glob("*.py"))
    ]


def files_digest(files: list[dict]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


def _checked_path(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts or "\\" in path:
        raise DeviceError(f"refusing to copy '{path}': file paths must stay inside the artifact folder")
    return path


class RemoteTransport:
    """The shared part; ``Transport`` in ssh.py and adb.py fill in ``shell``, ``copy`` and ``info``."""

    def __init__(self, profile: DeviceProfile):
        self.profile = profile
        self._runner: list[str] | None = None

    # -- what a transport provides --------------------------------------------------------------

    def shell(self, command: str) -> list[str]:
        """The local argv that runs ``command`` in the device's shell, with stdin and stdout connected."""
        raise NotImplementedError

    def copy(self, local_dir: Path, paths: list[str], remote_dir: str) -> None:
        """Copy ``local_dir/path`` to ``remote_dir/path`` for each path (``remote_dir`` exists, absolute)."""
        raise NotImplementedError

    def explain(self, error: DeviceError) -> DeviceError:
        """The same failure said in the transport's terms (unreachable, refused, ...)."""
        code, _ = exit_status(error)
        if code == 127:
            return DeviceError(f"'{self.profile.python}' not found on the device (set python: in the profile)")
        if code is not None and 128 < code < 128 + signal.NSIG:  # the device's shell: killed by a signal
            name = signal_name(code - 128)
            return DeviceError(f"killed on the device by {name}" + (" (out of memory?)" if name == "SIGKILL" else ""))
        return error

    # -- the transport interface ----------------------------------------------------------------

    def push(self, local_dir: Path, files: list[dict]) -> str:
        local_dir = Path(local_dir)
        return self.sync(local_dir, files, f"artifacts/{local_dir.name}-{files_digest(files)}")

    def runner(self) -> list[str]:
        if self._runner is None:
            files = runner_files()
            package = self.sync(RUNTIME_DIR, files, f"runner-{files_digest(files)}/{RUNNER_PACKAGE}")
            command = f"cd {shlex.quote(posixpath.dirname(package))} && {word(self.profile.python)} -m {RUNNER_PACKAGE}"
            self._runner = self.shell(command)
        return self._runner

    def run(self, argv: list[str], stdin: bytes, timeout: float) -> Iterator[str]:
        try:
            yield from stream_lines(argv, stdin, timeout)
        except DeviceError as e:
            raise self.explain(e) from None

    def pull(self, remote_dir: str, paths: list[str], local_dir: Path) -> None:
        import base64

        argv = self.shell(f"{word(self.profile.python)} -c {shlex.quote(PULL_SCRIPT)}")
        request = json.dumps({"dir": remote_dir, "paths": [_checked_path(p) for p in paths]}).encode()
        try:
            for line in stream_lines(argv, request, self.profile.timeout_s):
                if line.startswith("{"):
                    answer = json.loads(line)
                    dest = Path(local_dir) / _checked_path(answer["path"])
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.with_name(dest.name + ".partial").write_bytes(base64.b64decode(answer["base64"]))
                    dest.with_name(dest.name + ".partial").replace(dest)
        except DeviceError as e:
            raise self.explain(e) from None

    def check(self) -> dict:
        return self.python(CHECK_SCRIPT, json.loads(check_request()), timeout=CHECK_TIMEOUT_S)

    # -- shared steps ---------------------------------------------------------------------------

    def sync(self, local_dir: Path, files: list[dict], remote_rel: str) -> str:
        """Make ``<workdir>/<remote_rel>`` hold ``files``, copying only those missing or different there."""
        paths = [_checked_path(f["path"]) for f in files]
        there = self.python(HASH_SCRIPT, {"dir": posixpath.join(self.profile.workdir, remote_rel), "paths": paths})
        missing = [f["path"] for f in files if there["sha256"].get(f["path"]) != f["sha256"]]
        if missing:
            try:
                self.copy(local_dir, missing, there["dir"])
            except DeviceError as e:
                raise self.explain(e) from None
        return there["dir"]

    def python(self, script: str, request: object = None, timeout: float | None = None) -> dict:
        """Run ``script`` with the device's python, ``request`` as JSON on its stdin; its JSON answer."""
        argv = self.shell(f"{word(self.profile.python)} -c {shlex.quote(script)}")
        try:
            out = run_text(argv, json.dumps(request).encode(), timeout or self.profile.timeout_s)
        except DeviceError as e:
            raise self.explain(e) from None
        return parse_json_line(out, f"the device's python ({self.profile.python})")
