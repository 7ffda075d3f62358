"""Targets and transports come from entry points: a plug-in's are found and used as edgekit's own."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from edgekit.core import plugins

# A plug-in package: a target ("toy": a bigram table, its recipe file, its runtime backend) and a
# transport ("loopback": this machine, with a key of its own and a refusal), as a distribution's
# entry points declare them.
PLUGIN = {
    "toyplugin/__init__.py": "",
    "toyplugin/toy.toml": """
        summary = "a bigram table (a test plug-in)"
        default = "fp32"
        [recipes.fp32]
        summary = "float32 logits"
    """,
    "toyplugin/target.py": """
        import json

        import numpy as np
        from edgekit.targets import Target

        TARGET = Target(
            exporter=__name__, backend="toyplugin.backend", toolchain=("numpy",), recipes="toyplugin:toy.toml")
        SUPPORTED = ("llama",)

        def export(source, recipe, folder, stage):
            with stage("table"):
                vocab = json.load(open(source.path / "config.json"))["vocab_size"]
                table = np.random.default_rng(0).standard_normal((vocab, vocab), dtype=np.float32)
                np.save(folder / "table.npy", table)
            return {"model_file": "table.npy", "max_context": 64}

        def inspect(folder, runtime):
            return {"format": "bigram table"}
    """,
    "toyplugin/backend.py": """
        import numpy as np

        class Bigram:
            def __init__(self, table, max_context):
                self.table, self.vocab_size, self.max_context = table, table.shape[0], max_context

            def reset(self):
                pass

            def forward(self, ids, *, last_only=False):
                out = self.table[np.asarray(ids)]
                return out[-1:] if last_only else out

        def open_artifact(folder, runtime, threads):
            return Bigram(np.load(folder / runtime["model_file"]), runtime["max_context"])
    """,
    "toyplugin/transport.py": """
        import sys
        from dataclasses import dataclass
        from pathlib import Path

        from edgekit.devices import TransportConfig
        from edgekit.devices import local

        HERE = str(Path(__file__).resolve().parents[1])

        @dataclass(frozen=True)
        class Config(TransportConfig):
            label: str
            refuse: str | None = None  # a target this device cannot run

            def connect(self, profile):
                return Transport(profile)

            def refusal(self, profile, target, path):
                return f"{profile.name} takes no {target.name} artifacts" if target.name == self.refuse else None

        class Transport(local.Transport):
            def runner(self):
                code = (f"import sys, runpy; sys.path.insert(0, {HERE!r}); "
                        "runpy.run_module('edgekit.runtime', run_name='__main__')")
                return [sys.executable, "-c", code]

            def info(self):
                return {"transport": self.profile.transport, "label": self.profile.label}
    """,
    "toyplugin-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toyplugin\nVersion: 0.1\n",
    "toyplugin-0.1.dist-info/entry_points.txt": """
        [edgekit.targets]
        toy = toyplugin.target:TARGET

        [edgekit.devices]
        loopback = toyplugin.transport:Config
    """,
}


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plug-in installed (on sys.path, its metadata found by importlib.metadata), the registries
    read again; removed after the test."""
    root = tmp_path / "site"
    for path, text in PLUGIN.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(root))
    plugins.clear()
    yield root
    monkeypatch.undo()
    for name in [m for m in sys.modules if m == "toyplugin" or m.startswith("toyplugin.")]:
        del sys.modules[name]
    plugins.clear()


def test_a_plugin_target_and_transport_go_through_export_profile_sweep_and_report(cli, plugin, tmp_path):
    r = cli("recipes", "--json")
    toy = {"target": "toy", "recipe": "fp32", "options": "", "summary": "float32 logits"}
    assert r.code == 0 and toy in json.loads(r.out)

    art = tmp_path / "toy-artifact"
    r = cli("export", "builtin:tiny", "-t", "toy", "-o", art, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    assert manifest["target"] == "toy" and manifest["parity"]["passed"] and manifest["toolchain"]["numpy"]
    assert manifest["runtime"]["backend"] == "toyplugin.backend"
    r = cli("inspect", art, "--json")
    assert r.code == 0 and json.loads(r.out)["format"] == "bigram table", r.err

    (tmp_path / "box.yaml").write_text("name: box\ntransport: loopback\nlabel: bench-1\n")
    (tmp_path / "picky.yaml").write_text("name: picky\ntransport: loopback\nlabel: bench-2\nrefuse: toy\n")
    small = ("--no-accuracy", "--runs", "1", "--warmup", "0", "--prompt-len", "8", "--gen", "4")
    r = cli("profile", art, "--device", tmp_path / "box.yaml", *small, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["complete"] and result["device"]["label"] == "bench-1" and result["device"]["transport"] == "loopback"
    assert "decode_tok_s" in result["metrics"]
    r = cli("profile", art, "--device", tmp_path / "picky.yaml", *small)
    assert r.code == 2 and "device picky: push: picky takes no toy artifacts" in r.err

    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'models = ["builtin:tiny"]\ndevices = ["box.yaml", "picky.yaml"]\noutput = "results"\ncache = "cache"\n'
        '[recipes]\ntoy = ["fp32"]\n[profile]\naccuracy = false\nruns = 1\nwarmup = 0\nprompt_len = 8\ngen = 4\n'
    )
    cli("sweep", sweep)
    results = {p.name: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    by_device = {r["device"]["name"]: r for r in results.values()}
    assert by_device["box"]["complete"] and by_device["box"]["artifact"]["target"] == "toy"
    assert not by_device["picky"]["complete"] and "picky takes no toy artifacts" in by_device["picky"]["error"]
    assert len(list((tmp_path / "cache").glob("*/edgekit.json"))) == 1  # the refused combination exported nothing new

    r = cli("report", tmp_path / "results", "-f", "csv")
    assert r.code == 0 and any(line.startswith("builtin:tiny,toy,fp32,box") for line in r.out.splitlines()), r.out


def test_without_entry_points_a_stale_install_is_one_line(cli, monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    plugins.clear()
    try:
        r = cli("recipes")
    finally:
        monkeypatch.undo()
        plugins.clear()
    assert r.code == 2 and "Traceback" not in r.err and r.said.count("\n") == 1
    assert "no 'edgekit.targets' entry points installed" in r.err and "reinstall" in r.err


def test_the_registries_list_edgekit_s_own():
    from edgekit import devices, targets

    assert {"onnx", "executorch", "coreml", "gguf"} <= set(targets.names())
    assert {"local", "ssh", "adb", "qemu"} <= set(devices.transports())
    for name in targets.names():
        assert targets.spec(name).name == name and targets.get(name).TARGET.exporter == targets.spec(name).exporter


def test_the_defaults_are_registered():
    from edgekit import devices, targets

    assert targets.DEFAULT in targets.names()
    default = devices.load_profile(devices.DEFAULT)
    assert default.name == devices.DEFAULT and default.transport in devices.transports() and default.source is None
