"""Reading what a user gives: edgekit's TOML files (sweep.toml, edgekit.toml), where unknown keys and
wrong types are one-line errors, and every number (``NUMBERS``: the one table of each number's type and
range, read by the CLI's options, the TOML files, device profiles and a model's config.json alike)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.timings import MAX_DURATION_S
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


@dataclass(frozen=True)
class Number:
    """What a number a user gives may be: an integer or a (finite) number, from ``lo`` to ``hi``
    (``lo`` itself excluded where ``above``)."""

    kind: type  # int or float (an int is a float too; a bool is neither)
    lo: float
    hi: float
    above: bool = False

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        lo = f"above {_bound(self.lo)}" if self.above else f"from {_bound(self.lo)}"
        return f"{what} {lo} {'and at most' if self.above else 'to'} {_bound(self.hi)}"

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` ("must be ..., got ..."); None: nothing."""
        kinds = (int,) if self.kind is int else (int, float)
        ok = (isinstance(value, kinds) and not isinstance(value, bool)
              and (isinstance(value, int) or math.isfinite(value))  # an int of any size is finite
              and (value > self.lo if self.above else value >= self.lo) and value <= self.hi)
        return None if ok else f"must be {self}, got {_shown(value)}"

    def check(self, value, name: str):
        """``value`` where it is such a number; else an error naming ``name`` and the range."""
        problem = self.problem(value)
        if problem:
            raise EdgekitError(f"{name} {problem}")
        return value


def _bound(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _shown(value) -> str:
    """A value as an error line shows it: its repr, cut short (a 5,000-digit integer has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:  # Python's limit on the digits of an int's str
        return "an integer of more than 4,000 digits"
    return text if len(text) <= 40 else text[:37] + "..."


# every number a user gives, by the name a TOML/YAML file gives it (the CLI's option is the same with
# dashes: --prompt-len; --timeout is timeout_s), and the model config.json fields edgekit reads
NUMBERS = {
    # what to measure (`profile`, a sweep's [profile], `run`)
    "prompt_len": Number(int, 1, 1 << 20),
    "gen": Number(int, 2, 1 << 20),
    "runs": Number(int, 1, 10_000),
    "warmup": Number(int, 0, 10_000),
    "threads": Number(int, 1, 256),
    "eval_tokens": Number(int, 16, 1 << 24),
    "window": Number(int, 2, 1 << 20),
    "timeout_s": Number(float, 0, 7 * 24 * 3600, above=True),  # a week
    "duration_s": Number(float, 0, MAX_DURATION_S, above=True),  # a sustained run (profile --duration)
    # where a device is (a device profile's)
    "port": Number(int, 1, 65535),
    # what to generate (`run`)
    "max_new_tokens": Number(int, 1, 1 << 20),
    "temperature": Number(float, 0, 100),
    "top_p": Number(float, 0, 1, above=True),
    "seed": Number(int, 0, 2**32 - 1),
    # what to export
    "max_context": Number(int, 2, 1 << 20),
    "mixed_layers": Number(int, 0, 1024),  # a recipe's -mixN: decoder layers kept at 8 bits
    # how to judge (`compare`, a check's [baseline])
    "tolerance_pct": Number(float, 0, 1_000_000),
    # a model's config.json
    "num_hidden_layers": Number(int, 1, 1024),
    "hidden_size": Number(int, 1, 1 << 17),
    "intermediate_size": Number(int, 1, 1 << 20),
    "num_attention_heads": Number(int, 1, 4096),
    "num_key_value_heads": Number(int, 1, 4096),
    "head_dim": Number(int, 1, 4096),
    "vocab_size": Number(int, 1, 1 << 24),
    "max_position_embeddings": Number(int, 2, 1 << 24),
}


def number(table: dict, key: str, where: str, default=None):
    """``table[key]``, a number in ``NUMBERS[key]``'s range (``default`` where absent)."""
    if key not in table:
        return default
    return NUMBERS[key].check(table[key], f"{where}: '{key}'")


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
