"""Typed results: the declared metrics, one metric's figure, the environment a result was measured
in, one profile's result; each with its JSON (the result file's shape, read back as it was written,
older files too), and a result's identity.

A result file is ``RunResult.to_json()``; every key a reader does not know is kept as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from .timings import OpTimes, Sustained

RESULT_SCHEMA = 1


def _typed(kind, data):
    """``kind.from_json(data)``: None where absent; the typed value where it already is one."""
    return data if data is None or isinstance(data, kind) else kind.from_json(data)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is: its unit, its direction, and which kind of figure it is."""

    name: str
    unit: str
    higher_is_better: bool
    heading: str  # short heading for a table that has no room for the name
    emulated: bool = False  # what an emulator measures of itself on an emulated device, not of the device
    latency: bool = False  # measured per generation run
    accuracy: bool = False  # scored on the evaluation text: a mean over its tokens, with a standard error


# every metric a result may hold, in the order one result's figures are listed
SPECS = {s.name: s for s in (
    MetricSpec("load_s", "s", False, "load s", emulated=True),
    MetricSpec("ttft_ms", "ms", False, "TTFT ms", emulated=True, latency=True),
    MetricSpec("prefill_tok_s", "tok/s", True, "prefill tok/s", emulated=True, latency=True),
    MetricSpec("decode_tok_s", "tok/s", True, "decode tok/s", emulated=True, latency=True),
    MetricSpec("token_ms_p50", "ms", False, "p50 ms", emulated=True, latency=True),
    MetricSpec("token_ms_p90", "ms", False, "p90 ms", emulated=True, latency=True),
    MetricSpec("peak_rss_mb", "MiB", False, "RSS MiB", emulated=True),
    MetricSpec("eval_peak_rss_mb", "MiB", False, "eval RSS MiB", emulated=True),
    MetricSpec("file_mb", "MB", False, "MB"),
    MetricSpec("ppl", "", False, "ppl", accuracy=True),
    MetricSpec("ppl_ref", "", False, "ppl fp32", accuracy=True),
    MetricSpec("dppl_pct", "%", False, "Δppl %", accuracy=True),
    MetricSpec("top1_agree", "", True, "top-1", accuracy=True),
    MetricSpec("kl_mean", "nats", False, "KL", accuracy=True),
)}


def fingerprint(what) -> str:
    """A short content hash of JSON-able ``what``: the sweep's export key and result stamp, a result's identity."""
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def frozen(mapping) -> Mapping:
    """A read-only copy of ``mapping`` (its nested values as they are)."""
    return MappingProxyType(dict(mapping or {}))


def plain(value):
    """``value`` with its read-only mappings and tuples as dicts and lists again (for JSON)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Metric:
    """One figure: the median of its samples, their spread, its unit and direction; a mean over scored
    tokens (accuracy) also carries its standard error. ``extra``: what some figures add (``tokens``,
    ``ci95``, ``includes_generation``), kept as it is."""

    value: float | None
    unit: str = ""
    higher_is_better: bool = False
    samples: tuple[float | None, ...] = ()
    min: float | None = None
    max: float | None = None
    stderr: float | None = None
    emulated: bool = False  # an emulator's figure (an emulated device's timings): never shown or compared as a device's
    extra: Mapping = field(default_factory=dict)

    _KNOWN = ("value", "unit", "higher_is_better", "samples", "min", "max", "stderr", "emulated")

    @classmethod
    def from_json(cls, name: str, data: Mapping) -> Metric:
        """A metric record of a result file; a unit or direction it lacks (a hand-made or older file)
        is the declared one."""
        spec = SPECS.get(name)
        unit = data.get("unit")
        higher = data.get("higher_is_better")
        return cls(
            value=data.get("value"),
            unit=unit if isinstance(unit, str) else (spec.unit if spec else ""),
            higher_is_better=bool(higher) if higher is not None else bool(spec and spec.higher_is_better),
            samples=tuple(data.get("samples") or ()),
            min=data.get("min"), max=data.get("max"),
            stderr=_number(data.get("stderr")),
            emulated=bool(data.get("emulated")),
            extra=frozen({k: v for k, v in data.items() if k not in cls._KNOWN}),
        )

    def to_json(self) -> dict:
        out = {"value": self.value, "unit": self.unit, "higher_is_better": self.higher_is_better,
               "samples": list(self.samples), "min": self.min, "max": self.max}
        if self.stderr is not None:
            out["stderr"] = self.stderr
        if self.emulated:
            out["emulated"] = True
        return {**out, **plain(self.extra)}

    @property
    def tokens(self) -> int | None:
        """The tokens an accuracy figure was scored over (None: not recorded, or not such a figure)."""
        return self.extra.get("tokens")


# other processes taking more than this share of the CPUs during the measured runs make a result
# "busy": its speed figures are lower than a quiet machine's (on a 2-core VM at load 4-6, q4_0 decoded
# 4-14x slower than quiet); $EDGEKIT_BUSY_SHARE sets another (a CI runner on a shared host)
BUSY_SHARE = 0.2


def busy_share() -> float:
    import os

    from edgekit.errors import EdgekitError

    given = os.environ.get("EDGEKIT_BUSY_SHARE")
    if given is None:
        return BUSY_SHARE
    try:
        share = float(given)
    except ValueError:
        share = float("nan")
    if not 0 <= share <= 1:  # (NaN too)
        raise EdgekitError(f"$EDGEKIT_BUSY_SHARE must be a number from 0 to 1, got {given!r}")
    return share


@dataclass(frozen=True)
class Environment:
    """Where a result was measured: the host that ran edgekit, and what the runner on the device said
    of itself (python, os, machine, cpu, the versions of its runtimes), with the threads it ran."""

    host: Mapping = field(default_factory=dict)  # {"os", "edgekit"}
    runner: Mapping = field(default_factory=dict)
    threads: int | None = None  # the threads the runtime ran (asked, or chosen by the runner: threads_from)
    threads_from: str | None = None
    # the machine's load while the measured runs ran: cpus, loadavg_1m [before, after], cpu_mhz, and what
    # other processes took of its CPUs (others_cpu_s, others_share)
    load: Mapping = field(default_factory=dict)

    _ABOUT = ("python", "os", "machine", "cpu", "cpu_count")  # the runner's facts that are no runtime version

    @classmethod
    def from_json(cls, data: Mapping) -> Environment:
        runner = {k: v for k, v in data.items() if k not in ("host", "threads", "threads_from", "load")}
        return cls(frozen(data.get("host")), frozen(runner), data.get("threads"), data.get("threads_from"),
                   frozen(data.get("load")))

    def to_json(self) -> dict:
        out = {"host": plain(self.host), **plain(self.runner)}
        if self.threads is not None:
            out["threads"] = self.threads
        if self.threads_from is not None:
            out["threads_from"] = self.threads_from
        if self.load:
            out["load"] = plain(self.load)
        return out

    @property
    def busy(self) -> str | None:
        """Why the machine counts as busy while it measured, in words (other processes took more
        than ``busy_share()`` of its CPUs during the measured runs); None: quiet, or not known."""
        share = (self.load or {}).get("others_share")
        if not isinstance(share, (int, float)) or share <= busy_share():
            return None
        cpus, load = self.load.get("cpus"), (self.load.get("loadavg_1m") or [None])[-1]
        return (f"the machine was busy: other processes took {share:.0%} of its {cpus} CPU(s) during the runs"
                + (f" (load {load:g})" if load is not None else "") + "; speed figures are lower than a quiet one's")

    @property
    def versions(self) -> dict[str, str]:
        """The runner's python and runtime versions (numpy, onnxruntime, ...)."""
        return {k: str(v) for k, v in self.runner.items()
                if k not in self._ABOUT or k == "python"} if self.runner else {}


@dataclass(frozen=True)
class RunResult:
    """One profile of one artifact on one device (the result JSON). ``artifact``: the digest of the
    artifact's manifest; ``device``: its profile and what it answered; ``settings``: what it was
    measured with; ``extra``: keys this edgekit does not know, kept as they are. ``file``: where it
    was read from (never written)."""

    artifact: Mapping
    device: Mapping
    metrics: Mapping  # name -> Metric
    complete: bool = False
    error: str | None = None
    environment: Environment | None = None
    settings: Mapping | None = None
    runs: tuple | None = None
    started: str | None = None
    finished: str | None = None
    sweep: Mapping | None = None  # the sweep's stamp: export key and fingerprint
    ops: OpTimes | None = None  # profile --ops: the slowest operators (or why the runtime has none)
    sustained: Sustained | None = None  # profile --duration: decode speed, temperature and clock over time
    schema: int = RESULT_SCHEMA
    extra: Mapping = field(default_factory=dict)
    file: str | None = None

    _KNOWN = ("schema", "complete", "error", "artifact", "device", "environment", "settings", "metrics", "started",
              "runs", "finished", "sweep", "ops", "sustained")

    @classmethod
    def from_json(cls, data: Mapping, file: str | None = None) -> RunResult:
        """A result file's object (its shape checked by the caller: ``report.results``)."""
        env, settings, runs, sweep = (data.get(k) for k in ("environment", "settings", "runs", "sweep"))
        return cls(
            artifact=frozen(data.get("artifact")), device=frozen(data.get("device")),
            metrics=MappingProxyType({name: m if isinstance(m, Metric) else Metric.from_json(name, m)
                                      for name, m in (data.get("metrics") or {}).items()}),
            complete=bool(data.get("complete", False)), error=data.get("error"),
            environment=None if env is None else (env if isinstance(env, Environment) else Environment.from_json(env)),
            settings=None if settings is None else frozen(settings),
            runs=None if runs is None else tuple(runs),
            started=data.get("started"), finished=data.get("finished"),
            sweep=None if sweep is None else frozen(sweep),
            ops=_typed(OpTimes, data.get("ops")), sustained=_typed(Sustained, data.get("sustained")),
            schema=data.get("schema", RESULT_SCHEMA),
            extra=frozen({k: v for k, v in data.items() if k not in cls._KNOWN and k != "_file"}),
            file=file or data.get("_file"),
        )

    def to_json(self) -> dict:
        out = {"schema": self.schema, "complete": self.complete, "error": self.error,
               "artifact": plain(self.artifact), "device": plain(self.device)}
        if self.environment is not None:
            out["environment"] = self.environment.to_json()
        if self.settings is not None:
            out["settings"] = plain(self.settings)
        out["metrics"] = {name: m.to_json() for name, m in self.metrics.items()}
        for name in ("started", "runs", "finished", "sweep"):
            value = getattr(self, name)
            if value is not None:
                out[name] = plain(value)
        for name in ("ops", "sustained"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_json()
        return {**out, **plain(self.extra)}

    @property
    def data(self) -> Mapping:
        """The result JSON, read-only (the frozen result is never changed through it: ``replace``)."""
        return MappingProxyType(self.to_json())

    def replace(self, **changes) -> RunResult:
        return replace(self, **changes)

    # what it measures
    @property
    def model(self) -> str:
        return self.artifact["model"]

    @property
    def target(self) -> str:
        return self.artifact["target"]

    @property
    def recipe(self) -> str:
        return self.artifact["recipe"]

    @property
    def device_name(self) -> str:
        return self.device["name"]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a result measures, as people name it: (model, target, recipe, device)."""
        return (self.model, self.target, self.recipe, self.device_name)

    @property
    def identity(self) -> str:
        """Which result this is: the artifact's digest, the device, and the fingerprint of what it was
        measured with (settings, threads, exporter, context, evaluation text, runtime versions). Two
        results of one key that differ in any of these are two results."""
        a = self.artifact
        digest = (a.get("manifest_sha256") or a.get("content_sha256")
                  or [a.get(k) for k in ("model", "target", "recipe")])
        measured = {"settings": plain(self.settings or {}),
                    "versions": self.environment.versions if self.environment else {},
                    "threads": self.environment.threads if self.environment else None}
        return fingerprint({"artifact": digest, "device": self.device_name, "measured": fingerprint(measured)})

    @property
    def parity_passed(self) -> bool | None:
        return self.artifact.get("parity_passed")

    @property
    def reference(self) -> str | None:
        """What accuracy was measured against where that is not the original float weights (a
        quantized GGUF source's weights dequantized), in words."""
        return self.artifact.get("reference")

    @property
    def parity(self) -> str | None:
        """The export's parity check as tables show it: "passed", "FAILED", "not checked" (None: a
        combination that failed before its artifact was made)."""
        if "parity_passed" not in self.artifact:
            return None
        return {True: "passed", False: "FAILED"}.get(self.artifact["parity_passed"], "not checked")

    @property
    def measured_runs(self) -> int:
        return sum(not r.get("warmup") for r in self.runs or ())

    @property
    def eval_text_sha256(self) -> str | None:
        """The sha256 of the evaluation text it was scored on (None: not recorded, older results)."""
        return (self.settings or {}).get("eval_text_sha256")

    def other_text(self, other: RunResult) -> bool:
        """Whether the two were scored on evaluation texts known to differ."""
        a, b = self.eval_text_sha256, other.eval_text_sha256
        return a is not None and b is not None and a != b

    # the one view that hides an emulator's figures
    def figures(self, emulated: bool = False) -> dict[str, Metric]:
        """Its metrics as a device's figures: an emulator's (an emulated device's timings and memory)
        left out unless ``emulated``."""
        return {name: m for name, m in self.metrics.items() if emulated or not m.emulated}

    @property
    def emulated_figures(self) -> tuple[str, ...]:
        """The names of the figures that are an emulator's, not a device's."""
        return tuple(name for name, m in self.metrics.items() if m.emulated)
