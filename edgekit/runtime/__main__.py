"""The on-device runner: ``python -m <this package> < request.json``.

Speaks protocol ``PROTOCOL``, written down in docs/runner-protocol.md and protocol.schema.json: one
JSON request on stdin (the artifact's folder, its ``backend`` module, the ``runtimes`` whose versions
to report, the prompt and the runs); JSON lines on stdout, one event each:
    {"event": "hello", "protocol": 1, "runner": {...},          at once, before the model loads
     "threads": n, "threads_from": why}                         the threads it runs (asked, or chosen here)
    {"event": "loaded", "load_s": ..., "rss_mb": ...}
    {"event": "run", "index": i, "warmup": bool, ...latency figures,   after every run, with what other
     "others_share": ..., "others_cpu_s": ...}                  processes took of the CPUs meanwhile
    {"event": "sample", "t_s": ..., "decode_tok_s": ..., ...}   with duration_s: one per run of the sustained
                                                                 decoding, with the CPUs' temperature and clock
    {"event": "ops", "source": ..., "rows": [...]}              with ops: per-operator times (or why none)
    {"event": "accuracy", "eval_peak_rss_mb": ..., ...per-position arrays}
    {"event": "done", "peak_rss_mb": ..., "load": {...}}         the peak while loading and generating; the
                                                                 load average, clock, others' CPU time
    {"event": "error", "step": ..., "message": ...}              then exit code 1
A malformed request, or one of another protocol, is refused before ``hello`` (step "request").
Each event is flushed as it happens, so a host that loses the device keeps what was measured.
"""

from __future__ import annotations

import json
import platform
import sys
import time

_STARTED = time.monotonic()
PROTOCOL = 1
MAX_DURATION_S = 3600  # a sustained run's longest


def _emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _runner_info(backend_versions: dict) -> dict:
    import os

    return {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        **backend_versions,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":")[0].strip().lower()
                if key in ("model name", "hardware", "processor") and ":" in line:
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _is_int(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _ids(value) -> bool:
    return isinstance(value, list) and all(_is_int(t, 0) for t in value)


def check_request(request) -> None:
    """Refuse a request the protocol does not allow, before any work (ValueError, one line)."""
    if not isinstance(request, dict):
        raise ValueError(f"the request is a JSON {type(request).__name__}, not an object")
    if request.get("protocol") != PROTOCOL or isinstance(request.get("protocol"), bool):
        raise ValueError(f"request speaks protocol {request.get('protocol')}, this runner speaks {PROTOCOL}")
    checks = {
        "artifact": lambda v: isinstance(v, str) and v != "",
        "prompt_ids": lambda v: _ids(v) and len(v) > 0,
        "gen": lambda v: _is_int(v, 1),
        "threads": lambda v: v is None or _is_int(v, 1),
        "warmup": lambda v: _is_int(v, 0),
        "runs": lambda v: _is_int(v, 1),
        "eval_ids": _ids,
        "window": lambda v: _is_int(v, 1),
        "ref_topk": lambda v: isinstance(v, list) and all(_ids(row) for row in v),
        "ops": lambda v: isinstance(v, bool),
        "duration_s": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and 0 < v <= MAX_DURATION_S),
    }
    for key in ("artifact", "prompt_ids", "gen"):
        if key not in request:
            raise ValueError(f"the request has no '{key}'")
    for key, ok in checks.items():
        if key in request and not ok(request[key]):
            raise ValueError(f"the request's '{key}' is not allowed: {json.dumps(request[key])[:80]}")
    if request.get("eval_ids") and "window" not in request:
        raise ValueError("the request has 'eval_ids' but no 'window'")


def sustained(lm, prompt: list[int], gen: int, duration_s: float) -> None:
    """Generate again and again for ``duration_s`` seconds: a ``sample`` event each second or so (after
    the run that ends it), the speed of the runs since the last one, and the machine's temperature and
    clock then (``t_s``: seconds since the first run began)."""
    from . import machine
    from .measure import latency_run

    start = last = time.monotonic()
    runs, steps, decode_s, prompt_s = 0, 0, 0.0, 0.0
    while last - start < duration_s:
        figures = latency_run(lm, prompt, gen)
        runs += 1
        prompt_s += figures["ttft_ms"] / 1000
        if figures["decode_tok_s"]:
            steps += figures["generated"] - 1
            decode_s += (figures["generated"] - 1) / figures["decode_tok_s"]
        now = time.monotonic()
        if now - last >= 1 or now - start >= duration_s:
            _emit("sample", t_s=round(now - start, 3), runs=runs, decode_tok_s=steps / decode_s if decode_s else None,
                  prefill_tok_s=runs * len(prompt) / prompt_s, temp_c=machine.temperature_c(),
                  cpu_mhz=machine.cpu_mhz())
            runs, steps, decode_s, prompt_s, last = 0, 0, 0.0, 0.0, now


def main() -> int:
    step = "request"
    try:
        request = json.loads(sys.stdin.read())
        check_request(request)
        import numpy as np

        from . import load, machine, versions
        from .measure import accuracy, latency_run, peak_rss_mb, process_age_s, reset_peak_rss

        choosing = time.monotonic()  # (choosing the threads samples the CPUs: not the model's load time)
        threads, why = (request["threads"], "asked") if request.get("threads") else machine.default_threads()
        choosing = time.monotonic() - choosing
        load_before = machine.loadavg()
        _emit("hello", protocol=PROTOCOL, runner=_runner_info(versions(request.get("runtimes", ()))),
              threads=threads, threads_from=why)
        step = "load"
        lm = load(request["artifact"], threads, request.get("backend"))
        age = process_age_s()
        _emit("loaded", load_s=(age if age is not None else time.monotonic() - _STARTED) - choosing,
              rss_mb=peak_rss_mb())

        prompt, gen = request["prompt_ids"], request["gen"]
        warmup, runs = request.get("warmup", 1), request.get("runs", 5)
        first = None
        for i in range(warmup + runs):
            step = f"run {i + 1}/{warmup + runs}"
            before = machine.Sample.now()
            figures = latency_run(lm, prompt, gen)
            after = machine.Sample.now()
            first = first or (before if i >= warmup else None)
            _emit("run", index=i, warmup=i < warmup, **figures, **machine.others_between(before, after))
        during = machine.others_over(first, after if first else None)

        # the peak of loading and generating, read before the accuracy pass (which holds whole
        # windows of logits) can raise it; that pass's own peak is reported apart
        peak = peak_rss_mb()
        if request.get("duration_s"):
            step = "sustained"
            sustained(lm, prompt, gen, request["duration_s"])
        if request.get("ops"):
            step = "ops"
            from . import profile_ops

            _emit("ops", **profile_ops(request["artifact"], threads, request.get("backend"), prompt, gen))
        if request.get("eval_ids"):
            step = "accuracy"
            topk = request.get("ref_topk")
            topk = np.asarray(topk, dtype=np.int64) if topk is not None else None
            own = reset_peak_rss()  # where it can't be reset, the accuracy peak is the process's whole-life one
            scores = accuracy(lm, request["eval_ids"], request["window"], topk)
            _emit("accuracy", eval_peak_rss_mb=peak_rss_mb(), eval_peak_rss_reset=own, **scores)
        _emit("done", peak_rss_mb=peak, load={
            "cpus": machine.usable_cpus(), "loadavg_1m": [load_before, machine.loadavg()],
            "cpu_mhz": machine.cpu_mhz(), **during})
        return 0
    except KeyboardInterrupt:
        _emit("error", step=step, message="interrupted")
        return 1
    except Exception as e:  # the host turns this into its one-line error
        _emit("error", step=step, message=f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
