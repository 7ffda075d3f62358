"""The ``edgekit`` command: typer wiring only; each command group lives in its own module."""

from __future__ import annotations

import signal
import sys

import typer

from edgekit.errors import EdgekitError

app = typer.Typer(
    name="edgekit",
    help="Export small language models to on-device targets, quantize them, and measure how they run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    from edgekit.cli import export, recipes, run

    for module in (export, recipes, run):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: known errors become one line on stderr and an exit code, never a traceback."""
    from typer.exceptions import Abort, Exit, TyperException

    from edgekit import output

    _register()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app(args=argv, prog_name="edgekit", standalone_mode=False)
    except EdgekitError as e:
        output.error(str(e))
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, Abort):
        output.error("interrupted; nothing half-written was left behind")
        sys.exit(2)
    except TyperException as e:  # usage errors: typer prints them the way it always does
        e.show() if hasattr(e, "show") else output.error(e.format_message())
        sys.exit(e.exit_code)
    except Exit as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
