"""The typed manifest of an artifact (``edgekit.json``): what was exported, from what, how, and its files.

Read-only; its JSON is the file's shape, every key this edgekit does not know kept as it is. It reads
as a mapping too (``manifest["runtime"]``), the way its callers read the file's dict before it was typed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from edgekit.core.results import frozen, plain

MANIFEST_SCHEMA = 1


@dataclass(frozen=True, eq=False)
class Manifest(Mapping):
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
        return self.source["model"]

    @property
    def max_context(self) -> int:
        return self.runtime["max_context"]

    @property
    def exporter(self) -> str | None:
        return self.runtime.get("exporter")

    # read as the file's mapping
    def __getitem__(self, key: str):
        if key in self._ORDER:
            value = getattr(self, key)
            if value is None:
                raise KeyError(key)
            return value
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.to_json()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other) -> bool:
        if isinstance(other, Manifest):
            return self.to_json() == other.to_json()
        return isinstance(other, Mapping) and self.to_json() == plain(other)

    __hash__ = None
