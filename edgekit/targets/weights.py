"""The ``weights`` summary every target's ``inspect`` reports: stored type -> bits, tensors, elements, bytes."""

from __future__ import annotations


def tally(weights: dict, dtype: str, bits: int | None, elements: int) -> None:
    """Add one stored tensor to a ``weights`` summary (dtype -> bits, tensors, elements, bytes)."""
    entry = weights.setdefault(dtype, {"bits": bits, "tensors": 0, "elements": 0, "bytes": 0})
    entry["tensors"] += 1
    entry["elements"] += elements
    entry["bytes"] += (elements * (bits or 8) + 7) // 8
