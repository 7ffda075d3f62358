"""Text shipped with edgekit: the default evaluation text (held out from builtin:tiny's training)."""

from __future__ import annotations

from pathlib import Path

EVAL_TEXT = Path(__file__).parent / "eval.txt"


def eval_text() -> str:
    return EVAL_TEXT.read_text()
