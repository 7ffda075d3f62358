"""Per-operator times: one prefill and one generation's decode steps under the runtime's own profiler,
summed by operator (or delegate call) into the protocol's ``ops`` event.

A backend that can profile has ``profile_ops(folder, runtime, threads, prompt, gen) -> (source, calls)``:
the name of its profiler and, for every runtime call (an ONNX Runtime run, an ExecuTorch execute) of
one warmed-up generation, in order, ``(phase, total_ms, [(op, kind, ms), ...])`` with ``phase``
``"prefill"`` or ``"decode"``. One that cannot says why in ``OPS_UNAVAILABLE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import LanguageModel

TOP = 15  # rows kept: the slowest by their share of a decode step or of prefill


def drive(lm: LanguageModel, prompt: list[int], gen: int, calls: Callable[[], int]) -> tuple[int, int, int, int]:
    """A warm-up generation, then the profiled one, as ``greedy`` runs them (the prompt in one forward
    call, then one call a token); ``calls()``: the runtime calls made so far. Returns the call counts at
    the start of the profiled prefill, its end, the end of the decode steps, and the decode steps."""
    steps = min(gen, lm.max_context - len(prompt)) - 1
    marks = []
    for _ in range(2):
        lm.reset()
        marks.append(calls())
        token = int(lm.forward(prompt, last_only=True)[-1].argmax())
        marks.append(calls())
        for _ in range(steps):
            token = int(lm.forward([token], last_only=True)[-1].argmax())
    return marks[2], marks[3], calls(), steps


def event(source: str, calls: list[tuple[str, float, list]], prompt_tokens: int, steps: int) -> dict:
    """The ``ops`` event of the profiled calls: per operator, its calls and milliseconds per decode step
    and in the prefill, and the runtime's own total of each (the shares' denominators)."""
    rows: dict[tuple[str, str], dict] = {}
    totals = {"prefill": 0.0, "decode": 0.0}
    for phase, total_ms, ops in calls:
        totals[phase] += total_ms
        for op, kind, ms in ops:
            row = rows.setdefault((op, kind), {"op": op, "kind": kind, "calls": 0, "decode_ms": 0.0,
                                               "prefill_calls": 0, "prefill_ms": 0.0})
            if phase == "decode":
                row["calls"] += 1
                row["decode_ms"] += ms
            else:
                row["prefill_calls"] += 1
                row["prefill_ms"] += ms
    per_step = max(steps, 1)
    step_ms = totals["decode"] / per_step
    for row in rows.values():
        row["decode_ms"] = round(row["decode_ms"] / per_step, 4)
        row["calls"] = round(row["calls"] / per_step, 2)
        row["prefill_ms"] = round(row["prefill_ms"], 4)

    def weight(row: dict) -> float:
        return max(row["decode_ms"] / step_ms if step_ms else 0.0,
                   row["prefill_ms"] / totals["prefill"] if totals["prefill"] else 0.0)

    kept = sorted(rows.values(), key=weight, reverse=True)
    return {"source": source, "prefill_tokens": prompt_tokens, "decode_steps": steps,
            "prefill_ms": round(totals["prefill"], 4), "decode_step_ms": round(step_ms, 4),
            "operators": len(rows), "rows": kept[:TOP]}


def unavailable(why: str) -> dict:
    return {"source": None, "unavailable": why}


# ---- ONNX Runtime: its profiler's Chrome trace (SessionOptions.enable_profiling) ----

def onnx_calls(trace: list[dict], first: int, prefill_end: int, end: int) -> list[tuple[str, float, list]]:
    """The trace's runs ``first``..``end`` (``model_run`` events, in order; those before ``prefill_end``
    the prefill), each with its node events (``NAME_kernel_time``, op type in ``args.op_name``)."""
    runs = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    nodes = sorted((e for e in trace if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    out, i = [], 0
    for index, run in enumerate(runs[:end]):
        start, stop = run["ts"], run["ts"] + run["dur"]
        ops = []
        while i < len(nodes) and nodes[i]["ts"] < stop:
            e = nodes[i]
            if e["ts"] >= start:
                ops.append(((e.get("args") or {}).get("op_name") or e["name"], "operator", e["dur"] / 1000))
            i += 1
        if index >= first:
            out.append(("prefill" if index < prefill_end else "decode", run["dur"] / 1000, ops))
    return out


# ---- ExecuTorch: its ETDump (one run_data block per execute) ----

_CONTAINERS = ("OPERATOR_CALL", "DELEGATE_CALL", "Method::execute")


def etdump_calls(run_data, first: int, prefill_end: int, end: int) -> list[tuple[str, float, list]]:
    """The ETDump's executes ``first``..``end`` (its ``Execute`` blocks, in order): each one's
    ``Method::execute`` time and its leaf events, operators (``native_call_NAME``, custom ops by name)
    and the delegate's own events (XNNPACK's, named by its operator, ``#N`` dropped). Times in ns."""
    executes = [rd for rd in run_data if any(_name(e) == "Method::execute" for e in rd.events or ())]
    out = []
    for index, rd in enumerate(executes[:end]):
        if index < first:
            continue
        total, ops = 0.0, []
        for e in rd.events or ():
            p = e.profile_event
            if p is None:
                continue
            ms = (p.end_time - p.start_time) / 1e6
            name = _name(e)
            if name == "Method::execute":
                total += ms
            elif name and name not in _CONTAINERS:
                if p.delegate_debug_id_str or p.delegate_debug_id_int not in (-1, None):
                    ops.append((re.sub(r" #\d+$", "", name), "delegate", ms))
                else:
                    ops.append((name.removeprefix("native_call_"), "operator", ms))
        out.append(("prefill" if index < prefill_end else "decode", total, ops))
    return out


def _name(e) -> str | None:
    p = e.profile_event
    if p is None:
        return None
    return p.name or p.delegate_debug_id_str or (str(p.delegate_debug_id_int) if p.delegate_debug_id_int else None)
