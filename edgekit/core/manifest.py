"""The typed manifest of an artifact (``edgekit.json``): what was exported, from what, how, and its files.

Read-only; its JSON is the file's shape, every key this edgekit does not know kept as it is. Readers
use its attributes (``manifest.model_file``, ``manifest.parity_passed``); each says what an older or
hand-made manifest that lacks the key reads as.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edgekit.core.results import frozen, plain

MANIFEST_SCHEMA = 1


@dataclass(frozen=True, eq=False)
class Manifest:
    target: str
    recipe: Mapping  # the parsed recipe: name, scheme, options
    source: Mapping  # model, path, revision, model_type, content_sha256 (and gguf, ...)
    runtime: Mapping  # model_file, max_context, exporter, ...
    files: tuple[Mapping, ...]  # path, bytes, sha256, role
    parity: Mapping | None = None
    export: Mapping | None = None  # wall_s, stages, peak_rss_mb
    toolchain: Mapping | None = None
    schema: int = MANIFEST_SCHEMA
    extra: Mapping = field(default_factory=dict)  # any other key, in the file's order

    _ORDER = ("schema", "target", "recipe", "source", "runtime", "toolchain", "export", "files", "parity")

    @classmethod
    def from_json(cls, data: Mapping) -> Manifest:
        """A manifest's object (its shape checked by the caller: ``artifact.load``)."""
        if isinstance(data, Manifest):
            return data
        optional = {k: frozen(data[k]) if isinstance(data.get(k), Mapping) else data.get(k)
                    for k in ("parity", "export", "toolchain")}
        return cls(
            target=data.get("target"), recipe=frozen(data.get("recipe")), source=frozen(data.get("source")),
            runtime=frozen(data.get("runtime")), files=tuple(frozen(f) for f in data.get("files") or ()),
            schema=data.get("schema", MANIFEST_SCHEMA), **optional,
            extra=frozen({k: v for k, v in data.items() if k not in cls._ORDER}),
        )

    def to_json(self) -> dict:
        out = {"schema": self.schema, **plain(self.extra)}  # edgekit_version, created, ...
        for name in self._ORDER[1:]:
            value = getattr(self, name)
            if value is not None:
                out[name] = plain(value)
        return out

    @property
    def recipe_name(self) -> str:
        return self.recipe["name"]

    @property
    def model(self) -> str:
        """The model as it was given (``builtin:tiny``, a path or a hub id)."""
        return self.source["model"]

    @property
    def model_type(self) -> str:
        return self.source["model_type"]

    @property
    def content_sha256(self) -> str | None:
        """The model's content hash (what a profile's reference model must still match)."""
        return self.source.get("content_sha256")

    @property
    def source_path(self) -> str | None:
        """The local folder the model was read from at export."""
        return self.source.get("path")

    @property
    def allow_pickle(self) -> bool:
        """Whether the export was allowed to read pickle weights (``--allow-pickle``): its reference may too."""
        return self.source.get("allow_pickle") is True

    @property
    def reference(self) -> str | None:
        """What parity and accuracy compare against where it is not the model's own float weights
        (``gguf_reference``); None where it is."""
        return gguf_reference(self.source)

    @property
    def revision(self) -> str | None:
        """The model's hub commit (None: not from the hub)."""
        return self.source.get("revision")

    @property
    def model_file(self) -> str | None:
        return self.runtime.get("model_file")

    @property
    def max_context(self) -> int:
        return self.runtime["max_context"]

    @property
    def exporter(self) -> str | None:
        return self.runtime.get("exporter")

    @property
    def parity_passed(self) -> bool | None:
        """True or False as the export's parity check found; None where it was skipped (or not recorded)."""
        return (self.parity or {}).get("passed")

    @property
    def parity_skipped(self) -> bool | str:
        """Why the parity check was skipped (True: not asked for); False where it ran."""
        return (self.parity or {}).get("skipped") or False

    @property
    def standard_runtime(self) -> Mapping | None:
        """The export's check of the artifact in its runtime's own LLM API (runtime, version, api,
        loaded, tokens_match, tokens); None where it was not checked."""
        return self.extra.get("standard_runtime")

    @property
    def stages(self) -> Mapping[str, float]:
        """The export's stages and their seconds, in order."""
        return (self.export or {}).get("stages") or {}

    def __eq__(self, other) -> bool:
        return isinstance(other, Manifest) and self.to_json() == other.to_json()

    __hash__ = None


def gguf_reference(source: Mapping | None) -> str | None:
    """A quantized GGUF source's float reference, in words: ``model.gguf dequantized (Q8_0)`` (its
    weights dequantized, a quantized model itself); None for any other source."""
    gguf = (source or {}).get("gguf") or {}
    if not gguf.get("quantized"):
        return None
    return f"{gguf.get('file')} dequantized ({str(gguf.get('file_type', '')).removeprefix('MOSTLY_')})"
