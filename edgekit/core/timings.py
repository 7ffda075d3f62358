"""A result's detailed timings beside its figures: the per-operator table of ``profile --ops`` and the
samples of a sustained run (``profile --duration``), each with its JSON (the result file's ``ops`` and
``sustained`` keys, as the runner's ``ops`` and ``sample`` events give them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_DURATION_S = 3600  # the longest sustained run (the runners refuse more)


@dataclass(frozen=True)
class OpRow:
    op: str
    kind: str  # "operator", or "delegate": an event inside a delegate call (XNNPACK's operators)
    calls: float  # per decode step
    decode_ms: float  # per decode step
    prefill_calls: int
    prefill_ms: float

    @classmethod
    def from_json(cls, data: Mapping) -> OpRow:
        return cls(str(data["op"]), str(data.get("kind", "operator")), float(data.get("calls", 0)),
                   float(data.get("decode_ms", 0)), int(data.get("prefill_calls", 0)), float(data.get("prefill_ms", 0)))

    def to_json(self) -> dict:
        return {"op": self.op, "kind": self.kind, "calls": self.calls, "decode_ms": self.decode_ms,
                "prefill_calls": self.prefill_calls, "prefill_ms": self.prefill_ms}


@dataclass(frozen=True)
class OpTimes:
    """The slowest operators of one profiled prefill and generation, from the runtime's own profiler
    (``source``), or why the runtime has none (``unavailable``). The shares' denominators are the
    profiler's own totals: ``prefill_ms`` and ``decode_step_ms``."""

    source: str | None
    unavailable: str | None = None
    prefill_tokens: int | None = None
    decode_steps: int | None = None
    prefill_ms: float | None = None
    decode_step_ms: float | None = None
    operators: int | None = None  # distinct operators seen (the rows are the slowest of them)
    rows: tuple[OpRow, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping) -> OpTimes:
        return cls(data.get("source"), data.get("unavailable"), data.get("prefill_tokens"), data.get("decode_steps"),
                   data.get("prefill_ms"), data.get("decode_step_ms"), data.get("operators"),
                   tuple(OpRow.from_json(r) for r in data.get("rows") or ()))

    def to_json(self) -> dict:
        if self.source is None:
            return {"source": None, "unavailable": self.unavailable}
        return {"source": self.source, "prefill_tokens": self.prefill_tokens, "decode_steps": self.decode_steps,
                "prefill_ms": self.prefill_ms, "decode_step_ms": self.decode_step_ms, "operators": self.operators,
                "rows": [r.to_json() for r in self.rows]}

    def shares(self, row: OpRow) -> tuple[float | None, float | None]:
        """The row's share (0..1) of a decode step and of the prefill (None where the total is not known)."""
        step = row.decode_ms / self.decode_step_ms if self.decode_step_ms else None
        prefill = row.prefill_ms / self.prefill_ms if self.prefill_ms else None
        return step, prefill

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) as ``profile --ops`` and the HTML report show it."""
        header = ["op", "calls", "ms / decode step", "% of step", "ms in prefill", "% of prefill"]
        rows = []
        for r in self.rows:
            step, prefill = self.shares(r)
            rows.append([r.op + (" (delegate)" if r.kind == "delegate" else ""), f"{r.calls:g}", f"{r.decode_ms:.3f}",
                         _pct(step), f"{r.prefill_ms:.3f}", _pct(prefill)])
        return header, rows

    @property
    def title(self) -> str:
        if self.source is None:
            return f"per-operator times: none ({self.unavailable})"
        return (f"slowest operators ({self.source}; {self.operators} in all): a decode step "
                f"{self.decode_step_ms:.3f} ms, the prefill of {self.prefill_tokens} tokens {self.prefill_ms:.3f} ms "
                "(profiled, so slower than the runs)")


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the sustained run began, when the sample was taken
    runs: int  # runs since the previous sample
    decode_tok_s: float | None
    prefill_tok_s: float | None
    temp_c: float | None = None  # the hottest thermal zone, where the device tells
    cpu_mhz: float | None = None

    @classmethod
    def from_json(cls, data: Mapping) -> Sample:
        return cls(float(data["t_s"]), int(data.get("runs", 1)), data.get("decode_tok_s"), data.get("prefill_tok_s"),
                   data.get("temp_c"), data.get("cpu_mhz"))

    def to_json(self) -> dict:
        return {"t_s": self.t_s, "runs": self.runs, "decode_tok_s": self.decode_tok_s,
                "prefill_tok_s": self.prefill_tok_s, "temp_c": self.temp_c, "cpu_mhz": self.cpu_mhz}


@dataclass(frozen=True)
class Sustained:
    """A sustained run: ``duration_s`` asked, the samples taken about once a second."""

    duration_s: float
    samples: tuple[Sample, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping) -> Sustained:
        return cls(float(data["duration_s"]), tuple(Sample.from_json(s) for s in data.get("samples") or ()))

    def to_json(self) -> dict:
        return {"duration_s": self.duration_s, "samples": [s.to_json() for s in self.samples]}

    def decode_over(self, first: bool, seconds: float = 10) -> float | None:
        """Decode tok/s over the first (or last) ``seconds`` of samples, weighted by their runs."""
        if not self.samples:
            return None
        end = self.samples[-1].t_s
        picked = [s for s in self.samples
                  if s.decode_tok_s and ((s.t_s <= seconds) if first else (s.t_s >= end - seconds))]
        runs = sum(s.runs for s in picked)
        return sum(s.decode_tok_s * s.runs for s in picked) / runs if runs else None

    def summary(self) -> str:
        """One line: decode tok/s over the first and the last 10 s, and the temperature's range."""
        if not self.samples:
            return f"sustained {self.duration_s:g} s: no sample"
        first, last = self.decode_over(True), self.decode_over(False)
        text = (f"sustained {self.samples[-1].t_s:.0f} s ({sum(s.runs for s in self.samples)} runs): decode "
                f"{_num(first)} tok/s in the first 10 s, {_num(last)} tok/s in the last 10 s")
        if first and last:
            text += f" ({(last / first - 1):+.0%})"
        temps = [s.temp_c for s in self.samples if s.temp_c is not None]
        text += (f"; temperature {min(temps):.1f}-{max(temps):.1f} °C" if temps
                 else "; temperature not exposed by the device")
        clocks = [s.cpu_mhz for s in self.samples if s.cpu_mhz is not None]
        if clocks:
            text += f"; CPU clock {min(clocks):.0f}-{max(clocks):.0f} MHz"
        return text


def _pct(share: float | None) -> str:
    return "" if share is None else f"{share:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
