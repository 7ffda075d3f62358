"""Every runner speaks the protocol of docs/runner-protocol.md: each event validates against
edgekit/runtime/protocol.schema.json, in the documented order, flushed as it happens, and a bad
request or artifact gives one error event and exit status 1 (``runner``: each runner's argv)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from runners import runner_env

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "edgekit/runtime/protocol.schema.json").read_text())
PROMPT = [5, 17, 33, 2, 9, 101, 7, 64]


# ---- a validator of the schema subset protocol.schema.json uses (jsonschema is not installed here) ----

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "integer": int, "number": (int, float)}


def _is(value, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def errors(value, schema: dict, where: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``schema`` (empty: valid)."""
    if "$ref" in schema:
        return errors(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]], where)
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not errors(value, s, where)]
        return [] if len(fits) == 1 else [f"{where}: matches {len(fits)} of oneOf"]
    out = []
    kinds = schema.get("type")
    if kinds is not None and not any(_is(value, k) for k in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{where}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > schema.get("maximum", value):
        out.append(f"{where}: {value} > {schema['maximum']}")
    if (isinstance(value, (int, float)) and not isinstance(value, bool) and "exclusiveMinimum" in schema
            and value <= schema["exclusiveMinimum"]):
        out.append(f"{where}: {value} <= {schema['exclusiveMinimum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < schema.get("minimum", value):
        out.append(f"{where}: {value} < {schema['minimum']}")
    if isinstance(value, (str, list)) and len(value) < schema.get("minLength", schema.get("minItems", 0)):
        out.append(f"{where}: too short")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += errors(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        out += [f"{where}: no '{k}'" for k in schema.get("required", ()) if k not in value]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], f"{where}.{k}")
            elif extra is False:
                out.append(f"{where}: unknown '{k}'")
            elif isinstance(extra, dict):
                out += errors(v, extra, f"{where}.{k}")
    return out


def test_validator_catches_what_the_schema_forbids():
    ok = {"event": "done", "peak_rss_mb": 12.5}
    assert errors(ok, {"$ref": "#/$defs/event"}) == []
    assert errors({**ok, "peak_rss_mb": -1}, {"$ref": "#/$defs/done"})
    assert errors({**ok, "extra": 1}, {"$ref": "#/$defs/done"})
    assert errors({"event": "done"}, {"$ref": "#/$defs/event"})
    assert errors({"event": "run", "index": True}, {"$ref": "#/$defs/run"})
    assert errors({"protocol": 1, "artifact": "a", "prompt_ids": [1], "gen": 2}, {"$ref": "#/$defs/request"}) == []


# ---- the runners ----

def request(artifact: Path, **fields) -> dict:
    out = {"protocol": 1, "artifact": str(artifact), "backend": None, "runtimes": ["llama_cpp_python"],
           "threads": 1, "prompt_ids": PROMPT, "gen": 6, "warmup": 1, "runs": 2}
    return {**out, **fields}


def speak(runner: list[str], stdin: bytes | dict, timeout: float = 120) -> tuple[int, list[dict], str]:
    """Run a runner to its end: (exit status, its events, stderr); every stdout line must be an event."""
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    p = subprocess.run(runner, input=data, capture_output=True, timeout=timeout, env=runner_env())
    lines = p.stdout.decode().splitlines()
    events = [json.loads(line) for line in lines]  # nothing but JSON lines on stdout
    for e in events:
        assert errors(e, {"$ref": "#/$defs/event"}) == [], (e, errors(e, SCHEMA["$defs"].get(e.get("event"), {})))
    return p.returncode, events, p.stderr.decode(errors="replace")


def eval_request(artifact: Path) -> dict:
    eval_ids = [(7 * i + 3) % 500 for i in range(41)]  # 40 scored positions: windows of 16, 16, 8
    topk = [[(i + j) % 500 for j in range(4)] for i in range(40)]
    return request(artifact, eval_ids=eval_ids, window=16, ref_topk=topk)


def test_events_in_order_and_valid(runner, tiny_gguf):
    code, events, err = speak(runner, eval_request(tiny_gguf["q8_0"]))
    assert code == 0, err
    assert [e["event"] for e in events] == ["hello", "loaded", "run", "run", "run", "accuracy", "done"]
    hello, runs, acc = events[0], events[2:5], events[5]
    assert hello["protocol"] == 1 and hello["runner"]["machine"]
    assert [(r["index"], r["warmup"]) for r in runs] == [(0, True), (1, False), (2, False)]
    assert all(r["generated"] == 6 and r["decode_tok_s"] > 0 for r in runs)
    assert all(0 < r["token_ms_p50"] <= r["token_ms_p90"] for r in runs)
    assert len(acc["target_logprob"]) == len(acc["argmax"]) == len(acc["rest_logprob"]) == 40
    assert all(len(row) == 4 for row in acc["topk_logprob"]) and len(acc["topk_logprob"]) == 40
    assert all(lp <= 0 for lp in acc["target_logprob"])
    assert events[6]["peak_rss_mb"] >= events[1]["rss_mb"] > 0


def test_threads_and_the_machines_load_from_every_runner(runner, tiny_gguf):
    """Both runners say the same things: the threads asked (or chosen, and why), each run's share taken
    by other processes where the counters tell, and the machine's load in ``done``."""
    code, events, err = speak(runner, request(tiny_gguf["q4_0"], threads=None, warmup=0, runs=2))
    assert code == 0, err
    hello, done = events[0], events[-1]
    assert hello["threads"] >= 1 and "physical core(s)" in hello["threads_from"]
    load = done["load"]
    assert load["cpus"] >= 1 and len(load["loadavg_1m"]) == 2 and 0 <= load["others_share"] <= 1
    assert all(0 <= e.get("others_share", 0) <= 1 for e in events if e["event"] == "run")
    code, events, err = speak(runner, request(tiny_gguf["q4_0"], threads=1, warmup=0, runs=1))
    assert code == 0 and events[0]["threads"] == 1 and events[0]["threads_from"] == "asked", err


def test_no_accuracy_event_without_eval_ids(runner, tiny_gguf):
    code, events, err = speak(runner, request(tiny_gguf["q4_0"], warmup=0, runs=1))
    assert code == 0, err
    assert [e["event"] for e in events] == ["hello", "loaded", "run", "done"]


def test_sustained_samples_and_ops_event(runner, tiny_gguf):
    """duration_s: sample events after the runs, about one a second; ops: llama.cpp says why it has none."""
    code, events, err = speak(runner, request(tiny_gguf["q4_0"], warmup=0, runs=1, duration_s=1.5, ops=True))
    assert code == 0, err
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["hello", "loaded", "run"] and kinds[-2:] == ["ops", "done"], kinds
    samples = [e for e in events if e["event"] == "sample"]
    assert 1 <= len(samples) <= 3 and kinds[3:-2] == ["sample"] * len(samples)
    assert samples[-1]["t_s"] >= 1.5 and all(s["runs"] >= 1 and s["decode_tok_s"] > 0 for s in samples)
    ops = events[-2]
    assert ops["source"] is None and ops["unavailable"]


def _long_run(runner, tiny_gguf) -> subprocess.Popen:
    """The runner started on a request of seconds of work after its first run (60 runs of 200 tokens)."""
    p = subprocess.Popen(runner, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=runner_env())
    try:
        p.stdin.write(json.dumps(request(tiny_gguf["q8_0"], gen=200, warmup=0, runs=60)).encode())
        p.stdin.close()
    except BaseException:
        p.kill()
        p.wait()
        raise
    return p


def test_runs_arrive_before_the_process_ends(runner, tiny_gguf):
    """Each event is flushed when it happens: the first run is readable while the runner still works."""
    p = _long_run(runner, tiny_gguf)
    try:
        seen = []
        for line in p.stdout:
            seen.append(json.loads(line)["event"])
            if seen[-1] == "run":
                assert p.poll() is None, "the first run event came only when the runner ended"
                break
        assert seen == ["hello", "loaded", "run"]
    finally:
        p.kill()
        p.wait()


def test_ctrl_c_is_one_error_event_at_its_step(runner, tiny_gguf):
    p = _long_run(runner, tiny_gguf)
    try:
        events = []
        for line in p.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "run":
                p.send_signal(signal.SIGINT)
                break
        events += [json.loads(line) for line in p.stdout]
        code = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for e in events:
        assert errors(e, {"$ref": "#/$defs/event"}) == [], e
    last = events[-1]
    assert code == 1 and last["event"] == "error" and last["message"] == "interrupted", events[-2:]
    assert last["step"].startswith("run ") and last["step"].endswith("/60")


def _refused(code: int, events: list[dict], step: str) -> dict:
    assert code == 1, events
    assert events and events[-1]["event"] == "error" and events[-1]["step"] == step, events
    assert "\n" not in events[-1]["message"]
    return events[-1]


@pytest.mark.parametrize("stdin, says", [
    (b"{not json", ""),
    (b"[1, 2]", "object"),
    (b"", ""),
    (b'{"protocol": 1, "x": ' + b"[" * 100000 + b"]" * 100000 + b"}", ""),
    ({"protocol": 2, "artifact": "x", "prompt_ids": [1], "gen": 2}, "protocol 2"),
    ({"artifact": "x", "prompt_ids": [1], "gen": 2}, "protocol"),
    ({"protocol": True, "artifact": "x", "prompt_ids": [1], "gen": 2}, "protocol"),
    ({"protocol": 1, "artifact": "x", "gen": 2}, "prompt_ids"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [], "gen": 2}, "prompt_ids"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1, -3], "gen": 2}, "prompt_ids"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 0}, "gen"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 2, "threads": 0}, "threads"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 2, "eval_ids": [1, 2]}, "window"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 2, "duration_s": 3601}, "duration_s"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 2, "duration_s": 0}, "duration_s"),
    ({"protocol": 1, "artifact": "x", "prompt_ids": [1], "gen": 2, "ops": 1}, "ops"),
], ids=["not-json", "a-list", "empty", "deeply-nested", "protocol-2", "no-protocol", "protocol-true", "no-prompt",
        "empty-prompt", "negative-id", "gen-0", "threads-0", "eval-without-window", "duration-too-long",
        "duration-0", "ops-not-bool"])
def test_bad_request_is_one_error_before_hello(runner, stdin, says):
    code, events, _ = speak(runner, stdin)
    assert len(events) == 1, events  # no hello: refused before any work
    assert says in _refused(code, events, "request")["message"]


def test_missing_artifact_is_a_load_error(runner, tmp_path):
    code, events, _ = speak(runner, request(tmp_path / "nowhere"))
    assert [e["event"] for e in events] == ["hello", "error"]
    _refused(code, events, "load")


def test_damaged_artifact_is_a_load_error(runner, tiny_gguf, tmp_path):
    art = tmp_path / "damaged"
    shutil.copytree(tiny_gguf["q4_0"], art)
    (art / "model.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    code, events, _ = speak(runner, request(art))
    assert [e["event"] for e in events] == ["hello", "error"]
    _refused(code, events, "load")


def test_context_overflow_is_a_run_error(runner, tiny_gguf):
    code, events, _ = speak(runner, request(tiny_gguf["q4_0"], prompt_ids=PROMPT * 40, warmup=0, runs=1))
    assert [e["event"] for e in events] == ["hello", "loaded", "error"]
    _refused(code, events, "run 1/1")
