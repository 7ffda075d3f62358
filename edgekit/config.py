"""Reading edgekit's TOML files (sweep.toml, edgekit.toml): unknown keys and wrong types are one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from edgekit.errors import EdgekitError


def read_toml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgekitError(f"{path}: not valid TOML ({e})") from None


def known_keys(table: dict, allowed, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise EdgekitError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(allowed)}")


def typed(table: dict, key: str, kind, where: str, default=None):
    """``table[key]`` checked against ``kind`` (a type or tuple of types; bool is never an int)."""
    if key not in table:
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
        raise EdgekitError(f"{where}: '{key}' must be {names}, got {value!r}")
    return value


def string_list(table: dict, key: str, where: str, required: bool = True) -> tuple[str, ...]:
    value = table.get(key)
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if not value or not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise EdgekitError(f"{where}: '{key}' must be a non-empty list of strings, got {value!r}")
    return tuple(value)


def relative_to(config_file: Path, value: str) -> Path:
    """A path written in a config file, relative to that file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(config_file).parent / p


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table", list: "a list"}
