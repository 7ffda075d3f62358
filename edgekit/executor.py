"""Executors: how the phases of a sweep (plan -> export -> profile) run their tasks.

A phase hands an executor a task (a module-level function, partially applied to frozen
dataclasses, so that an executor may run it in another process or on another host), the items
to run it over, and where a task's progress goes: ``note(item, text)``. The executor returns the
tasks' results in the items' order. ``Serial`` runs each task in turn in this process: the default,
and what a machine with one device needs; an executor over a device lab (a Ray cluster: exports as
CPU/memory-sized tasks, each device a resource of the host it is plugged into) implements the same
``map`` without the sweep changing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Note = Callable[[str], None]  # a task's progress: one line of what it is doing now


class Executor(Protocol):
    def map(self, phase: str, task: Callable[[T, Note], R], items: Sequence[T],
            note: Callable[[T, str], None]) -> Iterator[R]:
        """``task(item, note)`` for each item (``phase``: "export" or "profile", for an executor that
        places them differently); the results in the items' order, each as soon as it and those
        before it are done."""
        ...


class Serial:
    """Each task in turn, in this process (Ctrl-C stops the task running and the sweep)."""

    def map(self, phase: str, task: Callable[[T, Note], R], items: Sequence[T],
            note: Callable[[T, str], None]) -> Iterator[R]:
        for item in items:
            yield task(item, lambda text, item=item: note(item, text))
