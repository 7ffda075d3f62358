"""Result files (written by ``edgekit profile -o``): loading and validation, into typed results."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit import jsonfile
from edgekit.core.results import RESULT_SCHEMA, RunResult
from edgekit.errors import EdgekitError


def load_results(path: Path) -> list[RunResult]:
    """One result file, or every ``*.json`` result under a folder (sorted by path)."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"no such result file or folder: {path}")
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    results = [r for f in files if (r := _read(f, strict=not path.is_dir())) is not None]
    if not results:
        raise EdgekitError(f"no edgekit result files in {path}")
    return results


def _read(file: Path, strict: bool) -> RunResult | None:
    try:
        data = jsonfile.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        if strict:
            raise EdgekitError(f"{file} is not a readable JSON file: {e}") from None
        return None
    if not (isinstance(data, dict) and data.get("schema") == RESULT_SCHEMA and "metrics" in data
            and "artifact" in data):
        if strict:
            raise EdgekitError(f"{file} is not an edgekit result (schema {RESULT_SCHEMA})")
        return None  # other JSON files in a results folder are not ours
    problem = _shape_problem(data)
    if problem:
        raise EdgekitError(f"{file} is a damaged edgekit result ({problem})")
    return RunResult.from_json(data, file=str(file))


def _shape_problem(data: dict) -> str | None:
    """What report, compare and check rely on, checked once here: the key strings, completeness, and
    each metric an object whose value is a number or null (null, like NaN, is a missing figure)."""
    artifact, device, metrics = data.get("artifact"), data.get("device"), data.get("metrics")
    if not isinstance(artifact, dict) or not isinstance(device, dict) or not isinstance(metrics, dict):
        return "'artifact', 'device' and 'metrics' must be objects"
    for where, table, key in (("artifact", artifact, "model"), ("artifact", artifact, "target"),
                              ("artifact", artifact, "recipe"), ("device", device, "name")):
        if not isinstance(table.get(key), str):
            return f"'{where}.{key}' is missing or not a string"
    if not isinstance(data.get("complete", False), bool):
        return "'complete' must be true or false"
    for name, m in metrics.items():
        if not isinstance(m, dict):
            return f"metric '{name}' is not an object"
        value = m.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metric '{name}' has the value {value!r}, not a number"
    env = data.get("environment")
    if env is not None and not isinstance(env, dict):
        return "'environment' must be an object"
    for key in ("host", "load"):
        if isinstance(env, dict) and env.get(key) is not None and not isinstance(env[key], dict):
            return f"'environment.{key}' must be an object"
    return None
