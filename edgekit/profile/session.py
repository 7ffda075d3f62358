"""One profile: push the artifact and the runner to a device, run the protocol, gather the result."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgekit import __version__, artifact as artifacts, targets
from edgekit.core.results import RESULT_SCHEMA, RunResult  # noqa: F401  (RESULT_SCHEMA: read here by older callers)
from edgekit.devices import DeviceProfile, connect, require_capable
from edgekit.devices.process import DeviceError
from edgekit.errors import EdgekitError
from edgekit.profile.metrics import latency_metrics, mark_emulated, metric
from edgekit.source import file_sha256

@dataclass(frozen=True)
class Settings:
    prompt_len: int = 128
    gen: int = 128
    runs: int = 5
    warmup: int = 1
    threads: int | None = None
    eval_text: Path | None = None  # None: the shipped evaluation text for the model (edgekit.data.default_eval_path)
    eval_tokens: int = 2048  # at most this many tokens of the text are scored
    window: int = 256  # tokens per scoring window (bounded by the model's context)
    accuracy: bool = True
    timeout_s: float | None = None  # per step; None: the device profile's
    ops: bool = False  # one more generation under the runtime's profiler: the per-operator table
    duration_s: float | None = None  # a sustained run of that many seconds after the measured runs

    def check(self) -> None:
        """Refuse settings no profile can run, before any work: each number in its range
        (``edgekit.config.NUMBERS``), named by its option."""
        from edgekit.config import NUMBERS

        for name, option in OPTIONS.items():
            if getattr(self, name) is not None:
                NUMBERS[name].check(getattr(self, name), option)

    def recorded(self) -> dict:
        """What the result's ``settings`` records (ops and duration only where asked: a result without
        them is measured as before)."""
        out = asdict(self)
        for name in ("ops", "duration_s"):
            if not out[name]:
                del out[name]
        return out


# the numeric settings, by the option that gives them
OPTIONS = {"prompt_len": "--prompt-len", "gen": "--gen", "runs": "--runs", "warmup": "--warmup", "threads": "--threads",
           "eval_tokens": "--eval-tokens", "window": "the window", "timeout_s": "--timeout", "duration_s": "--duration"}


def profile(
    artifact_path: Path,
    device: DeviceProfile,
    settings: Settings,
    on_step: Callable[[str, int, int], None] = lambda step, done, total: None,
    verify: bool = False,
) -> RunResult:
    """Measure ``artifact_path`` on ``device``. Never raises for a device failure once runs have
    started: the result is returned marked incomplete, with the error, and the runs measured.
    The artifact's files are checked against its manifest first (``verify``: every sha256 read again)."""
    art = artifacts.load(artifact_path)
    target = targets.spec(art.target)
    require_capable(device, art.target, art.path)  # before any work: the artifact cannot go there
    artifacts.verify(art, full=verify)
    transport = connect(device)
    threads = settings.threads or device.threads
    text = eval_text_for(art.manifest.model, settings)
    prompt, eval_ids, window = _inputs(art, settings, text.text)
    total = settings.warmup + settings.runs + 3
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = {
        "schema": RESULT_SCHEMA,
        "complete": False,
        "error": None,
        "artifact": _digest(art),
        "device": {**device.as_dict(), **transport.info()},
        "environment": {"host": {"os": f"{platform.system()} {platform.release()}", "edgekit": __version__}},
        "settings": {**settings.recorded(), "threads": threads, "eval_text": str(settings.eval_text or "shipped"),
                     "eval_text_name": text.name, "eval_text_sha256": text.sha256,
                     "window": window, "eval_tokens": len(eval_ids) - 1,  # the positions scored
                     "exporter": art.manifest.exporter, "max_context": art.manifest.max_context},
        "metrics": {"file_mb": metric("file_mb", [art.size_bytes / 1e6])},
        "started": started,
    }
    ref = None
    if settings.accuracy:
        on_step("reference (fp32 PyTorch)", 0, total)
        ref, cached = _reference(art, eval_ids, window)
        data["settings"]["reference_cached"] = cached

    step = "push"
    runs: list[dict] = []
    samples: list[dict] = []  # a sustained run's, as they come
    try:
        on_step("push artifact", 1, total)
        files = [*map(dict, art.manifest.files), _manifest_entry(art.path)]
        remote = transport.push(art.path, files)
        # the target goes only where a profile asks for the native runner (local so far): a plug-in's
        # transport keeps its argument-less runner()
        argv = transport.runner(art.target) if device.runner == "native" else transport.runner()
        request = {
            "protocol": 1, "artifact": remote, "backend": target.runner_backend,
            "runtimes": list(targets.runtime_distributions()), "threads": threads, "prompt_ids": prompt,
            "gen": settings.gen, "runs": settings.runs, "warmup": settings.warmup,
        }
        if ref is not None:
            request.update(eval_ids=eval_ids, window=window, ref_topk=ref.topk_ids.tolist())
        if settings.ops:
            request["ops"] = True
        if settings.duration_s:
            request["duration_s"] = settings.duration_s
            data["sustained"] = {"duration_s": settings.duration_s, "samples": samples}
        after_runs = "sustained" if settings.duration_s else "ops" if settings.ops else "accuracy"
        step = "start runner"
        timeout = settings.timeout_s or device.timeout_s
        for line in transport.run(argv, json.dumps(request).encode(), timeout):
            event = _parse(line)
            if event is None:
                continue
            kind = event.pop("event")
            if kind == "hello":
                # the threads the runtime runs: asked (--threads, the profile's), else chosen by the runner
                data["environment"].update(event["runner"], threads=event.get("threads", threads),
                                           **({"threads_from": event["threads_from"]} if "threads_from" in event
                                              else {}))
                step = "load"
                on_step("load model", 2, total)
            elif kind == "loaded":
                data["metrics"]["load_s"] = metric("load_s", [event["load_s"]])
                step = f"run 1/{settings.warmup + settings.runs}"
            elif kind == "run":
                runs.append(event)
                data["metrics"].update(latency_metrics(runs))
                i = event["index"] + 1
                step = (f"run {i + 1}/{settings.warmup + settings.runs}" if i < settings.warmup + settings.runs
                        else after_runs)
                on_step(("warm-up " if event["warmup"] else "") + f"run {i}", 2 + i, total)
                if step == "ops":
                    on_step("per-operator times (one profiled generation)", total - 1, total)
            elif kind == "sample":
                samples.append(event)
                if len(samples) == 1:
                    on_step(f"sustained run ({settings.duration_s:g} s)", total - 1, total)
                step = "ops" if settings.ops and event["t_s"] >= settings.duration_s else "sustained"
                if step == "ops":
                    on_step("per-operator times (one profiled generation)", total - 1, total)
            elif kind == "ops":
                data["ops"] = event
                step = "accuracy"
            elif kind == "accuracy":
                for name, record in _accuracy(ref, event).items():
                    data["metrics"][name] = record
                if event.get("eval_peak_rss_mb") is not None:
                    whole = {} if event.get("eval_peak_rss_reset", True) else {"includes_generation": True}
                    data["metrics"]["eval_peak_rss_mb"] = metric("eval_peak_rss_mb", [event["eval_peak_rss_mb"]],
                                                                 **whole)
                step = "finish"
            elif kind == "done":
                data["metrics"]["peak_rss_mb"] = metric("peak_rss_mb", [event["peak_rss_mb"]])
                if event.get("load"):
                    data["environment"]["load"] = event["load"]
                data["complete"] = True
            elif kind == "error":
                raise DeviceError(f"runner failed: {event['message']}")
        if not data["complete"]:
            raise DeviceError("the runner stopped without finishing")
    except DeviceError as e:
        data["error"] = f"device {device.name}: {step}: {e}"
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what was measured goes back to the caller to keep
        data["error"] = f"device {device.name}: {step}: interrupted"
        raise Interrupted(_finish(data, runs, device)) from None
    on_step("done", total, total)
    return _finish(data, runs, device)


class Interrupted(KeyboardInterrupt):
    """A profile stopped by Ctrl-C or SIGTERM; ``result`` holds the runs measured (incomplete)."""

    def __init__(self, result: RunResult):
        super().__init__(result.error)
        self.result = result


def _finish(data: dict, runs: list[dict], device: DeviceProfile) -> RunResult:
    if device.emulated:
        mark_emulated(data["metrics"])
    data["runs"] = runs
    data["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return RunResult.from_json(data)


def eval_text_for(model: str, settings: Settings):
    """The evaluation text a profile of ``model`` (a manifest's ``source.model``) scores: --eval-text,
    else the shipped one for that model (builtin:tiny's own stories, English prose for the rest)."""
    from edgekit import data

    if settings.eval_text is None:
        return data.read(data.default_eval_path(model))
    try:
        return data.read(Path(settings.eval_text))
    except (OSError, UnicodeDecodeError) as e:
        raise EdgekitError(f"cannot read --eval-text {settings.eval_text}: "
                           f"{getattr(e, 'strerror', None) or e}") from None


def _inputs(art, settings: Settings, text: str) -> tuple[list[int], list[int], int]:
    """The latency prompt (prompt_len tokens) and the evaluation tokens of ``text``, from the
    artifact's tokenizer."""

    max_context = art.manifest.max_context
    settings.check()
    if settings.prompt_len + settings.gen > max_context:
        raise EdgekitError(f"--prompt-len + --gen = {settings.prompt_len + settings.gen} "
                           f"exceeds the model's context of {max_context}")
    ids = artifacts.tokenizer(art.path).encode(text).ids
    if len(ids) < 16:
        raise EdgekitError(f"the evaluation text has only {len(ids)} tokens; give at least 16")
    prompt = (ids * (settings.prompt_len // len(ids) + 1))[: settings.prompt_len]
    window = min(settings.window, max_context)
    return prompt, ids[: settings.eval_tokens + 1], window


def _reference(art, eval_ids: list[int], window: int):
    from edgekit.environment import quiet_libraries
    from edgekit.profile.reference import reference_stats
    from edgekit.source import resolve

    m = art.manifest
    here = m.source_path is not None and Path(m.source_path).is_dir()
    spec = str(Path(m.source_path)) if here else m.model
    source = resolve(spec, revision=None if here else m.revision, allow_pickle=m.allow_pickle)
    if source.content_sha256 != m.content_sha256:
        raise EdgekitError(f"the reference model at {spec} has changed since {art.path} was exported")
    quiet_libraries()
    return reference_stats(source, eval_ids, window)


def _accuracy(ref, event: dict) -> dict[str, dict]:
    """The accuracy metric records, each with its standard error; top-1 also with its 95 % interval."""
    from edgekit.profile.reference import accuracy_metrics, wilson_interval

    if ref is None:
        return {}
    try:
        figures = accuracy_metrics(ref, event)
    except (KeyError, ValueError) as e:
        raise DeviceError(f"malformed accuracy answer: {e}") from None
    n = int(ref.target_logprob.size)
    records = {name: metric(name, [value], se, tokens=n) for name, (value, se) in figures.items()}
    records["top1_agree"]["ci95"] = list(wilson_interval(figures["top1_agree"][0], n))
    return records


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None  # anything a device prints besides the protocol (login banners, warnings)
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _manifest_entry(folder: Path) -> dict:
    path = folder / artifacts.MANIFEST
    return {"path": artifacts.MANIFEST, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _digest(art) -> dict:
    m = art.manifest
    return {
        "path": str(art.path),
        "name": art.path.name,
        "target": m.target,
        "recipe": m.recipe_name,
        "model": m.model,
        "model_type": m.model_type,
        "content_sha256": m.content_sha256,
        "manifest_sha256": hashlib.sha256((art.path / artifacts.MANIFEST).read_bytes()).hexdigest(),
        "parity_passed": m.parity_passed,
        "exporter": m.exporter,
        "max_context": m.max_context,
        "toolchain": dict(m.toolchain or {}),
        # what accuracy is measured against where it is not the original float weights
        **({"reference": m.reference} if m.reference else {}),
    }


def result_json(result: RunResult) -> str:
    from edgekit import jsonfile

    return jsonfile.dumps(result.to_json()) + "\n"


def write_result(result: RunResult, path: Path) -> None:
    from edgekit.output import write_file

    write_file(path, result_json(result))


def keep_result(result: RunResult, path: Path | None) -> tuple[str | None, str | None]:
    """Write the result to ``path``; where that fails, to a file in the temporary folder, so no
    measured run is lost (``edgekit.output.keep``). Returns (where it is, None) or (where it is or
    None, why ``path`` failed)."""
    from edgekit.output import keep

    if path is None:
        return None, None
    return keep(path, result_json(result))
