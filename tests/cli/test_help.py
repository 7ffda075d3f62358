import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "onnxruntime", "optimum", "onnx", "executorch", "coremltools")


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from edgekit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_unknown_command_is_a_usage_error(cli):
    r = cli("frobnicate")
    assert r.code == 2



@pytest.mark.parametrize(
    "args, message",
    [
        (("export", "--max-context", "0", "builtin:tiny", "-o", "x"), "Invalid value for '--max-context'"),
        (("profile", "art", "--threads", "0"), "Invalid value for '--threads'"),
        (("profile", "art", "--timeout", "0"), "Invalid value for '--timeout'"),
        (("profile", "art", "--runs", "many"), "Invalid value for '--runs'"),
        (("compare", "a", "b", "--tolerance", "-1"), "Invalid value for '--tolerance'"),
        (("run",), "Missing argument 'artifact'"),
        (("run", "art", "--frobnicate"), "No such option: --frobnicate"),
        (("frobnicate",), "No such command 'frobnicate'"),
        (("devices", "setup"), "Missing argument 'device'"),
    ],
)
def test_usage_errors_are_one_line(cli, args, message):
    r = cli(*args)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("error: ") and message in r.err and r.err.count("\n") == 1, r.err
    assert r.err.rstrip().endswith(" --help`)")  # where the usage is


def test_bare_edgekit_shows_the_help(cli):
    r = cli()
    assert "Usage: edgekit" in r.out + r.err and "export" in r.out + r.err


def test_every_command_takes_json(cli):
    from typer.main import get_command

    from edgekit.cli import _register, app

    _register()

    def commands(group, path=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield (*path, name)  # a group that is a command itself (`edgekit devices`)
                yield from commands(command, (*path, name))
            else:
                yield (*path, name)

    names = list(commands(get_command(app)))
    assert len(names) >= 12, names
    for name in names:
        r = cli(*name, "--help")
        assert r.code == 0 and "--json" in r.out, (name, r.out)


def test_a_signal_after_the_command_ends_is_no_traceback(tmp_path):
    """A SIGTERM right after "finished" printed a 15-line "Exception ignored in atexit callback"
    traceback (issue 30): once the command is over, a signal ends the process as the signal does."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = ("import atexit, os, signal, time\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(2)))\n"
              "from edgekit.cli import main\nmain()\n")
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", script, "recipes"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": root}, cwd=tmp_path)
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
