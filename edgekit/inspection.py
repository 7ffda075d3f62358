"""What an artifact holds (``edgekit inspect``), read from its model file by the target's ``inspect``.

Every target answers with the same keys where it can: ``inputs``/``outputs`` (and ``states``) as
name, shape and dtype; ``ops`` (op type -> count); ``weights`` (stored type -> bits, tensors,
elements, bytes); plus what is particular to it (ExecuTorch: ``delegation``; GGUF: ``metadata``, the
file's key/values, where a GGUF has no graph inputs, outputs or ops).
"""

from __future__ import annotations

from pathlib import Path

from edgekit import artifact, targets
from edgekit.errors import stop_if_interrupted


def inspect(path: Path, verify: bool = False) -> dict:
    art = artifact.load(path)
    artifact.verify(art, full=verify)
    m = art.manifest
    held = targets.get(art.target).inspect(art.path, m.runtime)
    stop_if_interrupted()  # a Ctrl-C its library swallowed (coremltools'): nothing is printed
    return {
        "artifact": str(art.path),
        "target": art.target,
        "recipe": art.recipe,
        "model": m.model,
        "model_type": m.model_type,
        "size_bytes": art.size_bytes,  # the model files, tokenizer and config (a profile's file_mb)
        # which of those roles the artifact has files for (what the size line names)
        "size_roles": [r for r in artifact.OWN_ROLES if any(art.role(f) == r for f in m.files)],
        "other_bytes": art.other_bytes,  # anything else in the folder
        "max_context": m.max_context,
        "parity": "skipped" if m.parity_skipped else ("passed" if m.parity_passed else "failed"),
        # the standard runtime the export checked it in (None: not checked)
        "standard_runtime": m.standard_runtime,
        "parity_skipped": m.parity_skipped,  # why (a string: its runtime is not on this machine), or True/False
        **held,
    }
