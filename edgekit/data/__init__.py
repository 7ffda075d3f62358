"""Texts shipped with edgekit (sources and licence: README.md here): the evaluation texts and the
calibration text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
EVAL_TEXT = HERE / "eval.txt"  # builtin:tiny's held-out stories
EVAL_PROSE = HERE / "eval_prose.txt"  # English prose: every other model
CALIBRATION_TEXT = HERE / "calibration.txt"  # calibrated quantization; shares no passage with the evaluation texts
TINY_MODEL = "builtin:tiny"
# the parity check's prompts (edgekit.parity): the reference's greedy continuations of them are compared
PARITY_PROMPTS = (
    "Once upon a time",
    "The little dog ran to the park and",
    'Tom looked at the big red ball. "Can I',
    "def add(a, b):\n    return",
)


@dataclass(frozen=True)
class Text:
    name: str  # the file's name
    path: Path
    text: str
    sha256: str  # of the file's bytes: results on different texts are never alike


def read(path: Path) -> Text:
    """A text file, read as UTF-8 (raises OSError / UnicodeDecodeError)."""
    data = Path(path).read_bytes()
    return Text(Path(path).name, Path(path), data.decode("utf-8"), hashlib.sha256(data).hexdigest())


def default_eval_path(model: str) -> Path:
    """The shipped evaluation text for a model, by the spec its manifest's ``source.model`` records:
    builtin:tiny keeps its own held-out stories, every other model gets English prose."""
    return EVAL_TEXT if model == TINY_MODEL else EVAL_PROSE


def calibration_path() -> Path:
    """The default calibration text of calibrated quantization recipes (never an evaluation text)."""
    return CALIBRATION_TEXT


def eval_text() -> str:
    """builtin:tiny's held-out stories."""
    return EVAL_TEXT.read_text()
