"""A sweep: every model x recipe x device, each export made once (cached) and profiled into one result file.

Exports are cached under ``<cache>/<model>-<target>-<recipe>-<key>``, the key a hash of the model's
content hash and hub revision, the recipe (options and context included), the parity setting and
the toolchain versions: the same export is never made twice. An export is staged and renamed, so an
interrupted one leaves nothing in the cache. A combination whose complete result file was written
for the same export, settings and device is kept as it is: an interrupted sweep resumes where it
stopped. A combination that fails is recorded in its result file (``complete: false`` and
``error``) and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgekit import recipes
from edgekit.config import known_keys, read_toml, relative_to, string_list, typed
from edgekit.devices import DeviceProfile, load_profile, refusal
from edgekit.errors import EdgekitError, ParityError
from edgekit.output import check_folder
from edgekit.profile.session import RESULT_SCHEMA, Interrupted, RunResult, Settings, eval_text_for, profile, write_result

KEYS = ("models", "recipes", "devices", "profile", "output", "cache", "parity", "max_context")
_SETTINGS_TYPES = {
    "prompt_len": int, "gen": int, "runs": int, "warmup": int, "threads": int, "eval_text": str, "eval_tokens": int,
    "window": int, "accuracy": bool, "timeout_s": (int, float),
}


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
    max_context = typed(data, "max_context", int, where)
    parsed = []
    for target in recipe_table:
        for name in string_list(recipe_table, target, f"{where} [recipes]"):
            try:
                parsed.append(recipes.parse(target, name, max_context))
            except EdgekitError as e:
                raise EdgekitError(f"{where} [recipes]: {e}") from None
    devices = []
    for spec in string_list(data, "devices", where, required=False) or ("local",):
        is_file = spec.endswith((".yaml", ".yml"))
        devices.append(load_profile(str(relative_to(path, spec)) if is_file else spec))
    table = typed(data, "profile", dict, where, {})
    known_keys(table, _SETTINGS_TYPES, f"{where} [profile]")
    values = {k: typed(table, k, t, f"{where} [profile]") for k, t in _SETTINGS_TYPES.items() if k in table}
    if "eval_text" in values:
        values["eval_text"] = relative_to(path, values["eval_text"])
    settings = Settings(**values)
    try:
        settings.check()
    except EdgekitError as e:
        raise EdgekitError(f"{where} [profile]: {e}") from None
    output = relative_to(path, typed(data, "output", str, where, "results"))
    check_folder(output, f"{where}: cannot write results to {output}")
    cache = typed(data, "cache", str, where)
    config = SweepConfig(
        file=path, models=models, recipes=tuple(dict.fromkeys(parsed)), devices=tuple(devices), settings=settings,
        output=output, cache=relative_to(path, cache) if cache else export_cache(),
        parity=typed(data, "parity", bool, where, True),
    )
    _unique_result_files(config, where)
    return config, {k: data[k] for k in extra if k in data}


def _unique_result_files(config: SweepConfig, where: str) -> None:
    """Two combinations must never share a result file (``models/m-x`` and ``models/m/x`` slug alike;
    a case-insensitive file system folds ``M`` and ``m``): one result would silently replace the other."""
    seen: dict[str, Combination] = {}
    for combo in config.combinations():
        other = seen.setdefault(combo.filename.lower(), combo)
        if other is not combo:
            raise EdgekitError(f"{where}: '{other.label}' and '{combo.label}' would write the same result file "
                               f"{combo.filename}; rename a model folder or a device")


def run(
    config: SweepConfig,
    on_step: Callable[[str, int, int], None] = lambda step, done, total: None,
    on_outcome: Callable[[int, int, Outcome], None] = lambda i, total, outcome: None,
    fresh: bool = False,
) -> list[Outcome]:
    """Export what is missing, profile each combination, write its result file; never stops for a
    failing combination (Ctrl-C does stop it: what was finished is kept, and a rerun resumes).
    ``fresh``: measure every combination again, even those with a complete result (exports stay cached)."""
    from edgekit.source import resolve

    combos = config.combinations()
    sources: dict = {}  # each model is resolved (and hashed) once per sweep
    outcomes = []
    for i, combo in enumerate(combos):
        started, export, result_path = time.perf_counter(), None, config.output / combo.filename

        def step(text: str, done: int, total: int, label=combo.label, i=i) -> None:
            on_step(f"{label}: {text}", i, len(combos))

        try:
            if combo.model not in sources:
                sources[combo.model] = resolve(combo.model)
            key = export_key(sources[combo.model], combo.recipe, config.parity)
            text = eval_text_for(combo.model, config.settings).sha256
            stamp = {"export_key": key, "fingerprint": _fingerprint(key, config.settings, combo.device, text)}
            if not fresh and _is_done(result_path, stamp["fingerprint"]):
                status, error = "kept", None
            else:
                why = refusal(combo.device, combo.recipe.target, _cache_folder(config, combo, key))
                if why:  # no export for a device that cannot run it
                    raise EdgekitError(f"device {combo.device.name}: push: {why}")
                folder, export = _artifact(config, combo, key, step)
                try:
                    result = profile(folder, combo.device, config.settings, on_step=step)
                except Interrupted as e:  # the sweep stops; the runs measured are kept (a rerun measures it again)
                    e.result.data["sweep"] = stamp
                    with suppress(EdgekitError):
                        write_result(e.result, result_path)
                    raise
                result.data["sweep"] = stamp
                write_result(result, result_path)
                status, error = ("measured", None) if result.complete else ("failed", result.data["error"])
        except Exception as e:  # a failing combination is recorded and the sweep goes on
            status, error = "failed", _one_line(e)
            write_result(RunResult(_failure(config, combo, error)), result_path)
        outcome = Outcome(combo, result_path, status, export, round(time.perf_counter() - started, 1), error)
        outcomes.append(outcome)
        on_outcome(i, len(combos), outcome)
    on_step("done", len(combos), len(combos))
    return outcomes


def _artifact(config: SweepConfig, combo: Combination, key: str, on_step) -> tuple[Path, str]:
    """The cached export of the combination, made where missing: (folder, "cached" or "exported")."""
    from edgekit.export import export

    folder = _cache_folder(config, combo, key)
    if (folder / "edgekit.json").is_file():
        return folder, "cached"
    config.cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.with_name(folder.name + ".lock"), lambda: on_step("export: waiting for another sweep", 0, 1)):
        if (folder / "edgekit.json").is_file():  # another sweep on the same cache made it meanwhile
            return folder, "cached"
        try:
            export(combo.model, combo.recipe.target, combo.recipe.name, folder, max_context=combo.recipe.max_context,
                   parity=config.parity, on_stage=lambda stage: on_step(f"export: {stage}", 0, 1))
        except ParityError:
            pass  # the artifact is kept with its failed parity in the manifest: profiled, and `edgekit check` fails it
    return folder, "exported"


def _cache_folder(config: SweepConfig, combo: Combination, key: str) -> Path:
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
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _fingerprint(export_key: str, settings: Settings, device: DeviceProfile, eval_sha256: str) -> str:
    """What makes a result: a result measured on another evaluation text is measured again."""
    what = {"export": export_key, "settings": asdict(settings), "device": device.as_dict(), "eval_text": eval_sha256}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        "settings": {**asdict(config.settings), "eval_text": str(config.settings.eval_text or "shipped")},
        "metrics": {}, "runs": [], "started": now, "finished": now,
    }


def _one_line(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return first if isinstance(e, EdgekitError) else f"unexpected {type(e).__name__}: {first}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
