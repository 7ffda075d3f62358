"""The calibration text of calibrated quantization recipes (gguf ``-imatrix``, onnx ``-gptq``, ...).

The shipped text (``edgekit/data/calibration.txt``, English prose that shares no passage with the
evaluation texts) unless the recipe names another (``--calibration FILE``). Read before any weights
load, so that a missing or empty text is said before the export's heavy work.
"""

from __future__ import annotations

from pathlib import Path

from edgekit import data
from edgekit.errors import EdgekitError

WINDOW = 256  # tokens per calibration sequence (the evaluation's window)


def text(recipe) -> data.Text:
    """The recipe's calibration text (``recipe.calibration``, else the shipped one)."""
    path = Path(recipe.calibration) if recipe.calibration else data.calibration_path()
    try:
        found = data.read(path)
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"cannot read the calibration text {path}: {getattr(e, 'strerror', None) or e}") from None
    if not found.text.strip():
        raise EdgekitError(f"the calibration text {path} is empty")
    return found


def record(found: data.Text, tokens: int, **more) -> dict:
    """What a manifest records of a calibration: the text's name and sha256, the tokens used."""
    return {"text": found.name, "sha256": found.sha256, "tokens": tokens, **more}


def token_ids(source, found: data.Text) -> list[int]:
    """The calibration text as the model's tokenizer reads it (no special tokens added)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    except (OSError, ValueError) as e:
        raise EdgekitError(f"{source.spec} has no usable tokenizer for calibration: {str(e).splitlines()[0]}") from None
    return tokenizer(found.text, add_special_tokens=False)["input_ids"]


def token_windows(source, recipe, window: int = WINDOW) -> tuple[list[list[int]], dict]:
    """The recipe's calibration text tokenized and cut into sequences of ``window`` tokens (a last,
    shorter one kept when it is at least half a window). Returns the sequences and their record."""
    found = text(recipe)
    ids = token_ids(source, found)
    sequences = [ids[i : i + window] for i in range(0, len(ids), window)]
    if len(sequences) > 1 and len(sequences[-1]) < window // 2:
        sequences.pop()
    if not sequences or len(sequences[0]) < 2:
        raise EdgekitError(f"the calibration text {found.path} has too few tokens ({len(ids)})")
    return sequences, record(found, sum(len(s) for s in sequences))
