"""Result files (written by ``edgekit profile -o``): loading, validation and the key that pairs them."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit import jsonfile
from edgekit.errors import EdgekitError
from edgekit.profile.session import RESULT_SCHEMA


def load_results(path: Path) -> list[dict]:
    """One result file, or every ``*.json`` result under a folder (sorted by path)."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"no such result file or folder: {path}")
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    results = [r for f in files if (r := _read(f, strict=not path.is_dir())) is not None]
    if not results:
        raise EdgekitError(f"no edgekit result files in {path}")
    return results


def _read(file: Path, strict: bool) -> dict | None:
    try:
        data = jsonfile.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        if strict:
            raise EdgekitError(f"{file} is not a readable JSON file: {e}") from None
        return None
    if not (isinstance(data, dict) and data.get("schema") == RESULT_SCHEMA and "metrics" in data and "artifact" in data):
        if strict:
            raise EdgekitError(f"{file} is not an edgekit result (schema {RESULT_SCHEMA})")
        return None  # other JSON files in a results folder are not ours
    data.setdefault("_file", str(file))
    return data


def key(result: dict) -> tuple[str, str, str, str]:
    """What a result measures: (model, target, recipe, device)."""
    a = result["artifact"]
    return (a["model"], a["target"], a["recipe"], result["device"]["name"])
