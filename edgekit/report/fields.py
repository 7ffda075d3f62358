"""The declared fields of a result's row, in order (as llama-bench's ``get_fields()``): every format
(table, markdown, CSV, JSON, HTML, the check summary) and bench/recipes.py read this one list.

A row is what people compare: what was measured (the key), whether it completed and passed parity,
the settings, every metric's median (with its standard error where it has one), and where it was
measured (the environment: CSV and JSON only, the tables have no room for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edgekit.core.results import SPECS, Metric, RunResult

KEY = ("model", "target", "recipe", "device")
# the metrics a row holds, in the tables' order (ppl_ref: in the result JSON only)
COLUMNS = ("decode_tok_s", "prefill_tok_s", "ttft_ms", "token_ms_p50", "token_ms_p90", "load_s", "peak_rss_mb",
           "eval_peak_rss_mb", "file_mb", "ppl", "dppl_pct", "top1_agree", "kl_mean")
# the columns that carry a standard error (a mean over the scored tokens): CSV and JSON give it as
# ``<name>_stderr``, the text tables as ``value ± error``
WITH_STDERR = tuple(name for name in COLUMNS if SPECS[name].accuracy)
# what a terminal too narrow for the table leaves out first (after the columns that say nothing): the
# finer latency figures and the ones another column restates; and last, the headline figures
LESS_NEEDED = ("token_ms_p90", "token_ms_p50", "load_s", "eval_peak_rss_mb", "ppl_ref", "ppl", "ttft_ms", "complete",
               "prefill_tok_s", "kl_mean")
HEADLINE = ("decode_tok_s", "file_mb", "dppl_pct")


@dataclass(frozen=True)
class Field:
    name: str
    get: Callable[[RunResult, dict[str, Metric]], object]  # (result, its figures as shown) -> value
    table: bool = True  # a column of the text tables (terminal, markdown, HTML); CSV and JSON have every field
    metric: str | None = None  # the metric whose figure (or standard error) it is


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _value(name: str):
    return lambda r, shown: _number(shown[name].value) if name in shown else None


def _stderr(name: str):
    def get(r, shown):
        m = shown.get(name)
        return None if m is None or _number(m.value) is None else _number(m.stderr)
    return get


def _settings(r: RunResult, shown) -> str:
    from edgekit.profile.settings import label

    return label(r)


def _env(name: str):
    def get(r: RunResult, shown):
        env = r.environment
        if env is None:
            return None
        if name == "edgekit":
            return env.host.get("edgekit")
        if name == "threads":
            return env.threads
        if name == "threads_from":
            return env.threads_from
        if name in ("others_share", "cpu_mhz"):
            return _number((env.load or {}).get(name))
        if name == "loadavg_1m":
            return _number(((env.load or {}).get(name) or [None])[-1])
        if name == "versions":
            return " ".join(f"{k} {v}" for k, v in sorted(env.versions.items())) or None
        return env.runner.get(name)
    return get


def _busy(r: RunResult, shown) -> str | None:
    """The results table's word on a busy machine (the warning's short form)."""
    env = r.environment
    return f"busy {env.load['others_share']:.0%}" if env is not None and env.busy else None


def _fields() -> tuple[Field, ...]:
    out = [
        Field("model", lambda r, shown: r.model), Field("target", lambda r, shown: r.target),
        Field("recipe", lambda r, shown: r.recipe), Field("device", lambda r, shown: r.device_name),
        Field("complete", lambda r, shown: r.complete), Field("parity", lambda r, shown: r.parity),
        Field("settings", _settings),
    ]
    for name in COLUMNS:
        out.append(Field(name, _value(name), metric=name))
        if name in WITH_STDERR:
            out.append(Field(f"{name}_stderr", _stderr(name), table=False, metric=name))
    # "busy 48%" where other processes took that share of the CPUs during the runs: speed figures low
    out.append(Field("machine_load", _busy))
    out += [Field(name, _env(name), table=False)
            for name in ("os", "machine", "cpu", "cpu_count", "threads", "threads_from", "others_share", "loadavg_1m",
                         "cpu_mhz", "versions", "edgekit")]
    out += [Field("started", lambda r, shown: r.started, table=False),
            Field("identity", lambda r, shown: r.identity, table=False)]
    return tuple(out)


FIELDS = _fields()


def fields(table: bool = False) -> list[str]:
    """The names of a row's fields, in order: all of them (CSV, JSON), or the text tables' columns."""
    return [f.name for f in FIELDS if f.table or not table]


def row(result: RunResult, emulated: bool = False) -> dict:
    """One flat row of a result; an emulator's figures (an emulated device's timings) left out
    (None) unless ``emulated``."""
    shown = result.figures(emulated)
    return {f.name: f.get(result, shown) for f in FIELDS}


def rows(results: list[RunResult], emulated: bool = False) -> list[dict]:
    """One row per result, sorted by what they measure."""
    return [row(r, emulated) for r in sorted(results, key=lambda r: r.key)]


def fmt(value) -> str:
    """A figure as tables show it: three significant digits below 1, two decimals below 100."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_pm(value, stderr=None) -> str:
    """``value`` and, where it has one, its standard error: ``12.3 ± 0.41``."""
    if value is None or stderr is None:
        return fmt(value)
    return f"{fmt(value)} ± {fmt(stderr)}"


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt(value) if isinstance(value, float) else str(value)


def text_cells(row: dict) -> list[str]:
    """A row's cells as the text tables show them (an accuracy figure as ``value ± error``)."""
    return [fmt_pm(row[h], row[f"{h}_stderr"]) if h in WITH_STDERR and row[h] is not None
            and row[f"{h}_stderr"] is not None
            else cell(row[h]) for h in fields(table=True)]
