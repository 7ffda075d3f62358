"""Every command, fed bad input: bad paths, bad manifests, bad result files, bad configs, bad strings.

The rule each case is held to (the README's "Exit codes"): exit 2, exactly one line on stderr that
starts with ``error:`` and says what is wrong (never a traceback, never the catch-all "unexpected X
... (set EDGEKIT_DEBUG=1 ...)"), nothing on stdout, and the workspace exactly as it was: nothing left
behind (no partial files or folders), nothing of the user's changed or deleted.
``test_every_command_has_cases`` holds a command added later to the same rule: it fails until the
command has rows in the table.

Everything here is refused before any real work (no export, no profile runs): the module takes
seconds. The workspace: ``art`` (a tiny ONNX artifact), ``mine`` (a user's folder), ``plain.txt`` (a
file), ``good.json`` (a result file), and for the case that needs it ``model`` (a tiny checkpoint); a
case's ``prepare`` adds what it needs (a damaged artifact ``bad``, a config ``c.toml``, a device
``dev.yaml``, a result ``bad.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

NOT_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")  # what the OS hands over for bytes that are not UTF-8
OTHER_ARCH = "x86_64" if platform.machine().lower() in ("aarch64", "arm64") else "aarch64"  # a cross-compile


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # "{ws}" stands for the workspace folder (the current folder too)
    says: str  # a fragment the error line must hold
    prepare: Callable[[Path], None] | None = None


# ----------------------------------------------------------------------------- what cases prepare


def manifest(change) -> Callable[[Path], None]:
    """``bad``: the artifact with its manifest changed (a function of the dict, or the raw text)."""

    def prepare(ws: Path) -> None:
        shutil.copytree(ws / "art", ws / "bad")
        path = ws / "bad" / "edgekit.json"
        if isinstance(change, str):
            path.write_text(change)
        else:
            data = json.loads(path.read_text())
            path.write_text(json.dumps(change(data)))

    return prepare


def damaged(name: str, data: bytes | None, relist: bool = False, **runtime) -> Callable[[Path], None]:
    """``bad``: the artifact with file ``name`` replaced by ``data`` (removed where None); with
    ``relist`` the manifest records the new file, so only the file itself is wrong."""

    def prepare(ws: Path) -> None:
        shutil.copytree(ws / "art", ws / "bad")
        path = ws / "bad" / name
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)
        if relist or runtime:
            m = json.loads((ws / "bad" / "edgekit.json").read_text())
            m["files"] = [f for f in m["files"] if f["path"] != name]
            if data is not None:
                m["files"].append({"path": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            m["runtime"].update(runtime)
            if runtime.get("model_file", "").endswith(".pte"):
                m["target"] = "executorch"
            (ws / "bad" / "edgekit.json").write_text(json.dumps(m))

    return prepare


def gguf_value(key: str, value: int) -> Callable[[Path], None]:
    """``bad``: the GGUF artifact (``gguf``) with the integer metadata ``key`` set to ``value`` and the
    manifest re-hashed (a crafted file: only its hyper-parameters are wrong)."""

    def prepare(ws: Path) -> None:
        import struct

        shutil.copytree(ws / "gguf", ws / "bad")
        path = ws / "bad" / "model.gguf"
        data = bytearray(path.read_bytes())
        name = key.encode()
        at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
        fmt = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}[struct.unpack_from("<I", data, at)[0]]
        struct.pack_into(fmt, data, at + 4, value)
        path.write_bytes(bytes(data))
        m = json.loads((ws / "bad" / "edgekit.json").read_text())
        for f in m["files"]:
            if f["path"] == "model.gguf":
                f["sha256"] = hashlib.sha256(data).hexdigest()
        (ws / "bad" / "edgekit.json").write_text(json.dumps(m))

    return prepare


def truncated_external_data(ws: Path) -> None:
    """``bad``: the ONNX artifact with its weights in an external data file that lacks its last 100
    bytes, and the manifest re-hashed."""
    import onnx

    shutil.copytree(ws / "art", ws / "bad")
    onnx.save(onnx.load(ws / "bad" / "model.onnx"), ws / "bad" / "model.onnx", save_as_external_data=True,
              location="model.onnx.data")
    data = (ws / "bad" / "model.onnx.data").read_bytes()
    (ws / "bad" / "model.onnx.data").write_bytes(data[:-100])
    m = json.loads((ws / "bad" / "edgekit.json").read_text())
    m["files"] = [f for f in m["files"] if f["path"] not in ("model.onnx", "model.onnx.data")]
    for name in ("model.onnx", "model.onnx.data"):
        b = (ws / "bad" / name).read_bytes()
        m["files"].append({"path": name, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()})
    (ws / "bad" / "edgekit.json").write_text(json.dumps(m))


def writes(name: str, text: str | bytes) -> Callable[[Path], None]:
    def prepare(ws: Path) -> None:
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_bytes(text if isinstance(text, bytes) else text.encode())

    return prepare


def result(change) -> Callable[[Path], None]:
    """``bad.json``: the good result with ``change`` applied."""

    def prepare(ws: Path) -> None:
        data = json.loads((ws / "good.json").read_text())
        change(data)
        (ws / "bad.json").write_text(json.dumps(data))

    return prepare


SWEEP = "models = ['builtin:tiny']\noutput = 'results'\ncache = 'cache'\n[recipes]\nonnx = ['fp32']\n"


def config(text: str) -> Callable[[Path], None]:
    return writes("c.toml", text)


def model_config(change, name: str = "config.json") -> Callable[[Path], None]:
    """``model`` (a tiny checkpoint) with its ``name`` changed: a dict's keys updated, or the raw text."""

    def prepare(ws: Path) -> None:
        path = ws / "model" / name
        if isinstance(change, str):
            path.write_text(change)
        else:
            path.write_text(json.dumps({**json.loads(path.read_text()), **change}))

    return prepare


def link(name: str, target: str) -> Callable[[Path], None]:
    """``name``: a symbolic link to ``target`` (relative to the link's folder; it may not exist, or be ``name``)."""

    def prepare(ws: Path) -> None:
        (ws / name).symlink_to(target)

    return prepare


def gguf_of(architecture: str) -> Callable[[Path], None]:
    """``a.gguf``: a GGUF file of ``architecture`` holding one small float tensor."""

    def prepare(ws: Path) -> None:
        import gguf
        import numpy as np

        w = gguf.GGUFWriter(str(ws / "a.gguf"), architecture)
        w.add_file_type(0)
        w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    return prepare


def copies(name: str, to: str) -> Callable[[Path], None]:
    def prepare(ws: Path) -> None:
        (ws / to).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ws / name, ws / to)

    return prepare


def env(name: str, value: str) -> Callable[[Path], None]:
    """The environment variable ``name`` set for the case ("{ws}": the workspace); the fixtures'
    monkeypatch puts it back after the test."""

    def prepare(ws: Path) -> None:
        os.environ[name] = value.replace("{ws}", str(ws))

    return prepare


def gguf_in_artifact(ws: Path) -> None:
    """``gart``: the artifact with a GGUF file (listed in its manifest, so that --overwrite may replace it)."""
    shutil.copytree(ws / "art", ws / "gart")
    data = b"GGUF" + bytes(60)
    (ws / "gart" / "model.gguf").write_bytes(data)
    m = json.loads((ws / "gart" / "edgekit.json").read_text())
    m["files"].append({"path": "model.gguf", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (ws / "gart" / "edgekit.json").write_text(json.dumps(m))


def both(*prepares) -> Callable[[Path], None]:
    def prepare(ws: Path) -> None:
        for p in prepares:
            p(ws)

    return prepare


# ----------------------------------------------------------------------------- the table

BAD_MANIFESTS = {
    "not-json": (manifest("{not json"), "is not valid JSON"),
    "a-list": (manifest("[]"), "not an edgekit manifest"),
    "schema-only": (manifest('{"schema": 1}'), "'target' is missing"),
    "schema-2": (manifest(lambda m: {**m, "schema": 2}), "has schema 2"),
    "no-files": (manifest(lambda m: {k: v for k, v in m.items() if k != "files"}), "'files' is missing"),
    "model-file-outside": (
        manifest(lambda m: {**m, "runtime": {**m["runtime"], "model_file": "../../other/model.onnx"}}),
        "is not a path inside the artifact"),
    "file-outside": (manifest(lambda m: {**m, "files": [*m["files"],
                                                        {"path": "/etc/passwd", "bytes": 1, "sha256": "0" * 64}]}),
                     "is not a path inside the artifact"),
    "changed-file": (damaged("tokenizer.json", b"{}" + b" " * 10), "tokenizer.json has 12 bytes, its manifest says"),
    "missing-file": (damaged("config.json", None), "config.json is missing"),
    "corrupt-tokenizer": (damaged("tokenizer.json", b'{"version": "1.0", "model": {', relist=True),
                          "is not a valid tokenizer"),
    "garbage-pte": (damaged("model.pte", b"\xff" * 4096, model_file="model.pte"), "not an ExecuTorch program"),
}

CASES: dict[str, Case] = {
    # export
    "export-missing-model": Case(("export", "{ws}/nope", "-o", "{ws}/out"), "model not found"),
    "export-model-is-a-file": Case(("export", "{ws}/plain.txt", "-o", "{ws}/out"), "got the file"),
    "export-markup-model": Case(("export", "models/smol[v2]", "-o", "{ws}/out"), "models/smol[v2]"),
    "export-not-utf8-model": Case(("export", f"./{NOT_UTF8}", "-o", "{ws}/out"), "model not found"),
    "export-invalid-hub-id": Case(("export", "org/na me", "-o", "{ws}/out"), "nor a valid hub id"),
    "export-unknown-target": Case(("export", "builtin:tiny", "-t", "tflite", "-o", "{ws}/out"),
                                  "unknown target 'tflite'"),
    "export-unknown-recipe": Case(("export", "builtin:tiny", "-r", "int3", "-o", "{ws}/out"), "unknown recipe 'int3'"),
    "export-existing-output": Case(("export", "builtin:tiny", "-o", "{ws}/mine"), "pass --overwrite"),
    "export-overwrite-users-folder": Case(("export", "builtin:tiny", "-o", "{ws}/mine", "--overwrite"), "not one"),
    "export-overwrite-the-source": Case(("export", "{ws}/model", "-o", "{ws}/model", "--overwrite"), "{ws}/model"),
    "export-overwrite-current-folder": Case(("export", "builtin:tiny", "-o", ".", "--overwrite"), "current folder"),
    "export-output-under-a-file": Case(("export", "builtin:tiny", "-o", "{ws}/plain.txt/out"), "cannot write"),
    "export-context-0": Case(("export", "builtin:tiny", "--max-context", "0", "-o", "{ws}/out"), "--max-context"),
    "export-context-2": Case(("export", "builtin:tiny", "--max-context", "2", "-o", "{ws}/out"),
                             "too short for the parity"),
    "export-no-output": Case(("export", "builtin:tiny"), "Missing option '--output'"),
    # run
    "run-missing": Case(("run", "{ws}/nope"), "artifact not found"),
    "run-a-users-folder": Case(("run", "{ws}/mine"), "not an edgekit artifact"),
    "run-markup-path": Case(("run", "x[/]y"), "x[/]y"),
    "run-not-utf8-prompt": Case(("run", "{ws}/art", "--prompt", NOT_UTF8), "--prompt is not valid UTF-8"),
    "run-zero-tokens": Case(("run", "{ws}/art", "-n", "0"), "--max-new-tokens"),
    "run-long-prompt": Case(("run", "{ws}/art", "--prompt", "cat " * 600), "context"),
    **{f"run-{name}": Case(("run", "{ws}/bad"), says, prep) for name, (prep, says) in BAD_MANIFESTS.items()},
    # inspect
    "inspect-missing": Case(("inspect", "{ws}/nope"), "artifact not found"),
    "inspect-a-file": Case(("inspect", "{ws}/plain.txt"), "not an edgekit artifact"),
    **{f"inspect-{name}": Case(("inspect", "{ws}/bad"), says, prep) for name, (prep, says) in BAD_MANIFESTS.items()
       if name != "corrupt-tokenizer"},
    # profile
    "profile-missing": Case(("profile", "{ws}/nope"), "artifact not found"),
    **{f"profile-{name}": Case(("profile", "{ws}/bad"), says, prep) for name, (prep, says) in BAD_MANIFESTS.items()
       if name not in ("garbage-pte",)},
    "profile-unknown-device": Case(("profile", "{ws}/art", "-d", "my[/]phone"), "unknown device 'my[/]phone'"),
    "profile-device-bad-yaml": Case(("profile", "{ws}/art", "-d", "{ws}/dev.yaml"), "not valid YAML",
                                    writes("dev.yaml", "name: x\ntransport: ssh\nhost: [unclosed\n")),
    "profile-device-timeout": Case(("profile", "{ws}/art", "-d", "{ws}/dev.yaml"), "'timeout_s' must be",
                                   writes("dev.yaml", "name: x\ntransport: local\ntimeout_s: -5\n")),
    "profile-output-is-a-folder": Case(("profile", "{ws}/art", "-o", "{ws}/mine", "--json"), "it is a folder"),
    "profile-output-under-a-file": Case(("profile", "{ws}/art", "-o", "{ws}/plain.txt/r.json"),
                                        "is a file, not a folder"),
    "profile-prompt-too-long": Case(("profile", "{ws}/art", "--prompt-len", "500", "--gen", "100"),
                                    "exceeds the model's context"),
    "profile-eval-text-missing": Case(("profile", "{ws}/art", "--eval-text", "{ws}/nope.txt"),
                                      "cannot read --eval-text"),
    "profile-eval-text-binary": Case(("profile", "{ws}/art", "--eval-text", "{ws}/bin.txt"), "cannot read --eval-text",
                                     writes("bin.txt", b"\xff\xfe\x00binary")),
    "profile-threads-0": Case(("profile", "{ws}/art", "--threads", "0"), "--threads"),
    # recipes, models and devices
    "recipes-unknown-option": Case(("recipes", "--colour"), "No such option: --colour"),
    "models-unknown-option": Case(("models", "--colour"), "No such option: --colour"),
    "models-an-argument": Case(("models", "builtin:tiny"), "unexpected extra argument(s) (builtin:tiny)"),
    "devices-unknown-option": Case(("devices", "--colour"), "No such option: --colour"),
    "devices-new-unknown-base": Case(("devices", "new", "b", "--from", "nowhere"), "unknown device 'nowhere' to copy"),
    "devices-new-bad-name": Case(("devices", "new", "../b", "--from", "rpi5"), "use letters, digits"),
    "devices-new-taken": Case(("devices", "new", "local", "--from", "rpi5"), "taken by a shipped profile"),
    "devices-setup-unknown": Case(("devices", "setup", "nowhere"), "unknown device 'nowhere'"),
    "devices-setup-local": Case(("devices", "setup", "local"), "needs no setup here"),
    "devices-setup-bad-file": Case(("devices", "setup", "{ws}/dev.yaml"), "unknown key(s) colour",
                                   writes("dev.yaml", "name: x\ntransport: local\ncolour: blue\n")),
    "devices-build-runner-cross": Case(("devices", "build-runner", "--arch", OTHER_ARCH), "is not supported yet"),
    "devices-build-runner-bad-arch": Case(("devices", "build-runner", "--arch", "mips"), "--arch must be one of"),
    "profile-unknown-runner": Case(("profile", "{ws}/art", "--device", "{ws}/dev.yaml"), "'runner' must be one of",
                                   writes("dev.yaml", "name: x\ntransport: local\nrunner: rust\n")),
    "profile-native-runner-over-ssh": Case(("profile", "{ws}/art", "--device", "{ws}/dev.yaml"),
                                           "'runner: native' runs on the local device only",
                                           writes("dev.yaml", "name: x\ntransport: ssh\nhost: b\nrunner: native\n")),
    # sweep
    "sweep-missing": Case(("sweep", "{ws}/nope.toml"), "config file not found"),
    "sweep-not-toml": Case(("sweep", "{ws}/c.toml"), "not valid TOML", config("models = 'x' = 1\n")),
    "sweep-binary": Case(("sweep", "{ws}/c.toml"), "not valid TOML", writes("c.toml", b"\xff\xfe\x00")),
    "sweep-unknown-key": Case(("sweep", "{ws}/c.toml"), "unknown key(s) colour", config("colour = 1\n" + SWEEP)),
    "sweep-bad-recipe": Case(("sweep", "{ws}/c.toml"), "c.toml [recipes]: unknown recipe 'int3'",
                             config(SWEEP.replace("'fp32'", "'int3'"))),
    "sweep-bad-device": Case(("sweep", "{ws}/c.toml"), "'timeout_s' must be",
                             both(config("devices = ['dev.yaml']\n" + SWEEP),
                                  writes("dev.yaml", "name: x\ntransport: local\ntimeout_s: -5\n"))),
    "sweep-colliding-results": Case(("sweep", "{ws}/c.toml"), "would write the same result file",
                                    config(SWEEP.replace("['builtin:tiny']", "['m/x', 'm-x']"))),
    "sweep-output-is-a-file": Case(("sweep", "{ws}/c.toml"), "is a file, not a folder",
                                   config(SWEEP.replace("'results'", "'plain.txt'"))),
    "sweep-threads-0": Case(("sweep", "{ws}/c.toml"), "'threads' must be an integer from 1 to 256, got 0",
                            config(SWEEP + "[profile]\nthreads = 0\n")),
    "sweep-no-models": Case(("sweep", "{ws}/c.toml"), "'models' must be a non-empty list",
                            config(SWEEP.replace("['builtin:tiny']", "[]"))),
    # check
    "check-missing": Case(("check", "{ws}/nope.toml"), "config file not found"),
    "check-missing-model": Case(("check", "{ws}/c.toml"), "model not found",
                                config(SWEEP.replace("builtin:tiny", "./no-model"))),
    "check-nan-threshold": Case(("check", "{ws}/c.toml"), "must be a finite number",
                                config(SWEEP + "[thresholds]\nppl = { max = nan }\n")),
    "check-min-above-max": Case(("check", "{ws}/c.toml"), "no value can pass",
                                config(SWEEP + "[thresholds]\nfile_mb = { min = 10, max = 5 }\n")),
    "check-negative-max": Case(("check", "{ws}/c.toml"), "no value can pass",
                               config(SWEEP + "[thresholds]\nfile_mb = { max = -1 }\n")),
    "check-unknown-metric": Case(("check", "{ws}/c.toml"), "unknown metric 'speed'",
                                 config(SWEEP + "[thresholds]\nspeed = { min = 1 }\n")),
    "check-unmatched-scope": Case(("check", "{ws}/c.toml"), "[onnx/int8] matches none",
                                  config(SWEEP + "[thresholds.\"onnx/int8\"]\nfile_mb = { max = 1 }\n")),
    "check-report-is-a-folder": Case(("check", "{ws}/c.toml"), "it is a folder",
                                     config(SWEEP + "[reports]\nhtml = 'mine'\n")),
    "check-html-option-is-a-folder": Case(("check", "{ws}/c.toml", "--html", "{ws}/mine"), "it is a folder",
                                          config(SWEEP)),
    "check-missing-baseline": Case(("check", "{ws}/c.toml"), "no such result file",
                                   config(SWEEP + "[baseline]\nresults = 'nowhere.json'\n")),
    "check-damaged-baseline": Case(("check", "{ws}/c.toml"), "is a damaged edgekit result",
                                   both(config(SWEEP + "[baseline]\nresults = 'bad.json'\n"),
                                        result(lambda r: r["metrics"].update(ppl="low")))),
    # report
    "report-missing": Case(("report", "{ws}/nope.json"), "no such result file"),
    "report-not-json": Case(("report", "{ws}/plain.txt"), "not a readable JSON file"),
    "report-not-a-result": Case(("report", "{ws}/bad.json"), "is not an edgekit result",
                                writes("bad.json", '{"not": "a result"}')),
    "report-no-results-in-folder": Case(("report", "{ws}/mine"), "no edgekit result files"),
    "report-metric-not-a-number": Case(("report", "{ws}/bad.json"), "is a damaged edgekit result",
                                       result(lambda r: r["metrics"]["decode_tok_s"].update(value="fast"))),
    "report-metrics-a-list": Case(("report", "{ws}/bad.json", "-f", "html"), "is a damaged edgekit result",
                                  result(lambda r: r.update(metrics=[]))),
    "report-environment-load-a-list": Case(("report", "{ws}/bad.json"), "'environment.load' must be an object",
                                           result(lambda r: r.update(environment={"load": [1, 2]}))),
    "compare-environment-a-string": Case(("compare", "{ws}/good.json", "{ws}/bad.json"),
                                         "'environment' must be an object",
                                         result(lambda r: r.update(environment="x86"))),
    "report-unknown-format": Case(("report", "{ws}/good.json", "-f", "pdf"), "unknown format 'pdf'"),
    "report-output-is-a-folder": Case(("report", "{ws}/good.json", "-f", "html", "-o", "{ws}/mine"), "it is a folder"),
    "report-markup-path": Case(("report", "res[/]ults"), "res[/]ults"),
    # compare
    "compare-missing": Case(("compare", "{ws}/nope.json", "{ws}/good.json"), "no such result file"),
    "compare-markup-path": Case(("compare", "a[/b]", "{ws}/good.json"), "a[/b]"),
    "compare-damaged": Case(("compare", "{ws}/good.json", "{ws}/bad.json"), "is a damaged edgekit result",
                            result(lambda r: r.pop("device"))),
    "compare-negative-tolerance": Case(("compare", "{ws}/good.json", "{ws}/good.json", "--tolerance", "-1"),
                                       "--tolerance"),
    # issue 30 (nan/native)
    "export-unknown-hub-id-offline": Case(("export", "someorg/no-such-model", "-o", "{ws}/out"),
                                          "hub unreachable, not in the HF cache"),
    "export-symlink-loop-model": Case(("export", "loop/m", "-o", "{ws}/out"), "hub unreachable, not in the HF cache",
                                      lambda ws: (ws / "loop").symlink_to("loop")),
    "export-gguf-file-offline": Case(("export", "someorg/no-such-model", "--gguf-file", "m.gguf", "-o", "{ws}/out"),
                                     "m.gguf cannot be downloaded from the hub"),
    "profile-qemu-file-not-set-up": Case(("profile", "{ws}/art", "-d", "{ws}/q1.yaml"),
                                         "run `edgekit devices setup {ws}/q1.yaml` once",
                                         writes("q1.yaml", "name: q1\ntransport: qemu\n")),
    **{f"{command}-gguf-{what}": Case((command, "{ws}/bad"), says, gguf_value(key, value))
       for command in ("run", "profile")
       for what, key, value, says in (
           ("100000-blocks", "llama.block_count", 100000, "llama.block_count is 100000, outside"),
           ("no-heads", "llama.attention.head_count", 0, "llama.attention.head_count is 0, outside"),
           ("huge-context", "llama.context_length", 1 << 31, "llama.context_length is 2147483648"))},
    "export-gguf-crafted-source": Case(("export", "{ws}/bad/model.gguf", "-t", "gguf", "-o", "{ws}/out"),
                                       "llama.block_count is 100000, outside",
                                       gguf_value("llama.block_count", 100000)),
    "run-truncated-external-data": Case(("run", "{ws}/bad"), "model.onnx: its external data file is shorter than "
                                        "the model needs", truncated_external_data),
    # issue 30 (numbers): every number a user gives is finite and in its range (edgekit.config.NUMBERS),
    # every text option non-empty, a model's config.json and a GGUF's architecture checked, all before any work
    "run-threads-huge": Case(("run", "{ws}/art", "--threads", "100000"),
                             "'--threads': must be an integer from 1 to 256"),
    "run-seed-negative": Case(("run", "{ws}/art", "--seed", "-1"), "'--seed': must be an integer from 0"),
    "run-top-p-nan": Case(("run", "{ws}/art", "--top-p", "nan"), "'--top-p': must be a number above 0"),
    "run-temperature-inf": Case(("run", "{ws}/art", "--temperature", "inf"), "'--temperature': must be a number"),
    "run-max-new-tokens-huge": Case(("run", "{ws}/art", "-n", "100000000"), "'-n': must be an integer from 1"),
    "run-chat-template-huge-range": Case(
        ("run", "{ws}/bad", "--chat"), "the chat template of",
        damaged("chat_template.jinja", b"{% for i in range(10**20) %}x{% endfor %}", relist=True)),
    "profile-timeout-inf": Case(("profile", "{ws}/art", "--timeout", "inf"), "'--timeout': must be a number above 0"),
    "profile-timeout-1e12": Case(("profile", "{ws}/art", "--timeout", "1e12"), "at most 604,800"),
    "profile-timeout-nan": Case(("profile", "{ws}/art", "--timeout", "nan"), "'--timeout': must be"),
    "profile-runs-huge": Case(("profile", "{ws}/art", "--runs", "100000000"), "'--runs': must be an integer"),
    "profile-warmup-negative": Case(("profile", "{ws}/art", "--warmup", "-1"), "'--warmup': must be an integer"),
    "profile-gen-1": Case(("profile", "{ws}/art", "--gen", "1"), "'--gen': must be an integer from 2"),
    "profile-prompt-len-0": Case(("profile", "{ws}/art", "--prompt-len", "0"), "'--prompt-len': must be"),
    "profile-threads-huge": Case(("profile", "{ws}/art", "--threads", "100000"), "'--threads': must be"),
    "profile-device-timeout-inf": Case(("profile", "{ws}/art", "-d", "{ws}/dev.yaml"), "'timeout_s' must be",
                                       writes("dev.yaml", "name: x\ntransport: local\ntimeout_s: .inf\n")),
    "profile-device-threads-huge": Case(("profile", "{ws}/art", "-d", "{ws}/dev.yaml"), "'threads' must be",
                                        writes("dev.yaml", "name: x\ntransport: local\nthreads: 100000\n")),
    "profile-empty-device": Case(("profile", "{ws}/art", "-d", ""), "-d is empty"),
    "compare-tolerance-nan": Case(("compare", "{ws}/good.json", "{ws}/good.json", "--tolerance", "nan"),
                                  "'--tolerance': must be a number"),
    "compare-tolerance-inf": Case(("compare", "{ws}/good.json", "{ws}/good.json", "--tolerance", "inf"),
                                  "'--tolerance': must be a number"),
    "export-context-huge": Case(("export", "builtin:tiny", "--max-context", "1000000000", "-o", "{ws}/out"),
                                "'--max-context': must be an integer"),
    "export-empty-recipe": Case(("export", "builtin:tiny", "-r", "", "-o", "{ws}/out"), "-r is empty"),
    "export-empty-recipe-joined": Case(("export", "builtin:tiny", "--recipe=", "-o", "{ws}/out"),
                                       "--recipe is empty"),
    "export-empty-target": Case(("export", "builtin:tiny", "-t", "", "-o", "{ws}/out"), "-t is empty"),
    "export-empty-model": Case(("export", "", "-o", "{ws}/out"), "an argument is empty"),
    "report-empty-path": Case(("report", ""), "an argument is empty"),
    "report-json-then-empty-path": Case(("report", "--json", ""), "an argument is empty"),
    "compare-empty-paths": Case(("compare", "", ""), "an argument is empty"),
    "export-recipe-mix-huge": Case(("export", "builtin:tiny", "-r", "int4-mix99999", "-o", "{ws}/out"),
                                   "-mixN in recipe 'int4-mix99999' must be an integer from 0 to 1,024"),
    "export-recipe-digits-galore": Case(("export", "builtin:tiny", "-r", "int4-g" + "9" * 5000, "-o", "{ws}/out"),
                                        "unknown option 'g999"),
    "export-config-a-list": Case(("export", "{ws}/model", "-o", "{ws}/out"), "config.json is not a model's",
                                 model_config("[]")),
    "export-generation-config-a-list": Case(("export", "{ws}/model", "-o", "{ws}/out", "--no-parity"),
                                            "generation_config.json is not a model's",
                                            model_config("[1]", "generation_config.json")),
    "export-config-layers-negative": Case(("export", "{ws}/model", "-o", "{ws}/out", "--no-parity"),
                                          "'num_hidden_layers' must be an integer from 1",
                                          model_config({"num_hidden_layers": -1})),
    "export-config-layers-negative-parity": Case(("export", "{ws}/model", "-o", "{ws}/out"),
                                                 "'num_hidden_layers' must be",
                                                 model_config({"num_hidden_layers": -1})),
    "export-config-hidden-a-string": Case(("export", "{ws}/model", "-o", "{ws}/out"), "'hidden_size' must be",
                                          model_config({"hidden_size": "256"})),
    "export-config-context-null": Case(("export", "{ws}/model", "-o", "{ws}/out"),
                                       "'max_position_embeddings' must be",
                                       model_config({"max_position_embeddings": None})),
    "export-config-vocab-0": Case(("export", "{ws}/model", "-o", "{ws}/out"), "'vocab_size' must be",
                                  model_config({"vocab_size": 0})),
    "export-config-kv-heads-0": Case(("export", "{ws}/model", "-o", "{ws}/out"), "'num_key_value_heads' must be",
                                     model_config({"num_key_value_heads": 0})),
    "export-config-kv-heads-not-dividing": Case(("export", "{ws}/model", "-o", "{ws}/out"),
                                                "'num_key_value_heads' 3 does not divide 'num_attention_heads' 4",
                                                model_config({"num_key_value_heads": 3})),
    "export-config-heads-not-splitting": Case(("export", "{ws}/model", "-o", "{ws}/out"),
                                              "'num_attention_heads' 3 does not divide 'hidden_size' 64",
                                              model_config({"num_attention_heads": 3, "num_key_value_heads": 1,
                                                            "head_dim": None})),
    "export-config-unknown-type": Case(("export", "{ws}/model", "-o", "{ws}/out"),
                                       "unsupported architecture 'frobnicator'",
                                       model_config({"model_type": "frobnicator"})),
    "export-gguf-mamba": Case(("export", "{ws}/a.gguf", "-t", "gguf", "-o", "{ws}/out"),
                              "unsupported architecture 'mamba'", gguf_of("mamba")),
    "sweep-timeout-nan": Case(("sweep", "{ws}/c.toml"), "[profile]: 'timeout_s' must be a number above 0",
                              config(SWEEP + "[profile]\ntimeout_s = nan\n")),
    "sweep-timeout-inf": Case(("sweep", "{ws}/c.toml"), "[profile]: 'timeout_s' must be a number above 0",
                              config(SWEEP + "[profile]\ntimeout_s = inf\n")),
    "sweep-threads-huge": Case(("sweep", "{ws}/c.toml"), "[profile]: 'threads' must be an integer from 1 to 256",
                               config(SWEEP + "[profile]\nthreads = 100000\n")),
    "sweep-max-context-huge": Case(("sweep", "{ws}/c.toml"), "'max_context' must be an integer",
                                   config("max_context = 1000000000\n" + SWEEP)),
    "check-tolerance-nan": Case(("check", "{ws}/c.toml"), "[baseline]: 'tolerance_pct' must be a number",
                                config(SWEEP + "[baseline]\nresults = 'good.json'\ntolerance_pct = nan\n")),
    "check-parity-off-but-required": Case(("check", "{ws}/c.toml"), "parity = false skips the export's parity check",
                                          config("parity = false\n" + SWEEP)),
    "check-prompt-beyond-context": Case(("check", "{ws}/c.toml"), "prompt_len + gen = 600 exceeds the context of 512",
                                        config(SWEEP + "[profile]\nprompt_len = 500\ngen = 100\n")),
    "check-device-closed-port": Case(("check", "{ws}/c.toml"), "device far: cannot reach it",
                                     both(config("devices = ['dev.yaml']\n" + SWEEP),
                                          writes("dev.yaml", "name: far\ntransport: ssh\nhost: 127.0.0.1\nport: 1\n"
                                                             "timeout_s: 10\n"))),
    # issue 30 (paths): no output is, or is inside, an input of its command, nor another output's path;
    # an empty path names nothing; a link that loops or leads nowhere is refused before any work
    "profile-output-is-the-manifest": Case(("profile", "{ws}/art", "-o", "{ws}/art/edgekit.json"),
                                           "is inside the artifact {ws}/art"),
    "profile-output-is-the-model-file": Case(("profile", "{ws}/art", "-o", "{ws}/art/model.onnx"),
                                             "is inside the artifact {ws}/art"),
    "profile-output-inside-the-artifact": Case(("profile", "{ws}/art", "-o", "{ws}/art/r.json"),
                                               "is inside the artifact {ws}/art"),
    "profile-output-a-link-into-the-artifact": Case(("profile", "{ws}/art", "-o", "{ws}/r.json"),
                                                    "is inside the artifact {ws}/art",
                                                    link("r.json", "art/edgekit.json")),
    "profile-output-is-the-eval-text": Case(("profile", "{ws}/art", "--eval-text", "{ws}/plain.txt", "-o",
                                             "{ws}/plain.txt"), "is --eval-text {ws}/plain.txt"),
    "profile-output-a-link-loop": Case(("profile", "{ws}/art", "-o", "{ws}/loop"), "(a loop)", link("loop", "loop")),
    "profile-empty-output": Case(("profile", "{ws}/art", "-o", ""), "-o is empty"),
    "report-output-is-its-input": Case(("report", "{ws}/good.json", "-f", "csv", "-o", "{ws}/good.json"),
                                       "is the result file {ws}/good.json"),
    "report-output-a-result-in-its-folder": Case(("report", "{ws}/res", "-f", "csv", "-o", "{ws}/res/0.json"),
                                                 "is inside the result folder {ws}/res",
                                                 copies("good.json", "res/0.json")),
    "report-empty-output": Case(("report", "{ws}/good.json", "-f", "csv", "-o", ""), "-o is empty"),
    "check-summary-is-the-config": Case(("check", "{ws}/c.toml", "--summary", "{ws}/c.toml"), "is the check file",
                                        config(SWEEP)),
    "check-report-is-the-config": Case(("check", "{ws}/c.toml"), "is the check file",
                                       config(SWEEP + "[reports]\njunit = 'c.toml'\n")),
    "check-two-reports-one-path": Case(("check", "{ws}/c.toml"), "[reports] junit and [reports] summary both write",
                                       config(SWEEP + "[reports]\njunit = 'r.xml'\nsummary = 'r.xml'\n")),
    "check-report-option-and-config-one-path": Case(("check", "{ws}/c.toml", "--junit", "{ws}/r.html"), "both write",
                                                    config(SWEEP + "[reports]\nhtml = 'r.html'\n")),
    "check-report-is-the-baseline": Case(("check", "{ws}/c.toml"), "is [baseline] results",
                                         config(SWEEP + "[baseline]\nresults = 'good.json'\n"
                                                "[reports]\nsummary = 'good.json'\n")),
    "check-results-written-into-the-baseline": Case(("check", "{ws}/c.toml"), "[baseline] results",
                                                    both(config(SWEEP + "[baseline]\nresults = 'results'\n"),
                                                         copies("good.json", "results/base.json"))),
    "sweep-output-inside-the-model": Case(("sweep", "{ws}/c.toml"), "is inside the model model,",
                                          config(SWEEP.replace("builtin:tiny", "model")
                                                 .replace("'results'", "'model/results'"))),
    "sweep-cache-inside-the-model": Case(("sweep", "{ws}/c.toml"), "is inside the model model,",
                                         config(SWEEP.replace("builtin:tiny", "model")
                                                .replace("'cache'", "'model/c'"))),
    "sweep-a-result-file-is-the-config": Case(("sweep", "{ws}/res/builtin-tiny__onnx-fp32__local.json"),
                                              "is the sweep file",
                                              writes("res/builtin-tiny__onnx-fp32__local.json",
                                                     SWEEP.replace("'results'", "'.'"))),
    "sweep-cache-dir-a-file": Case(("sweep", "{ws}/c.toml"), "EDGEKIT_CACHE_DIR",
                                   both(config(SWEEP.replace("cache = 'cache'\n", "")),
                                        env("EDGEKIT_CACHE_DIR", "{ws}/plain.txt"))),
    "export-output-inside-the-model": Case(("export", "{ws}/model", "-o", "{ws}/model/out"),
                                           "is inside the model {ws}/model"),
    "export-overwrite-a-folder-holding-the-gguf": Case(("export", "{ws}/gart/model.gguf", "-o", "{ws}/gart",
                                                        "--overwrite"), "which --overwrite would replace",
                                                       gguf_in_artifact),
    "export-overwrite-a-folder-holding-the-calibration": Case(
        ("export", "builtin:tiny", "-r", "int4-gptq", "--calibration", "{ws}/art/tokenizer.json", "-o", "{ws}/art",
         "--overwrite"), "which --overwrite would replace"),
    "export-output-a-dangling-link": Case(("export", "builtin:tiny", "-o", "{ws}/link"), "which does not exist",
                                          link("link", "nowhere")),
    "export-output-a-link-loop": Case(("export", "builtin:tiny", "-o", "{ws}/loop"), "(a loop)", link("loop", "loop")),
    "export-calibration-a-link-loop": Case(("export", "builtin:tiny", "-r", "int4-gptq", "--calibration", "{ws}/loop",
                                            "-o", "{ws}/out"), "(a loop)", link("loop", "loop")),
    "export-gguf-cache-dir-a-file": Case(("export", "{ws}/m.gguf", "-o", "{ws}/out"), "EDGEKIT_CACHE_DIR",
                                         both(writes("m.gguf", b"GGUF" + bytes(60)),
                                              env("EDGEKIT_CACHE_DIR", "{ws}/plain.txt"))),
    "report-output-a-pipe": Case(("report", "{ws}/good.json", "-f", "csv", "-o", "{ws}/pipe"), "not a regular file",
                                 lambda ws: os.mkfifo(ws / "pipe")),
    "devices-setup-over-a-users-folder": Case(("devices", "setup", "{ws}/dev.yaml"), "holds files but no userland",
                                              writes("dev.yaml", "name: q\ntransport: qemu\nuserland: mine\n")),
}
WITH_MODEL = {"export-overwrite-the-source", "export-output-inside-the-model", "sweep-output-inside-the-model",
              "sweep-cache-inside-the-model"}  # the cases whose workspace holds ``model``


# ----------------------------------------------------------------------------- the rule


@pytest.fixture
def workspace(request, tmp_path, tiny_artifacts, tiny_models, make_result, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copytree(tiny_artifacts("llama"), ws / "art")
    name = request.node.callspec.params.get("name")
    if name in WITH_MODEL or name.startswith(("export-config-", "export-generation-config-")):
        shutil.copytree(tiny_models("llama"), ws / "model")
    if "-gguf-" in request.node.callspec.params.get("name"):
        shutil.copytree(tiny_artifacts("llama", "gguf", "fp32"), ws / "gguf")
    (ws / "mine").mkdir()
    (ws / "mine" / "notes.txt").write_text("the user's own notes")
    (ws / "mine" / "data.bin").write_bytes(bytes(range(256)))
    (ws / "plain.txt").write_text("just a file")
    (ws / "good.json").write_text(json.dumps(make_result("fp32", decode_tok_s=10.0, file_mb=1.0, ppl=2.0)))
    monkeypatch.chdir(ws)
    return ws


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder")
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(cli, workspace, name):
    case = CASES[name]
    if case.prepare:
        case.prepare(workspace)
    before = _snapshot(workspace)
    r = cli(*(a.replace("{ws}", str(workspace)) for a in case.args))
    says = case.says.replace("{ws}", str(workspace))
    assert r.code == 2, (r.code, r.err)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert says in r.err, r.err
    assert "Traceback" not in r.err and "EDGEKIT_DEBUG" not in r.err, r.err  # never the catch-all "unexpected X"
    assert r.out == "", r.out
    assert _snapshot(workspace) == before  # nothing left behind, nothing of the user's changed or lost


def test_every_command_has_cases():
    """A command added later gets rows above, or this fails: every command is held to the rule."""
    from edgekit.cli import _register, app

    _register()
    commands = {c.name for c in app.registered_commands}
    for group in app.registered_groups:
        commands.add(group.name)
        commands.update(f"{group.name} {c.name}" for c in group.typer_instance.registered_commands)
    covered = {" ".join(case.args[:2]) if case.args[0] in {g.name for g in app.registered_groups} and len(case.args) > 1
               and not case.args[1].startswith("-") else case.args[0] for case in CASES.values()}
    assert commands - covered == set(), f"commands without bad-input cases: {sorted(commands - covered)}"


def test_every_number_a_command_takes_declares_its_range():
    """issue 30: every int or float option of every command is checked against its declared type and range
    (``edgekit.config.NUMBERS``, through ``edgekit.cli.bounded``) before any work: a numeric option
    added later without a range fails here."""
    import typing

    from edgekit.cli import _register, app
    from edgekit.config import NUMBERS

    _register()
    commands = [*app.registered_commands,
                *(c for group in app.registered_groups for c in group.typer_instance.registered_commands)]
    unbounded, numeric = [], 0
    for command in commands:
        fn = command.callback
        for name, hint in typing.get_type_hints(fn, include_extras=True).items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base = typing.get_args(hint)[0]
            if not set(typing.get_args(base) or [base]) & {int, float}:
                continue
            numeric += 1
            info = next(iter(getattr(hint, "__metadata__", ())), None)
            callback = getattr(info, "callback", None)
            if callback is None or not callback.__qualname__.startswith("bounded."):
                unbounded.append(f"{command.name} {name}")
    assert numeric >= 12 and unbounded == [], unbounded
    assert all(n.lo <= n.hi and n.hi < float("inf") for n in NUMBERS.values())
