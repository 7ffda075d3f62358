"""A sweep: every model x recipe x device, each export made once (cached) and profiled into one result file.

Three phases: plan (each model resolved once; every combination's export key, cache folder and
result fingerprint; what is already measured), export (each missing export once), profile (each
combination on its device, its result file written). The export and profile phases hand their
tasks to an executor (``edgekit.executor``: serial in this process by default); progress is a
stream of ``Event``s to one listener.

Exports are cached under ``<cache>/<model>-<target>-<recipe>-<key>``, the key a hash of the model's
content hash and hub revision, the recipe (options and context included), the parity setting and
the toolchain versions: the same export is never made twice. An export is staged and renamed, so an
interrupted one leaves nothing in the cache. A combination whose complete result file was written
for the same export, settings and device is kept as it is: an interrupted sweep resumes where it
stopped. A combination that fails is recorded in its result file (``complete: false`` and
``error``) and the sweep goes on.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from edgekit import recipes
from edgekit.config import known_keys, number, read_toml, relative_to, string_list, typed
from edgekit.devices import DEFAULT as DEFAULT_DEVICE, DeviceProfile, load_profile, require_capable
from edgekit.errors import EdgekitError, ParityError, interrupted
from edgekit.executor import Executor, Note, Serial
from edgekit.output import Read, Write, check_paths
from edgekit.core.results import RESULT_SCHEMA, RunResult, fingerprint
from edgekit.profile.session import Interrupted, Settings, eval_text_for, keep_result, profile, write_result
from edgekit.source import ModelSource

KEYS = ("models", "recipes", "options", "devices", "profile", "output", "cache", "parity", "max_context",
        "allow_pickle")
# a [profile] table's keys: Settings' fields; their types where not numbers (those: edgekit.config.NUMBERS)
_SETTINGS = ("prompt_len", "gen", "runs", "warmup", "threads", "eval_text", "eval_tokens", "window", "accuracy",
             "timeout_s")
_SETTINGS_TYPES = {"eval_text": str, "accuracy": bool}


@dataclass(frozen=True)
class Combination:
    model: str
    recipe: recipes.Recipe
    device: DeviceProfile

    @property
    def label(self) -> str:
        return f"{self.model} {self.recipe.target}/{self.recipe.name} on {self.device.name}"

    @property
    def filename(self) -> str:
        return f"{_slug(self.model)}__{self.recipe.target}-{self.recipe.name}__{_slug(self.device.name)}.json"


@dataclass(frozen=True)
class SweepConfig:
    file: Path
    models: tuple[str, ...]
    recipes: tuple[recipes.Recipe, ...]
    devices: tuple[DeviceProfile, ...]
    settings: Settings
    output: Path  # one result file per combination
    cache: Path  # exported artifacts
    parity: bool
    allow_pickle: bool = False  # models may be read from pickle weights (export's --allow-pickle)

    def combinations(self) -> list[Combination]:
        return [Combination(m, r, d) for m in self.models for r in self.recipes for d in self.devices]


@dataclass(frozen=True)
class Outcome:
    combination: Combination
    result: Path
    status: str  # "measured", "kept" (a complete result of an earlier run), "failed"
    export: str | None  # "exported", "cached", or None where no export was reached
    seconds: float
    error: str | None = None
    unsaved: RunResult | None = None  # a measured result that could be written nowhere (shown all the same)


def export_cache() -> Path:
    from edgekit.environment import cache_root

    return cache_root() / "exports"


def load_config(path: Path, extra: tuple[str, ...] = ()) -> tuple[SweepConfig, dict]:
    """The sweep part of ``path``, checked; and the raw tables named in ``extra`` (for `edgekit check`)."""
    path = Path(path)
    data = read_toml(path)
    where = str(path)
    known_keys(data, (*KEYS, *extra), where)
    models = string_list(data, "models", where)
    recipe_table = typed(data, "recipes", dict, where)
    if not recipe_table:
        raise EdgekitError(f"{where}: [recipes] must list recipes per target, e.g. onnx = [\"fp32\", \"int4\"]")
    max_context = number(data, "max_context", where)
    option_table = typed(data, "options", dict, where, {})  # target options per target: onnx = {exporter = "optimum"}
    known_keys(option_table, recipe_table, f"{where} [options]")
    parsed = []
    for target in recipe_table:
        options = typed(option_table, target, dict, f"{where} [options]", {})
        for key in options:
            typed(options, key, str, f"{where} [options.{target}]")
        for name in string_list(recipe_table, target, f"{where} [recipes]"):
            try:
                parsed.append(recipes.parse(target, name, max_context, options))
            except EdgekitError as e:
                raise EdgekitError(f"{where} [recipes]: {e}") from None
    devices = []
    for spec in string_list(data, "devices", where, required=False) or (DEFAULT_DEVICE,):
        is_file = spec.endswith((".yaml", ".yml"))
        devices.append(load_profile(str(relative_to(path, spec)) if is_file else spec))
    table = typed(data, "profile", dict, where, {})
    known_keys(table, _SETTINGS, f"{where} [profile]")
    values = {k: typed(table, k, _SETTINGS_TYPES[k], f"{where} [profile]") if k in _SETTINGS_TYPES
              else number(table, k, f"{where} [profile]") for k in _SETTINGS if k in table}
    if "eval_text" in values:
        values["eval_text"] = relative_to(path, values["eval_text"])
    settings = Settings(**values)
    try:
        settings.check()
    except EdgekitError as e:
        raise EdgekitError(f"{where} [profile]: {e}") from None
    output = relative_to(path, typed(data, "output", str, where, "results"))
    cache = typed(data, "cache", str, where)
    config = SweepConfig(
        file=path, models=models, recipes=tuple(dict.fromkeys(parsed)), devices=tuple(devices), settings=settings,
        output=output, cache=relative_to(path, cache) if cache else export_cache(),
        parity=typed(data, "parity", bool, where, True), allow_pickle=typed(data, "allow_pickle", bool, where, False),
    )
    _unique_result_files(config, where)
    try:
        check_paths(*paths(config))
    except EdgekitError as e:
        raise EdgekitError(f"{where}: {e}") from None
    return config, {k: data[k] for k in extra if k in data}


def paths(config: SweepConfig, file_is: str = "the sweep file") -> tuple[list[Read], list[Write]]:
    """What a sweep reads (its file, the local models, the evaluation text, the device profiles) and
    writes (the output folder, each combination's result file, the export cache), for the rule of
    ``edgekit.output.check_paths``."""
    from edgekit.source import local_path

    reads = [Read(file_is, config.file), Read("[profile] eval_text", config.settings.eval_text),
             *(Read("the model", local_path(m)) for m in config.models),
             *(Read("the device profile", d.source) for d in config.devices)]
    writes = [Write("the output folder", config.output, folder=True),
              Write("the export cache" + (" (EDGEKIT_CACHE_DIR)" if config.cache == export_cache() else ""),
                    config.cache, folder=True),
              *(Write("the result file", config.output / c.filename) for c in config.combinations())]
    return reads, writes


def _unique_result_files(config: SweepConfig, where: str) -> None:
    """Two combinations must never share a result file (``models/m-x`` and ``models/m/x`` slug alike;
    a case-insensitive file system folds ``M`` and ``m``): one result would silently replace the other."""
    seen: dict[str, Combination] = {}
    for combo in config.combinations():
        other = seen.setdefault(combo.filename.lower(), combo)
        if other is not combo:
            raise EdgekitError(f"{where}: '{other.label}' and '{combo.label}' would write the same result file "
                               f"{combo.filename}; rename a model folder or a device")


@dataclass(frozen=True)
class Job:
    """One combination as the plan left it: where its export and result go, and whether it needs work."""

    index: int
    combination: Combination
    result: Path  # its result file
    source: ModelSource | None = None  # the model, resolved (None: the plan failed)
    folder: Path | None = None  # its export in the cache (shared by the combinations of one model and recipe)
    stamp: dict | None = None  # export key and fingerprint, recorded in its result as "sweep"
    kept: bool = False  # a complete result for the same fingerprint is there: nothing to do
    error: str | None = None  # why the plan failed for it


@dataclass(frozen=True)
class Exported:
    """What the export phase did for one cache folder."""

    folder: Path
    status: str | None  # "exported", "cached", or None where it failed
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class Event:
    """Progress of a sweep, for whoever shows it: a phase's step for a combination (``label``), or a
    combination finished (``outcome``)."""

    phase: str  # "plan", "export", "profile" or "done"
    label: str  # the combination ("" for the whole sweep)
    text: str
    done: int  # combinations finished so far
    total: int
    outcome: Outcome | None = None


def run(
    config: SweepConfig,
    listen: Callable[[Event], None] = lambda event: None,
    fresh: bool = False,
    executor: Executor | None = None,
) -> list[Outcome]:
    """Plan every combination, export what is missing (each export once), profile each combination
    and write its result file; never stops for a failing combination (Ctrl-C does stop it: what was
    finished is kept, and a rerun resumes). ``fresh``: measure every combination again, even those
    with a complete result (exports stay cached). ``executor``: how the export and profile tasks run
    (``Serial`` by default); progress goes to ``listen`` as events."""
    executor = executor or Serial()
    jobs = plan(config, fresh, listen)
    total = len(jobs)
    first = _first_jobs(jobs)
    exports = {e.folder: e for e in executor.map(
        "export", partial(export_task, config), list(first.values()),
        lambda job, text: listen(Event("export", job.combination.label, f"export: {text}", job.index, total)),
    )}
    outcomes = []
    for outcome in executor.map(
        "profile", partial(profile_task, config, exports, {folder: job.index for folder, job in first.items()}), jobs,
        lambda job, text: listen(Event("profile", job.combination.label, text, job.index, total)),
    ):
        outcomes.append(outcome)
        listen(Event("profile", outcome.combination.label, outcome.status, len(outcomes), total, outcome))
    listen(Event("done", "", "done", total, total))
    return outcomes


def plan(config: SweepConfig, fresh: bool = False, listen: Callable[[Event], None] = lambda event: None) -> list[Job]:
    """Every combination with its export's cache folder and key and its result's fingerprint; each
    model resolved (and hashed) once. A combination whose complete result is there is ``kept``."""
    from edgekit.source import resolve

    combos = config.combinations()
    sources: dict[str, ModelSource | Exception] = {}
    reached: dict[str, str | None] = {}
    jobs = []
    for i, combo in enumerate(combos):
        result = config.output / combo.filename
        listen(Event("plan", combo.label, "plan", i, len(combos)))
        try:
            if combo.model not in sources:
                try:
                    sources[combo.model] = resolve(combo.model, allow_pickle=config.allow_pickle)
                except Exception as e:  # each of the model's combinations fails with it
                    sources[combo.model] = e
            source = sources[combo.model]
            if isinstance(source, Exception):
                raise source
            key = export_key(source, combo.recipe, config.parity)
            text = eval_text_for(combo.model, config.settings).sha256
            stamp = {"export_key": key, "fingerprint": _fingerprint(key, config.settings, combo.device, text)}
            folder = cache_folder(config, combo, key)
            kept = not fresh and _is_done(result, stamp["fingerprint"])
            if not kept:  # no export for a device that cannot run it, a context too short, a device unreachable
                require_capable(combo.device, combo.recipe.target, folder)
                _fits(source, combo.recipe, config.settings)
                _reach(combo.device, reached)
            jobs.append(Job(i, combo, result, source, folder, stamp, kept))
        except Exception as e:  # recorded in its result file by the profile phase
            jobs.append(Job(i, combo, result, error=_one_line(e)))
    return jobs


def _fits(source: ModelSource, recipe: recipes.Recipe, settings: Settings) -> None:
    """The latency prompt and its generation fit the context the export will have (the recipe's, the
    target's default, the model's own: the least of them), known before the export."""
    from edgekit import targets
    from edgekit.core.model import model_context

    limits = [model_context(source.path), recipe.max_context or getattr(targets.get(recipe.target),
                                                                          "DEFAULT_MAX_CONTEXT", None)]
    context = min(n for n in limits if n)
    if settings.prompt_len + settings.gen > context:
        raise EdgekitError(f"prompt_len + gen = {settings.prompt_len + settings.gen} exceeds the context of "
                           f"{context} tokens its {recipe.target} export will have (give max_context, or less "
                           "prompt_len or gen)")


def _reach(device: DeviceProfile, reached: dict[str, str | None]) -> None:
    """A device reached over the network (not this machine, nor an emulator on it) answers, asked once
    per sweep before any export: a closed port is found now, not after every export."""
    from edgekit.devices import connect

    if device.transport == DEFAULT_DEVICE or device.emulated:
        return
    if device.name not in reached:
        try:
            connect(device).check()
            reached[device.name] = None
        except Exception as e:
            reached[device.name] = f"device {device.name}: cannot reach it: {_one_line(e)}"
    if reached[device.name]:
        raise EdgekitError(reached[device.name])


def _first_jobs(jobs: list[Job]) -> dict[Path, Job]:
    """Each export some combination still needs, by its cache folder, with the first combination that
    needs it (the export is counted for that one; the others find it cached)."""
    first: dict[Path, Job] = {}
    for job in jobs:
        if job.error is None and not job.kept:
            first.setdefault(job.folder, job)
    return first


def export_task(config: SweepConfig, job: Job, note: Note) -> Exported:
    """The export phase's task: the cached export of the job's model and recipe, made where missing."""
    started = time.perf_counter()
    try:
        status = _artifact(config, job, note)
        return Exported(job.folder, status, round(time.perf_counter() - started, 1))
    except Exception as e:  # every combination of this export fails with it
        return Exported(job.folder, None, round(time.perf_counter() - started, 1), _one_line(e))


def profile_task(config: SweepConfig, exports: dict[Path, Exported], first: dict[Path, int], job: Job,
                 note: Note) -> Outcome:
    """The profile phase's task: profile the job's export on its device, write its result file."""
    started, combo = time.perf_counter(), job.combination
    if job.kept:
        return Outcome(combo, job.result, "kept", None, 0.0)
    made, counted = exports.get(job.folder), first.get(job.folder) == job.index
    export = None if made is None or made.status is None else made.status if counted else "cached"
    spent = made.seconds if made is not None and counted else 0.0
    error = job.error or (made.error if made is not None else None)
    try:
        if error is not None:
            raise _Failed(error)
        try:
            result = profile(job.folder, combo.device, config.settings, on_step=lambda text, done, total: note(text))
        except Interrupted as e:  # the sweep stops; the runs measured are kept (a rerun measures it again)
            with suppress(EdgekitError):
                write_result(e.result.replace(sweep=job.stamp), job.result)
            raise
        result = result.replace(sweep=job.stamp)
        where, problem = keep_result(result, job.result)
        if problem:  # measured, but not written where asked (a full disk): kept elsewhere, or at least shown
            kept = f"its result is in {where} instead" if where else "nothing else could be written"
            return Outcome(combo, Path(where) if where else job.result, "failed", export,
                           round(spent + time.perf_counter() - started, 1), f"{problem}; {kept}",
                           unsaved=None if where else result)
        status, error = ("measured", None) if result.complete else ("failed", result.error)
    except Exception as e:  # a failing combination is recorded and the sweep goes on
        status, error = "failed", error if isinstance(e, _Failed) else _one_line(e)
        try:
            write_result(RunResult.from_json(_failure(config, combo, error)), job.result)
        except EdgekitError as written:  # its record could not be written either (a full disk): said, not fatal
            error = f"{error} (and its result file: {written})"
    return Outcome(combo, job.result, status, export, round(spent + time.perf_counter() - started, 1), error)


class _Failed(Exception):
    """A combination that failed before its profile (plan or export): its error is said as it was."""


def _artifact(config: SweepConfig, job: Job, note: Note) -> str:
    """Make the job's export in the cache where missing or damaged: "cached" or "exported"."""
    from edgekit.export import export

    folder = job.folder
    if (folder / "edgekit.json").is_file() and _damage(folder) is None:
        return "cached"
    config.cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.with_name(folder.name + ".lock"), lambda: note("waiting for another sweep")):
        if (folder / "edgekit.json").is_file():  # another sweep on the same cache made it meanwhile
            damage = _damage(folder)
            if damage is None:
                return "cached"
            # the cache is edgekit's own: a damaged entry is made again, not left to fail every run
            note(f"the cached export is damaged ({damage}): exporting it again")
            shutil.rmtree(folder)
        try:
            export(job.source, job.combination.recipe, folder, parity=config.parity, on_stage=note)
        except ParityError:
            pass  # the artifact is kept with its failed parity in the manifest: profiled, and `edgekit check` fails it
    return "exported"


def _damage(folder: Path) -> str | None:
    """What is wrong with a cached export (its manifest, a file changed or missing), None where it is whole."""
    from edgekit import artifact

    try:
        artifact.verify(artifact.load(folder))
    except EdgekitError as e:
        return str(e).replace(f"{folder}: ", "").split("; export it again")[0]
    return None


def cache_folder(config: SweepConfig, combo: Combination, key: str) -> Path:
    """Where the combination's export (of export key ``key``) is cached."""
    return config.cache / f"{_slug(combo.model)}-{combo.recipe.target}-{combo.recipe.name}-{key}"


@contextmanager
def _exclusive(lock: Path, on_wait: Callable[[], None]):
    """Hold an exclusive lock on the file ``lock`` (made if missing) for the block: sweeps sharing an
    export cache make each artifact once. Where the OS has no ``fcntl`` the block runs unlocked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def export_key(source, recipe: recipes.Recipe, parity: bool) -> str:
    """What makes two exports the same: model content, recipe, parity setting, toolchain."""
    from edgekit.environment import versions

    what = {
        "model": source.content_sha256, "revision": source.revision, "recipe": recipe.as_dict(), "parity": parity,
        "toolchain": versions(),
    }
    return fingerprint(what)


def _fingerprint(export_key: str, settings: Settings, device: DeviceProfile, eval_sha256: str) -> str:
    """What makes a result: a result measured on another evaluation text is measured again."""
    what = {"export": export_key, "settings": settings.recorded(), "device": device.as_dict(), "eval_text": eval_sha256}
    return fingerprint(what)


def _is_done(result_path: Path, fingerprint: str) -> bool:
    try:
        data = json.loads(result_path.read_text())
    except (OSError, ValueError):
        return False
    return bool(data.get("complete")) and data.get("sweep", {}).get("fingerprint") == fingerprint


def _failure(config: SweepConfig, combo: Combination, error: str) -> dict:
    """The result file of a combination that failed before a profile could say more."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": RESULT_SCHEMA, "complete": False, "error": error,
        "artifact": {"model": combo.model, "target": combo.recipe.target, "recipe": combo.recipe.name,
                     "name": combo.filename.removesuffix(".json")},
        "device": combo.device.as_dict(),
        "settings": {**config.settings.recorded(), "eval_text": str(config.settings.eval_text or "shipped")},
        "metrics": {}, "runs": [], "started": now, "finished": now,
    }


def _one_line(e: BaseException) -> str:
    """A combination's error in one line; an error that a Ctrl-C became inside a library
    (``edgekit.errors.interrupted``) stops the sweep as the Ctrl-C itself does."""
    if interrupted(e):
        raise KeyboardInterrupt from None
    first = (str(e).strip().splitlines() or [""])[0]
    return first if isinstance(e, EdgekitError) else f"unexpected {type(e).__name__}: {first}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
