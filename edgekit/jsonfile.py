"""JSON as every parser reads it: a NaN or infinite number is written as null (a missing figure,
which fails any check that reads it), never as the bare ``NaN``/``Infinity`` tokens Python's json
module writes by default and strict parsers reject; reading turns such tokens in older files into
null too."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping


def dumps(data, *, indent: int | None = 2, **kwargs) -> str:
    return json.dumps(finite(data), indent=indent, allow_nan=False, **kwargs)


def loads(text: str):
    return json.loads(text, parse_constant=lambda token: None)


def finite(data):
    """``data`` with every non-finite float replaced by None (containers copied, the rest as is)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):  # a dict, or a typed result's read-only mapping
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data
