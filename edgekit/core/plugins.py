"""Entry-point registries: one per extension point, built-ins registered like any plug-in.

A package adds a target or a transport with one line in its ``[project.entry-points]``::

    [project.entry-points."edgekit.targets"]
    mytarget = "my_package.my_target:TARGET"      # an edgekit.targets.Target
    [project.entry-points."edgekit.devices"]
    mytransport = "my_package.my_transport:Config"  # an edgekit.devices.TransportConfig subclass

edgekit's own targets and transports are listed the same way in its pyproject.toml. Names are read
from the installed metadata without importing anything; an entry is imported when it is used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from edgekit.errors import EdgekitError

TARGETS = "edgekit.targets"
DEVICES = "edgekit.devices"
_CACHES: list = []


def cached(fn: Callable) -> Callable:
    """``functools.cache``, cleared with the registries by ``clear()`` (a plug-in installed meanwhile)."""
    wrapped = functools.cache(fn)
    _CACHES.append(wrapped)
    return wrapped


def clear() -> None:
    """Forget what was read from the entry points (and everything cached with ``cached`` from it)."""
    for c in _CACHES:
        c.cache_clear()


@cached
def _entry_points(group: str) -> dict:
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=group)}
    if not found:
        raise EdgekitError(
            f"no '{group}' entry points installed: edgekit's package metadata is missing or stale; "
            "reinstall it (`pip install -e .` in a checkout, or `pip install --force-reinstall edgekit`)"
        )
    return found


def names(group: str) -> tuple[str, ...]:
    """The names registered in ``group``, without importing them."""
    return tuple(_entry_points(group))


@cached
def load(group: str, name: str):
    """The object registered as ``name`` in ``group``; a one-line error when there is none or it
    does not import."""
    found = _entry_points(group)
    if name not in found:
        kind = {TARGETS: "target", DEVICES: "transport"}.get(group, group)
        raise EdgekitError(f"unknown {kind} '{name}'; known: {', '.join(found)}")
    ep = found[name]
    try:
        obj = ep.load()
    except (ImportError, AttributeError) as e:
        raise EdgekitError(f"the {group} entry point '{name}' ({ep.value}) does not load: {e}") from None
    named = getattr(obj, "named", None)
    return named(name) if callable(named) else obj
