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
