"""The calibration text of calibrated quantization recipes, as a model's token sequences.

The shipped text (``edgekit/data/calibration.txt``, English prose that shares no passage with the
evaluation texts) unless the recipe names another (``--calibration FILE``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgekit.errors import EdgekitError

SHIPPED = Path(__file__).parent / "data" / "calibration.txt"


def token_windows(source, path: str | Path | None, window: int) -> tuple[list[list[int]], dict]:
    """The text at ``path`` (None: the shipped one) tokenized by the model's tokenizer and cut into
    sequences of ``window`` tokens (a last, shorter one kept when it is at least half a window).
    Returns the sequences and what the manifest records of them (text name, sha256, tokens)."""
    from transformers import AutoTokenizer

    path = Path(path) if path is not None else SHIPPED
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"cannot read the calibration text {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    except (OSError, ValueError) as e:
        raise EdgekitError(f"{source.spec} has no usable tokenizer for calibration: {str(e).splitlines()[0]}") from None
    ids = tokenizer(text)["input_ids"]
    sequences = [ids[i : i + window] for i in range(0, len(ids), window)]
    if len(sequences) > 1 and len(sequences[-1]) < window // 2:
        sequences.pop()
    if not sequences or len(sequences[0]) < 2:
        raise EdgekitError(f"the calibration text {path} has too few tokens ({len(ids)})")
    used = sum(len(s) for s in sequences)
    return sequences, {"text": path.name, "sha256": hashlib.sha256(data).hexdigest(), "tokens": used}
