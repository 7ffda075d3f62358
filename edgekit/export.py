"""The export stage: model source + recipe -> artifact folder with a manifest and a parity check."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from edgekit import __version__, artifact, recipes, targets
from edgekit.environment import quiet_libraries, versions
from edgekit.errors import EdgekitError, ParityError
from edgekit.runtime import load as runtime_load
from edgekit.runtime.measure import peak_rss_mb, reset_peak_rss
from edgekit.source import resolve


def export(
    model: str,
    target: str,
    recipe: str | None,
    out: Path,
    *,
    overwrite: bool = False,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    max_context: int | None = None,
    compute_units: str | None = None,
    exporter: str | None = None,
    calibration: str | None = None,
    parity: bool = True,
    on_stage: Callable[[str], None] = lambda name: None,
) -> artifact.Artifact:
    rec = recipes.parse(target, recipe, max_context, compute_units, exporter, calibration)
    tgt = targets.get(target)
    out = Path(out)
    artifact.check_destination(out, overwrite)
    source = resolve(
        model, revision=revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, supported=tgt.SUPPORTED
    )
    quiet_libraries()
    stages: dict[str, float] = {}
    stage_rss: dict[str, float] = {}

    @contextmanager
    def stage(name: str):
        on_stage(name)
        reset_peak_rss()
        t = time.perf_counter()
        yield
        stages[name] = round(time.perf_counter() - t, 3)
        stage_rss[name] = round(peak_rss_mb(), 1)

    started = time.perf_counter()
    with artifact.staged(out) as tmp:
        runtime = tgt.export(source, rec, tmp, stage)
        quantization = runtime.pop("quantization", None)  # what a quantizing target did: the recipe's record
        with stage("tokenizer"):
            tokenizer = _save_tokenizer(source, tmp)
        limit = model_context(source.path)
        runtime.setdefault("max_context", min(rec.max_context or limit, limit))
        export_info = {
            "wall_s": round(time.perf_counter() - started, 3),
            "stages": dict(stages),
            "peak_rss_mb": max(stage_rss.values(), default=round(peak_rss_mb(), 1)),
            "stage_peak_rss_mb": dict(stage_rss),
        }
        manifest = {
            "schema": artifact.SCHEMA,
            "edgekit_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "target": target,
            "recipe": {**rec.as_dict(), **({"quantization": quantization} if quantization else {})},
            "source": source.as_dict(),
            "runtime": runtime,
            "toolchain": versions(),
            "export": export_info,
            "files": artifact.file_entries(tmp),
        }
        if parity and not targets.runs_here(target):
            manifest["parity"] = {"passed": None, "skipped": f"needs {targets.HOST[target][1]}"}
        elif parity:
            artifact.write_manifest(tmp, manifest)  # the runtime opens the artifact from its manifest
            with stage("parity"):
                try:
                    lm = runtime_load(tmp)
                except ValueError as e:  # the backend's own words on why the runtime refused the file
                    raise EdgekitError(f"the exported {target} artifact does not load: {e}") from None
                manifest["parity"] = _parity(source, tokenizer, lm, rec)
        else:
            manifest["parity"] = {"passed": None, "skipped": True}
        manifest["export"]["stages"] = stages
        manifest["export"]["stage_peak_rss_mb"] = stage_rss
        artifact.write_manifest(tmp, manifest)
    result = artifact.Artifact(out, manifest)
    if manifest["parity"]["passed"] is False:
        raise ParityError(
            f"parity check failed for {out} ({'; '.join(manifest['parity']['failures'])}); the artifact is kept"
        )
    return result


def _parity(source, tokenizer, lm, rec) -> dict:
    from edgekit import parity

    ref = parity.reference(source, lambda text: tokenizer.encode(text).ids)
    return parity.compare(ref, lm, rec.parity)


def _save_tokenizer(source, folder: Path):
    """Copy the model's tokenizer into the artifact as tokenizer.json (what the runner reads)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    if not (folder / "tokenizer.json").is_file():
        try:
            tok = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
        except (OSError, ValueError) as e:
            raise EdgekitError(f"{source.spec} has no usable tokenizer: {str(e).splitlines()[0]}") from None
        tok.save_pretrained(folder)
    if not (folder / "tokenizer.json").is_file():
        raise EdgekitError(f"{source.spec} has no fast tokenizer (tokenizer.json), which edgekit's runner needs")
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def model_context(model_path: Path) -> int:
    """The model's own context limit, from its config."""
    import json

    config = json.loads((model_path / "config.json").read_text())
    config = config.get("text_config", config)
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)
