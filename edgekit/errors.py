"""Errors the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class EdgekitError(Exception):
    """Bad input or a failed step: printed as one line, exit code 2."""

    exit_code = 2


class ParityError(EdgekitError):
    """The artifact was written but does not agree with the PyTorch reference."""

    exit_code = 1


class Failures(EdgekitError):
    """Everything ran, and some of it failed (combinations of a sweep, checks of `edgekit check`): exit code 1."""

    exit_code = 1


_TELLING = ("what():", "GGML_ASSERT", "error", "failed")  # lines of a native log worth showing, best first
_BACKTRACE = ("#", "[Inferior", "[New LWP", "[Thread ", "Using host libthread_db")  # gdb's, never the cause


def telling_line(log: str) -> str:
    """The line of a native library's log (on a crash or a failure) that says most of why: an uncaught
    C++ exception's ``what():``, a ``GGML_ASSERT``, an error; never a line of a gdb backtrace."""
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.strip().startswith(_BACKTRACE)]
    lines = [line for line in lines if not line.split("\t", 1)[0].isdigit()]  # gdb's source lines: "360\tfile.c"
    for word in _TELLING:
        for line in reversed(lines):
            if word in line:
                return line.split("what():", 1)[-1].strip() if word == "what():" else line
    return lines[-1] if lines else "no message"


def signal_name(number: int) -> str:
    """A signal by its name (``SIGABRT``), or ``signal N`` for one Python does not name (a real-time one)."""
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def first_line(e: BaseException) -> str:
    """An exception in one line: its message's first line, or its type's name where it has no message
    (the one-line errors edgekit prints are made of these)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class _Signals:
    interrupted = False  # a Ctrl-C (SIGINT) or SIGTERM reached the CLI's handler in this run


def signalled(value: bool = True) -> None:
    """Record that a Ctrl-C or SIGTERM came (the CLI's handler), or forget it (``False``: a new run)."""
    _Signals.interrupted = value


def stop_if_interrupted() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C that a library swallowed (coremltools imports its optional
    dependencies under a bare ``except:``, torch among them: a Ctrl-C then was ignored and the command
    ran to the end)."""
    if _Signals.interrupted:
        raise KeyboardInterrupt


def interrupted(error: BaseException | None = None) -> bool:
    """Whether ``error`` is what a Ctrl-C became: one came in this run (``signalled``), or a
    KeyboardInterrupt is among the errors ``error`` was raised from. A library may catch the
    KeyboardInterrupt that Ctrl-C raises inside its own code and fail with an error of its own
    (pybind11's module init, e.g. onnxruntime-genai's, turns it into ImportError("initialization
    failed")): that is an interrupt, never a failure of the step."""
    if _Signals.interrupted:
        return True
    seen, stack = set(), [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        stack += [e.__cause__, e.__context__]
    return False
