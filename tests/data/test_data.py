"""The shipped texts: which evaluation text a model gets, and what the texts are."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from edgekit import data


def _words(path: Path) -> list[str]:
    return re.findall(r"[a-z0-9']+", path.read_text().lower())


def _ngrams(words: list[str], n: int = 8) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_builtin_tiny_keeps_its_stories_every_other_model_gets_prose():
    assert data.default_eval_path("builtin:tiny") == data.EVAL_TEXT
    for model in ("builtin:smollm2-135m", "HuggingFaceTB/SmolLM2-135M", "/models/tiny", "edgekit/models/tiny"):
        assert data.default_eval_path(model) == data.EVAL_PROSE
    assert data.calibration_path() == data.CALIBRATION_TEXT


@pytest.mark.parametrize("path", [data.EVAL_PROSE, data.CALIBRATION_TEXT], ids=lambda p: p.name)
def test_prose_texts_are_plain_ascii_of_a_few_thousand_words(path):
    text = path.read_text()
    assert text.isascii() and "<" not in text and "#" not in text  # raw text: no markup, no header
    assert 2600 <= len(text.split()) <= 3200


def test_calibration_shares_no_8_word_sequence_with_an_evaluation_text():
    calibration = _ngrams(_words(data.CALIBRATION_TEXT))
    for path in (data.EVAL_PROSE, data.EVAL_TEXT):
        shared = calibration & _ngrams(_words(path))
        assert not shared, f"{path.name}: {[' '.join(s) for s in sorted(shared)[:5]]}"


def test_every_shipped_data_file_is_package_data():
    root = Path(data.__file__).parent
    pyproject = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["edgekit"]
    files = [p for p in root.iterdir() if p.is_file() and p.suffix != ".py"]
    assert {p.name for p in files} >= {"eval.txt", "eval_prose.txt", "calibration.txt"}
    for p in files:
        assert any(fnmatch(f"data/{p.name}", g) for g in globs), p.name


def test_read_records_name_and_sha256(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(b"abc")
    text = data.read(path)
    assert (text.name, text.text) == ("mine.txt", "abc")
    assert text.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
