"""Recipes: one vocabulary of precision/quantization schemes, declared per target in TOML files.

A recipe name is a scheme optionally followed by options, e.g. ``int4``, ``int4-g128``,
``8da4w-g64-emb4`` (``-gN``: group size; ``-embB``: the embedding table quantized to B bits too),
``int4-mix4`` (``-mixN``: the N decoder layers most sensitive to the scheme's bits, measured on the
calibration text, kept at 8 bits), ``int4-gptq``, ``q4_0-imatrix`` (a method: how the weights are
rounded, beyond round-to-nearest, where the scheme offers it; a calibrated method learns from the
model's activations on a calibration text, the shipped one or ``--calibration``, never the
evaluation text).
Each ``<target>.toml`` beside this module declares the target's schemes, their defaults and the
parity thresholds an export must meet against the fp32 PyTorch reference.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from edgekit.errors import EdgekitError

_DIR = Path(__file__).parent
_GROUP = re.compile(r"^g(\d+)$")
_EMBEDDING = re.compile(r"^emb(\d+)$")
_MIXED = re.compile(r"^mix(\d+)$")


@dataclass(frozen=True)
class Thresholds:
    """Parity limits: every limit that is set must hold for the parity check to pass."""

    max_abs_logit_diff: float | None = None
    top1_agree: float | None = None
    kl_mean: float | None = None

    def failures(self, measured: dict) -> list[str]:
        """What fails; a NaN (or missing) figure always does: broken numbers never pass."""
        out = []
        for name in ("max_abs_logit_diff", "top1_agree", "kl_mean"):
            value = measured.get(name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                out.append(f"{name} is {value} (not a number: the logits hold NaN or infinity)")
        if out:
            return out
        if self.max_abs_logit_diff is not None and measured["max_abs_logit_diff"] > self.max_abs_logit_diff:
            out.append(f"max_abs_logit_diff {measured['max_abs_logit_diff']:.3g} > {self.max_abs_logit_diff:g}")
        if self.top1_agree is not None and measured["top1_agree"] < self.top1_agree:
            out.append(f"top1_agree {measured['top1_agree']:.3f} < {self.top1_agree:g}")
        if self.kl_mean is not None and measured["kl_mean"] > self.kl_mean:
            out.append(f"kl_mean {measured['kl_mean']:.3g} > {self.kl_mean:g}")
        return out

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Recipe:
    target: str
    scheme: str
    summary: str
    group_size: int | None = None
    parity: Thresholds = field(default_factory=Thresholds)
    max_context: int | None = None  # the artifact's context (KV cache) length; None: the target's default
    embedding_bits: int | None = None  # the embedding table quantized too (where the scheme allows it)
    compute_units: str | None = None  # where the runtime may run it (Core ML: all, cpu, ...); None: not a choice
    exporter: str | None = None  # which exporter writes it (ONNX: auto, genai, optimum); None: not a choice
    method: str | None = None  # how weights are rounded where the scheme offers a choice (gptq, imatrix); None: round-to-nearest
    calibration: str | None = None  # the calibration text of a calibrated method; None: the shipped one
    mixed: int | None = None  # -mixN: the N decoder layers most sensitive to the scheme's bits kept at 8 bits

    @property
    def name(self) -> str:
        name = self.scheme if self.group_size is None else f"{self.scheme}-g{self.group_size}"
        name = name if self.embedding_bits is None else f"{name}-emb{self.embedding_bits}"
        name = name if self.mixed is None else f"{name}-mix{self.mixed}"
        return name if self.method is None else f"{name}-{self.method}"

    @property
    def calibrated(self) -> bool:
        """Whether the export learns from a calibration text (a calibrated method, or -mixN's measurement)."""
        return self.mixed is not None or self.method is not None

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "name": self.name,
            "scheme": self.scheme,
            "group_size": self.group_size,
            "max_context": self.max_context,
            "embedding_bits": self.embedding_bits,
            "compute_units": self.compute_units,
            "exporter": self.exporter,
            "method": self.method,
            "calibration": self.calibration,
            "mixed_layers": self.mixed,
            "parity_thresholds": self.parity.as_dict(),
        }


@dataclass(frozen=True)
class SchemeSpec:
    scheme: str
    summary: str
    group_size: int | None
    group_sizes: tuple[int, ...]
    embedding_bits: tuple[int, ...]  # the -embB options the scheme takes
    parity: Thresholds
    methods: tuple[str, ...] = ()  # the methods the scheme takes (-gptq, -imatrix)
    calibrated: tuple[str, ...] = ()  # those of them that learn from a calibration text
    mixed: bool = False  # whether it takes -mixN (mixed precision by measured sensitivity)
    mixed_default: int | None = None  # the N of -mixN when the name gives none (-mix0: none kept)
    embedding_default: int | None = None  # the embedding's bits when the name has no -embB (None: float)
    rotated: bool = False  # the residual stream rotated before quantizing (targets/rotation.py)


@dataclass(frozen=True)
class TargetSpec:
    name: str
    summary: str
    default: str
    schemes: dict[str, SchemeSpec]
    compute_units: tuple[str, ...] = ()  # choices of --compute-units, the first the default; none: not a choice
    exporters: tuple[str, ...] = ()  # choices of --exporter, the first the default; none: not a choice


@cache
def targets() -> dict[str, TargetSpec]:
    """Every target that has a recipe file, by name."""
    out = {}
    for path in sorted(_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        schemes = {}
        for scheme, spec in data["recipes"].items():
            schemes[scheme] = SchemeSpec(
                scheme=scheme,
                summary=spec["summary"],
                group_size=spec.get("group_size"),
                group_sizes=tuple(spec.get("group_sizes", ())),
                embedding_bits=tuple(spec.get("embedding_bits", ())),
                parity=Thresholds(**spec.get("parity", {})),
                methods=tuple(spec.get("methods", ())),
                calibrated=tuple(spec.get("calibrated", ())),
                mixed=bool(spec.get("mixed", False)),
                mixed_default=spec.get("mixed_default"),
                embedding_default=spec.get("embedding_default"),
                rotated=bool(spec.get("rotated", False)),
            )
        out[path.stem] = TargetSpec(
            path.stem, data["summary"], data["default"], schemes,
            tuple(data.get("compute_units", ())), tuple(data.get("exporters", ())),
        )
    return out


def target_spec(target: str) -> TargetSpec:
    known = targets()
    if target not in known:
        raise EdgekitError(f"unknown target '{target}'; known targets: {', '.join(known)}")
    return known[target]


def parse(
    target: str,
    name: str | None,
    max_context: int | None = None,
    compute_units: str | None = None,
    exporter: str | None = None,
    calibration: str | None = None,
) -> Recipe:
    """Turn a recipe name such as ``int4-g128`` into a Recipe of ``target``."""
    spec = target_spec(target)
    name = name or spec.default
    scheme, *options = name.strip().lower().split("-")
    if scheme not in spec.schemes:
        raise EdgekitError(
            f"unknown recipe '{name}' for target {target}; recipes: {', '.join(spec.schemes)}"
            " (see `edgekit recipes`)"
        )
    s = spec.schemes[scheme]
    group_size, embedding_bits, method, mixed, mixed_given = s.group_size, s.embedding_default, None, s.mixed_default, False
    for opt in options:
        if (m := _GROUP.match(opt)) and s.group_sizes:
            group_size = int(m.group(1))
            if group_size not in s.group_sizes:
                sizes = ", ".join(str(g) for g in s.group_sizes)
                raise EdgekitError(f"group size {group_size} is not supported by {target} {scheme}; choose one of {sizes}")
        elif (m := _EMBEDDING.match(opt)) and s.embedding_bits:
            embedding_bits = int(m.group(1))
            if embedding_bits not in s.embedding_bits:
                bits = ", ".join(f"emb{b}" for b in s.embedding_bits)
                raise EdgekitError(f"'{opt}' is not supported by {target} {scheme}; choose one of {bits}")
        elif (m := _MIXED.match(opt)) and s.mixed and not mixed_given:
            mixed, mixed_given = int(m.group(1)) or None, True  # -mix0: every layer at the scheme's bits
        elif opt in s.methods and method is None:
            method = opt
        else:
            raise EdgekitError(f"unknown option '{opt}' in recipe '{name}' for target {target}")
    if calibration is not None and method not in s.calibrated and mixed is None:
        calibrated = [f"{k}-{m}" for k, v in spec.schemes.items() for m in v.calibrated]
        calibrated += [f"{k}-mixN" for k, v in spec.schemes.items() if v.mixed]
        raise EdgekitError(
            f"--calibration applies to calibrated recipes ({', '.join(calibrated) or f'none for target {target}'}), not '{name}'"
        )
    if max_context is not None and max_context < 2:
        raise EdgekitError(f"--max-context must be at least 2, got {max_context}")
    return Recipe(
        target=target, scheme=scheme, summary=s.summary, group_size=group_size, parity=s.parity,
        max_context=max_context, embedding_bits=embedding_bits,
        compute_units=_choice("--compute-units", compute_units, spec.compute_units, target),
        exporter=_choice("--exporter", exporter, spec.exporters, target),
        method=method, calibration=None if calibration is None else str(calibration), mixed=mixed,
    )


def _choice(option: str, value: str | None, choices: tuple[str, ...], target: str) -> str | None:
    """A target option's value: the first choice when not given; an error when not one of them."""
    if value is None:
        return choices[0] if choices else None
    if not choices:
        raise EdgekitError(f"{option} does not apply to target {target}")
    if value not in choices:
        raise EdgekitError(f"unknown {option.lstrip('-').replace('-', ' ')} '{value}'; choose one of {', '.join(choices)}")
    return value
