"""The export stage: model source + recipe -> artifact folder with a manifest and a parity check."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from edgekit import __version__, artifact, model_meta, shipping, targets
from edgekit.core.model import model_context
from edgekit.environment import quiet_libraries, versions
from edgekit.runtime.machine import idle_threads
from edgekit.errors import EdgekitError, ParityError, first_line
from edgekit.runtime import load as runtime_load
from edgekit.runtime.measure import peak_rss_mb, reset_peak_rss
from edgekit.recipes import Recipe
from edgekit.source import ModelSource, check_supported, is_gguf, resolve
from edgekit.targets.memory import release_heap


def export(
    source: ModelSource,
    recipe: Recipe,
    out: Path,
    *,
    overwrite: bool = False,
    parity: bool = True,
    on_stage: Callable[[str], None] = lambda name: None,
) -> artifact.Artifact:
    """Write the artifact of ``source`` made by ``recipe`` (its target, scheme, context and target
    options) to the folder ``out``, with its manifest, and check it against the fp32 PyTorch model
    (``parity``). The strings a user writes are parsed before this, at the edges: the model by
    ``source_for`` (or ``edgekit.source.resolve``), the recipe by ``edgekit.recipes.parse``."""
    begun = time.perf_counter()
    rec, target, out = recipe, recipe.target, Path(out)
    check_inputs(rec, out, overwrite, source.spec)
    spec = targets.spec(target)
    tgt = spec.module()
    check_supported(source.spec, source.config(), tgt.SUPPORTED, getattr(tgt, "refusal", None))
    artifact.check_apart(out, source.path)
    quiet_libraries()
    hf_tokenizer = load_tokenizer(source)
    if parity:
        _check_parity_fits(hf_tokenizer, min(rec.max_context or model_context(source.path), model_context(source.path)))
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
    with artifact.staged(out, artifact.check_replaceable if overwrite else None) as tmp:
        runtime = tgt.export(source, rec, tmp, stage)
        runtime.setdefault("backend", spec.runner_backend)  # what opens it, on the host and on a device
        quantization = runtime.pop("quantization", None)  # what a quantizing target did: the recipe's record
        with stage("tokenizer"):
            tokenizer = _save_tokenizer(hf_tokenizer, source, tmp)
            meta = model_meta.of(source)
            shipping.write_runtime_files(tmp, source.path, meta, tokenizer)
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
            "files": artifact.file_entries(tmp, runtime["model_file"]),
        }
        if parity and not spec.runs_here():
            manifest["parity"] = {"passed": None, "skipped": f"needs {spec.system_name}"}
        elif parity:
            artifact.write_manifest(tmp, manifest)  # the runtime opens the artifact from its manifest
            with stage("parity"):
                from edgekit import parity as parity_check

                threads = idle_threads()
                # the reference first, its PyTorch model let go before the artifact loads: one model at a time
                ref = parity_check.reference(source, lambda text: tokenizer.encode(text).ids, threads=threads)
                release_heap()
                try:
                    lm = runtime_load(tmp, threads, spec.runner_backend)
                except ValueError as e:  # the backend's own words on why the runtime refused the file
                    raise EdgekitError(f"the exported {target} artifact does not load: {e}") from None
                manifest["parity"] = parity_check.compare(ref, lm, rec.parity)
            if hasattr(tgt, "standard_check"):
                with stage("standard runtime"):
                    checked = standard_check(tgt, tmp, lm, tokenizer, meta)
                    del lm
                    release_heap()
                manifest["standard_runtime"] = checked
                if not (checked["loaded"] and checked["tokens_match"]):
                    manifest["parity"]["passed"] = False
                    manifest["parity"].setdefault("failures", []).append(
                        f"{checked['api']} " + (f"does not load it: {checked.get('error')}" if not checked["loaded"]
                                                else "generates other greedy tokens than edgekit's runner"))
        else:
            manifest["parity"] = {"passed": None, "skipped": True}
        manifest["export"]["stages"] = stages
        manifest["export"]["stage_peak_rss_mb"] = stage_rss
        # the process's peak with the parity stage's (the reference model and the artifact loaded)
        manifest["export"]["peak_rss_mb"] = max(stage_rss.values(), default=export_info["peak_rss_mb"])
        manifest["export"]["total_s"] = round(time.perf_counter() - begun, 3)  # with loading the model and parity
        # the model card reads the parity figures; it and the source's licence join the files
        shipping.write_card(tmp, meta, manifest)
        shipped = [shipping.CARD] + [name for name in [shipping.write_license(tmp, meta)] if name]
        manifest["files"] = sorted([f for f in manifest["files"] if f["path"] not in shipped]
                                   + artifact.file_entries(tmp, runtime["model_file"], only=shipped),
                                   key=lambda f: f["path"])
        artifact.write_manifest(tmp, manifest)
    result = artifact.Artifact(out, manifest)
    # their sha256 were just taken: a run needs not read them again
    artifact.remember_verified(out, result.manifest.files)
    if result.manifest.parity_passed is False:
        raise ParityError(
            f"parity check failed for {out} ({'; '.join(result.manifest.parity['failures'])}); the artifact is kept"
        )
    return result


CHECK_MESSAGE = "What is the capital of France?"  # the standard runtime's prompt (as the user's turn, where
CHECK_TEXT = "Once upon a time"  # the model has a chat template; else this text)
CHECK_TOKENS = 16


def standard_check(tgt, folder: Path, lm, tokenizer, meta) -> dict:
    """The artifact in its runtime's own LLM API (``tgt.standard_check``): the greedy tokens it generates
    after the check's prompt against those edgekit's runner (``lm``) generates. The record: runtime,
    version, api, loaded, tokens_match, tokens (how many compared), prompt, error."""
    from edgekit.generate import _chat_prompt
    from edgekit.runtime.generate import greedy

    text = _chat_prompt(folder, CHECK_MESSAGE) if meta.chat_template else CHECK_TEXT
    prompt = tokenizer.encode(text, add_special_tokens=not meta.chat_template).ids
    expected = greedy(lm, prompt, CHECK_TOKENS, stop=meta.eos_ids).tokens
    lm.reset()
    try:
        got = dict(tgt.standard_check(folder, prompt, expected))
    except Exception as e:  # a runtime's own failure, in its words
        got = {"loaded": False, "error": first_line(e)}
    tokens = list(got.pop("tokens", None) or [])
    loaded = bool(got.get("loaded"))
    return {
        "runtime": got.get("runtime"), "version": got.get("version"), "api": got.get("api") or got.get("runtime"),
        "loaded": loaded, "tokens_match": loaded and tokens == expected, "tokens": len(expected),
        "prompt": CHECK_MESSAGE if meta.chat_template else CHECK_TEXT,
        **({"got": tokens, "expected": expected} if loaded and tokens != expected else {}),
        **({"error": got.get("error")} if not loaded else {}),
    }


def check_inputs(recipe: Recipe, out: Path, overwrite: bool, model: str | None = None) -> None:
    """What an export refuses before it reads the model: an ``out`` that is not free (or, with
    ``overwrite``, not an artifact of ours), the rule for what it writes (``edgekit.output.check_paths``:
    ``out`` is not, and is not inside, the ``model`` as the user named it or the calibration text, nor
    does it hold one that --overwrite would delete), a missing calibration text."""
    from edgekit.output import Read, Write, check_paths
    from edgekit.source import local_path

    artifact.check_destination(Path(out), overwrite)
    check_paths([Read("the model", model and local_path(model)), Read("--calibration", recipe.calibration)],
                [Write("-o", out, folder=True, replaces=True)])
    if recipe.calibration is not None and not Path(recipe.calibration).is_file():
        raise EdgekitError(f"calibration text not found: {recipe.calibration}")


def source_for(target: str, model: str, **options) -> ModelSource:
    """``model`` (a builtin, folder, GGUF file or hub id) resolved for ``target``: a model the target
    cannot convert is refused before it is hashed or converted. ``options``: ``edgekit.source.resolve``'s."""
    tgt = targets.get(target)
    return resolve(model, supported=tgt.SUPPORTED, refusal=getattr(tgt, "refusal", None), **options)


VOCABULARY_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "vocab.txt")  # or *.tiktoken


def load_tokenizer(source):
    """The model's fast tokenizer, loaded before any heavy work, so that a missing, corrupt or
    remote-code tokenizer is said in one line, naming what is missing and where, before the export
    rather than after it."""
    import json

    from transformers import AutoTokenizer

    path = source.path
    config = path / "tokenizer_config.json"
    try:
        remote = config.is_file() and bool(json.loads(config.read_text()).get("auto_map"))
    except (OSError, ValueError, AttributeError):
        raise EdgekitError(f"{config} is not a valid tokenizer config (not a JSON object)") from None
    if remote and not source.trust_remote_code:
        raise EdgekitError(f"the tokenizer of {source.spec} ships its own code (auto_map in {config.name}); "
                           "pass --trust-remote-code if you trust it")
    if (not remote and not any((path / name).is_file() for name in VOCABULARY_FILES)
            and not any(path.glob("*.tiktoken"))):
        raise EdgekitError(f"{source.spec} has no tokenizer: none of {', '.join(VOCABULARY_FILES)} in {path}")
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as e:  # the tokenizers library's own parse error (a bare Exception)
            raise EdgekitError(f"{path / 'tokenizer.json'} is not a valid tokenizer: {first_line(e)}") from None
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=source.trust_remote_code)
    except Exception as e:  # transformers' words for what it could not find or read
        raise EdgekitError(f"cannot load the tokenizer of {source.spec} from {path}: {first_line(e)}") from None
    if not getattr(tok, "is_fast", False):
        raise EdgekitError(f"{source.spec} has no fast tokenizer (tokenizer.json), which edgekit's runner needs")
    return tok


def _check_parity_fits(tok, context: int) -> None:
    """The parity check runs prompts and their continuations through the artifact's KV cache: a
    context too short for them is refused before the export, not found in the parity check after it."""
    from edgekit import parity

    need = max(len(tok(p).input_ids) for p in parity.PROMPTS) + parity.NEW_TOKENS
    if context < need:
        raise EdgekitError(f"a context of {context} tokens is too short for the parity check's sequences of up to "
                           f"{need} tokens; give --max-context {need} or more, or --no-parity")


def _save_tokenizer(tok, source, folder: Path):
    """Copy the model's tokenizer into the artifact as tokenizer.json (what the runner reads), written
    without indentation: the same tokenizer in less than half the bytes a device is sent (SmolLM2's
    1.6 MB instead of 3.5 MB)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        tok.save_pretrained(folder)
        _drop_gguf_copy(folder / "tokenizer.model")
    if not path.is_file():
        raise EdgekitError(f"{source.spec} has no fast tokenizer (tokenizer.json), which edgekit's runner needs")
    for name in VOCABULARY_FILES + ("merges.txt",):  # tokenizer.json holds the vocabulary: no second copy
        if name != "tokenizer.json":
            (folder / name).unlink(missing_ok=True)
    for extra in folder.glob("*.tiktoken"):
        extra.unlink()
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.save(str(path), pretty=False)
    return tokenizer


def _drop_gguf_copy(path: Path) -> None:
    """A tokenizer that transformers rebuilt from a GGUF may save that whole GGUF (weights and all) as
    its ``tokenizer.model``; the artifact's ``tokenizer.json`` already holds the tokenizer, so the copy goes."""
    if is_gguf(path):
        path.unlink()

