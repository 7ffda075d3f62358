"""The ``edgekit`` command: typer wiring only; each command group lives in its own module."""

from __future__ import annotations

import functools
import os
import signal
import sys

import typer

from edgekit.errors import EdgekitError, interrupted, signalled, stop_if_interrupted

INTERRUPTED = "interrupted; nothing half-written was left behind"

app = typer.Typer(
    name="edgekit",
    help="Export small language models to on-device targets, quantize them, and measure how they run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from edgekit import __version__

        typer.echo(f"edgekit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="print edgekit's version and exit"),
) -> None:
    """Export small language models to on-device targets, quantize them, and measure how they run."""


def command(name: str, group: typer.Typer | None = None):
    """Register a command (on ``group``, a command group, or the top level); Ctrl-C inside it becomes a
    one-line error (typer would swallow it). (An empty path, like any empty argument, is refused before
    parsing: ``_empty_argument``.)"""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                raise EdgekitError(INTERRUPTED) from None

        (group or app).command(name)(wrapper)
        return fn

    return decorate


def _empty_argument(args: list[str]) -> str | None:
    """The refusal of an empty string among the command line's arguments, naming the option it was given
    to (a text option's '' is never read as "not given", nor a path's as the current folder); None: none."""
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg.endswith("=") and len(arg) > 3:
            return f"{arg[:-1]} is empty: give a value, or leave the option out"
        if arg == "":
            before = args[i - 1] if i else ""
            if before.startswith("-") and before not in _flags():
                return f"{before} is empty: give a value, or leave the option out"
            return "an argument is empty (''): give a value"
    return None


def _flags() -> set[str]:
    """Every on/off option of every command (those take no value)."""
    import typing

    commands = [*app.registered_commands,
                *(c for group in app.registered_groups for c in group.typer_instance.registered_commands)]
    out = {"--help", "--version"}
    for command in commands:
        for hint in typing.get_type_hints(command.callback, include_extras=True).values():
            if typing.get_origin(hint) is typing.Annotated and typing.get_args(hint)[0] is bool:
                for info in typing.get_args(hint)[1:]:  # in Annotated, typer keeps the first name as "default"
                    names = [getattr(info, "default", None), *(getattr(info, "param_decls", None) or ())]
                    out.update(d for decl in names if isinstance(decl, str) for d in decl.split("/"))
    return out


def bounded(key: str):
    """An option's callback: its value must be in ``edgekit.config.NUMBERS[key]``'s range (a usage
    error naming the option otherwise); None (not given) passes."""

    def check(value):
        from edgekit.config import NUMBERS

        problem = None if value is None else NUMBERS[key].problem(value)
        if problem:
            raise typer.BadParameter(problem)
        return value

    return check


def _register() -> None:
    from edgekit.cli import check, compare, devices, export, generate, inspect, models, profile, recipes, report, sweep  # noqa: F401  (importing registers the commands)


def main(argv: list[str] | None = None) -> None:
    """Entry point: known errors become one line on stderr and an exit code, never a traceback."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _main(argv)
    finally:
        signalled(False)  # a Ctrl-C of this run says nothing of the next (the tests run many in one process)
        for s, handler in before.items():
            # the command is over: a signal while the interpreter shuts down (atexit callbacks) ends the
            # process as the signal does, never as a KeyboardInterrupt traceback "ignored in atexit
            # callback"; a caller's own handler (an in-process run) is given back
            signal.signal(s, signal.SIG_DFL if argv is None else handler)


def _main(argv: list[str] | None) -> None:
    from typer.exceptions import Abort, Exit, TyperException

    from edgekit import output

    _register()
    signalled(False)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # even where the parent ignored it
    empty = _empty_argument(sys.argv[1:] if argv is None else list(argv))
    if empty:  # before any parsing: typer reads a path's '' as the current folder
        output.error(empty)
        sys.exit(2)
    try:
        from edgekit.core.results import busy_share

        busy_share()  # the environment's own settings, before any work
        code = app(args=argv, prog_name="edgekit", standalone_mode=False)
        stop_if_interrupted()  # a Ctrl-C that a library swallowed: the command is still one that was interrupted
    except EdgekitError as e:
        if interrupted(e):  # a library's own error for the Ctrl-C that came inside it
            _said_interrupted(output)
        output.error(str(e))
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, Abort):
        _said_interrupted(output)
    except TyperException as e:  # usage errors: one line too, saying where the usage is
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare `edgekit` or group: the help is the answer
            e.show()
            sys.exit(e.exit_code)
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        output.error(" ".join(e.format_message().split()) + hint)
        sys.exit(getattr(e, "exit_code", 2))
    except Exit as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as e:  # a bug or a library failure nobody anticipated: still one line
        if interrupted(e):
            _said_interrupted(output)
        if os.environ.get("EDGEKIT_DEBUG"):
            raise
        room = output.no_room(e)
        if room:  # a full disk (or quota, or a read-only file system) is never "unexpected", whatever its form
            name = getattr(e, "filename", None)
            output.error(f"cannot write {name}: {room}" if isinstance(name, str) and name else
                         f"a write failed: {room}")
            sys.exit(2)
        first = (str(e).strip().splitlines() or [""])[0]
        output.error(f"unexpected {type(e).__name__}: {first} (set EDGEKIT_DEBUG=1 for the traceback)")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _said_interrupted(output) -> None:
    output.error(INTERRUPTED)
    sys.exit(2)


def _interrupt(signum, frame):
    signalled()
    raise KeyboardInterrupt
