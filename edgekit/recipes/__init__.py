"""Recipes: one vocabulary of precision/quantization schemes, declared per target in TOML files.

A recipe name is a scheme optionally followed by options, e.g. ``int4``, ``int4-g128``,
``8da4w-g64-emb4`` (``-gN``: group size; ``-embB``: the embedding table quantized to B bits too),
``int4-mix4`` (``-mixN``: the N decoder layers most sensitive to the scheme's bits, measured on the
calibration text, kept at 8 bits), ``int4-gptq``, ``q4_0-imatrix`` (a method: how the weights are
rounded, beyond round-to-nearest, where the scheme offers it; a calibrated method learns from the
model's activations on a calibration text, the shipped one or ``--calibration``, never the
evaluation text).
Each ``<target>.toml`` beside this module declares the target's schemes, their defaults and the
parity thresholds an export must meet against the fp32 PyTorch reference, and the target's options
(``[options.NAME]``: its choices, the first the default), which a Recipe carries in ``options``.
Strings are parsed here, at the edges (the CLI, config files); below them a Recipe is passed as it is.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field

from edgekit.config import NUMBERS
from edgekit.core import plugins
from edgekit.errors import EdgekitError

_GROUP = re.compile(r"^g(\d{1,9})$")  # more digits than any range: an unknown option, never int()'s ValueError
_EMBEDDING = re.compile(r"^emb(\d{1,9})$")
_MIXED = re.compile(r"^mix(\d{1,9})$")


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
    options: tuple[tuple[str, str], ...] = ()  # the target's options (name, value), every declared one: see option()
    # how weights are rounded where the scheme offers a choice (gptq, imatrix); None: round-to-nearest
    method: str | None = None
    calibration: str | None = None  # the calibration text of a calibrated method; None: the shipped one
    mixed: int | None = None  # -mixN: the N decoder layers most sensitive to the scheme's bits kept at 8 bits

    @property
    def name(self) -> str:
        name = self.scheme if self.group_size is None else f"{self.scheme}-g{self.group_size}"
        name = name if self.embedding_bits is None else f"{name}-emb{self.embedding_bits}"
        name = name if self.mixed is None else f"{name}-mix{self.mixed}"
        return name if self.method is None else f"{name}-{self.method}"

    def option(self, name: str) -> str | None:
        """The value of the target option ``name`` (e.g. ONNX's ``exporter``); None where the target has no
        such option."""
        return dict(self.options).get(name)

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
            **dict(self.options),
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
class OptionSpec:
    """A target option declared in the target's TOML (``[options.NAME]``): its choices, the first the default."""

    name: str
    choices: tuple[str, ...]
    help: str = ""

    @property
    def default(self) -> str:
        return self.choices[0]

    def as_dict(self) -> dict:
        return {"choices": list(self.choices), "default": self.default, "help": self.help}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    summary: str
    default: str
    schemes: dict[str, SchemeSpec]
    options: dict[str, OptionSpec] = field(default_factory=dict)  # the target's options, by name


@plugins.cached
def targets() -> dict[str, TargetSpec]:
    """Every registered target's recipes (its recipe file), by target name."""
    from edgekit.core.plugins import TARGETS, load, names

    out = {}
    for name in names(TARGETS):
        data = tomllib.loads(_recipe_file(name, load(TARGETS, name).recipes))
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
        options = {
            name: OptionSpec(name, tuple(spec["choices"]), spec.get("help", ""))
            for name, spec in data.get("options", {}).items()
        }
        out[name] = TargetSpec(name, data["summary"], data["default"], schemes, options)
    return out


def _recipe_file(target: str, where: str | None) -> str:
    """The text of a target's recipe file: "package:file.toml", or edgekit's own <target>.toml."""
    from importlib import resources

    package, _, name = (where or f"{__name__}:{target}.toml").partition(":")
    try:
        return resources.files(package).joinpath(name).read_text()
    except (OSError, ModuleNotFoundError) as e:
        raise EdgekitError(f"target {target}: cannot read its recipe file {package}:{name} ({e})") from None


def target_spec(target: str) -> TargetSpec:
    known = targets()
    if target not in known:
        raise EdgekitError(f"unknown target '{target}'; known targets: {', '.join(known)}")
    return known[target]


def parse(
    target: str,
    name: str | None,
    max_context: int | None = None,
    options: dict[str, str | None] | None = None,
    calibration: str | None = None,
) -> Recipe:
    """Turn a recipe name such as ``int4-g128`` into a Recipe of ``target``; ``options``: the target
    options given (name -> value; None: not given), each checked against the target's declared choices,
    the others at their defaults."""
    spec = target_spec(target)
    if name is not None and not name.strip():
        raise EdgekitError(f"the recipe is empty; recipes of {target}: {', '.join(spec.schemes)} "
                           "(see `edgekit recipes`)")
    name = name or spec.default
    scheme, *suffixes = name.strip().lower().split("-")
    if scheme not in spec.schemes:
        raise EdgekitError(
            f"unknown recipe '{name}' for target {target}; recipes: {', '.join(spec.schemes)}"
            " (see `edgekit recipes`)"
        )
    s = spec.schemes[scheme]
    group_size, embedding_bits, method, mixed, mixed_given = (
        s.group_size, s.embedding_default, None, s.mixed_default, False)
    for opt in suffixes:
        if (m := _GROUP.match(opt)) and s.group_sizes:
            group_size = int(m.group(1))
            if group_size not in s.group_sizes:
                sizes = ", ".join(str(g) for g in s.group_sizes)
                raise EdgekitError(f"group size {group_size} is not supported by {target} {scheme}; "
                                   f"choose one of {sizes}")
        elif (m := _EMBEDDING.match(opt)) and s.embedding_bits:
            embedding_bits = int(m.group(1))
            if embedding_bits not in s.embedding_bits:
                bits = ", ".join(f"emb{b}" for b in s.embedding_bits)
                raise EdgekitError(f"'{opt}' is not supported by {target} {scheme}; choose one of {bits}")
        elif (m := _MIXED.match(opt)) and s.mixed and not mixed_given:
            NUMBERS["mixed_layers"].check(int(m.group(1)), f"-mixN in recipe '{name}'")
            mixed, mixed_given = int(m.group(1)) or None, True  # -mix0: every layer at the scheme's bits
        elif opt in s.methods and method is None:
            method = opt
        else:
            raise EdgekitError(f"unknown option '{opt}' in recipe '{name}' for target {target}")
    if calibration is not None and method not in s.calibrated and mixed is None:
        calibrated = [f"{k}-{m}" for k, v in spec.schemes.items() for m in v.calibrated]
        calibrated += [f"{k}-mixN" for k, v in spec.schemes.items() if v.mixed]
        raise EdgekitError(
            f"--calibration applies to calibrated recipes ({', '.join(calibrated) or f'none for target {target}'}), "
            f"not '{name}'"
        )
    if max_context is not None and max_context < 2:
        raise EdgekitError(f"--max-context must be at least 2, got {max_context}")
    return Recipe(
        target=target, scheme=scheme, summary=s.summary, group_size=group_size, parity=s.parity,
        max_context=max_context, embedding_bits=embedding_bits,
        options=_options(options or {}, spec),
        method=method, calibration=None if calibration is None else str(calibration), mixed=mixed,
    )


def option_values(pairs, given: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Target options written as ``NAME=VALUE`` (``--option``, and the CLI's aliases of it), added to
    those ``given`` by name (None: not given); an option given twice is an error. Whether the target
    has the option, and the value is one of its choices, is checked by ``parse``, in one place."""
    out = dict(given or {})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise EdgekitError(f"--option takes NAME=VALUE, got '{pair}'")
        if out.get(name) is not None:
            raise EdgekitError(f"target option '{name}' is given twice")
        out[name] = value.strip()
    return out


def _options(given: dict[str, str | None], spec: TargetSpec) -> tuple[tuple[str, str], ...]:
    """Every option the target declares, at its given value or its default; an option the target does
    not declare, or a value not among its choices, is an error (the one check of target options, however
    they were given: ``--option``, its aliases, a sweep file's ``[options]``)."""
    for name, value in given.items():
        if value is not None and name not in spec.options:
            known = f"its options: {', '.join(spec.options)}" if spec.options else "it has no options"
            raise EdgekitError(f"--{name.replace('_', '-')} does not apply to target {spec.name} ({known}; "
                               "see `edgekit recipes`)")
    out = []
    for name, option in spec.options.items():
        value = given.get(name)
        if value is not None and value not in option.choices:
            raise EdgekitError(f"unknown {name.replace('_', ' ')} '{value}'; choose one of {', '.join(option.choices)}")
        out.append((name, option.default if value is None else value))
    return tuple(out)
