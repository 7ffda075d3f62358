"""The one rule for every path edgekit writes (``edgekit.output.check_paths``), and what a full disk,
a full temporary folder or a link does to an export: cases ``test_bad_input``'s table cannot hold."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError


def Read(what, path):  # noqa: N802  (edgekit.output's Read, made when the test runs)
    return "Read", what, path, {}


def Write(what, path, **kind):  # noqa: N802
    return "Write", what, path, kind


def check_paths(reads, writes):
    from edgekit import output

    output.check_paths(*([getattr(output, cls)(what, path, **kind) for cls, what, path, kind in side]
                         for side in (reads, writes)))


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "edgekit.json").write_text("{}")
    (tmp_path / "c.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("reads, writes, says", [
    ([Read("the artifact", "art")], [Write("-o", "art/edgekit.json")],
     "-o art/edgekit.json is inside the artifact art"),
    ([Read("the artifact", "art")], [Write("-o", "art/new/r.json")], "is inside the artifact art"),
    ([Read("the check file", "c.toml")], [Write("--summary", "./c.toml")], "is the check file c.toml"),
    ([Read("the model", "art/model.gguf")], [Write("-o", "art", folder=True, replaces=True)],
     "the model art/model.gguf is inside -o art, which --overwrite would replace"),
    ([], [Write("[reports] junit", "r.xml"), Write("[reports] html", "sub/../r.xml")],
     "[reports] junit and [reports] html both write"),
    ([], [Write("-o", "out", folder=True, replaces=True), Write("--log", "out/log.txt")],
     "which this command replaces"),
    ([Read("the result", "")], [], "an empty path"),
    ([], [Write("-o", "")], "an empty path"),
])
def test_the_rule(ws, reads, writes, says):
    with pytest.raises(EdgekitError) as e:
        check_paths(reads, writes)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_rule_follows_links_and_refuses_those_that_loop_or_lead_nowhere(ws):
    (ws / "latest").symlink_to("art")
    with pytest.raises(EdgekitError, match="is inside the artifact art"):
        check_paths([Read("the artifact", "art")], [Write("-o", "latest/r.json")])
    (ws / "loop").symlink_to("loop")
    with pytest.raises(EdgekitError, match=r"a symbolic link on it leads back to itself \(a loop\)"):
        check_paths([Read("--calibration", "loop")], [])
    with pytest.raises(EdgekitError, match="a loop"):
        check_paths([], [Write("-o", "loop/r.json")])
    (ws / "gone").symlink_to("nowhere")
    with pytest.raises(EdgekitError, match="gone is a symbolic link to nowhere, which does not exist"):
        check_paths([], [Write("-o", "gone/r.json")])


def test_the_rule_lets_apart_what_is_apart(ws):
    """Outputs beside the inputs, into a folder an input lies in, an input inside a results folder that is
    written into (never replaced), two outputs writing into one folder: all allowed."""
    check_paths([Read("the artifact", "art"), Read("the check file", "c.toml")],
                [Write("-o", "r.json"), Write("the output folder", ".", folder=True), Write("--html", "art2/r.html"),
                 Write("the export cache", ".", folder=True)])


# ----------------------------------------------------------------------------- an export's own outputs


def test_overwrite_through_a_link_replaces_the_folder_it_leads_to_and_leaves_nothing(cli, tiny_artifacts, tmp_path):
    shutil.copytree(tiny_artifacts("llama"), tmp_path / "v1")
    (tmp_path / "latest").symlink_to("v1")
    r = cli("export", "builtin:tiny", "-o", tmp_path / "latest", "--overwrite", "--no-parity", "--json")
    assert r.code == 0, r.err
    assert (tmp_path / "latest").is_symlink() and os.readlink(tmp_path / "latest") == "v1"
    assert json.loads((tmp_path / "v1" / "edgekit.json").read_text())["source"]["model"] == "builtin:tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "v1"]  # no hidden .latest.PID.old


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".partial", ".old"))]


# how a full disk reaches the export besides an OSError with its errno (tests/cli/test_export.py): numpy's
# short write (a GGUF's tensors, no errno); a copy's list of errors (coremltools' save copies its package
# with shutil.copytree)
FULL = {
    "numpy-short-write": OSError("65536 requested and 49080 written"),
    "copytree": shutil.Error([(f"/tmp/tmpabc/model.mlpackage/Data/weights/{i}.bin",
                               f"/out/model.mlpackage/Data/weights/{i}.bin",
                               f"[Errno 28] No space left on device: '/out/model.mlpackage/Data/weights/{i}.bin'")
                              for i in range(4)]),
}


@pytest.mark.parametrize("form", list(FULL))
def test_a_full_disk_during_an_export_is_one_plain_line(cli, tiny_models, tmp_path, monkeypatch, form):
    import edgekit.targets.onnx

    def full(source, recipe, folder, stage):
        (folder / "model.onnx").write_bytes(b"half")
        raise FULL[form]

    monkeypatch.setattr(edgekit.targets.onnx, "export", full)
    out = tmp_path / "out"
    r = cli("export", tiny_models("llama"), "-o", out)
    assert r.code == 2 and r.err == f"error: cannot write {out}: No space left on device\n", r.err
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["its file named", "another disk"])
def test_a_full_temporary_folder_is_not_blamed_on_the_output(cli, tiny_models, tmp_path, monkeypatch, how):
    """A calibration (-gptq, -imatrix) or a library's scratch files go to TMPDIR: a full TMPDIR is named."""
    import tempfile

    import edgekit.output
    import edgekit.targets.onnx

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    if how == "another disk":  # the error names no file: the folders' file systems say which is full
        monkeypatch.setattr(edgekit.output, "_room",
                            lambda folder: (1, 0) if Path(folder) == scratch else (2, 10**12))
    error = (OSError(errno.ENOSPC, "No space left on device", str(scratch / "edgekit-calibration-x" / "model.onnx"))
             if how == "its file named" else OSError(errno.ENOSPC, "No space left on device"))

    def full(source, recipe, folder, stage):
        raise error

    monkeypatch.setattr(edgekit.targets.onnx, "export", full)
    out = tmp_path / "out"
    r = cli("export", tiny_models("llama"), "-o", out)
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert r.err.startswith(f"error: the temporary folder {scratch} has no room (No space left on device)"), r.err
    assert "TMPDIR" in r.err and f"cannot write {out}" not in r.err
    assert not out.exists() and _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- the cache


def test_a_cache_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    from edgekit.environment import cache_folder

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "file"))
    with pytest.raises(EdgekitError, match=r"\$EDGEKIT_CACHE_DIR .*file\): Not a directory; set EDGEKIT_CACHE_DIR"):
        cache_folder("gguf")

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "ro"))

    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(EdgekitError, match="Permission denied; set EDGEKIT_CACHE_DIR to a writable folder"):
        cache_folder("builtins")


def test_a_profile_measures_with_a_cache_it_cannot_write(cli, tiny_artifacts, tmp_path, monkeypatch):
    """The accuracy reference is cached where it can be: a cache that is a file computes it each time."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "file"))
    r = cli("profile", tiny_artifacts("llama"), "--runs", "1", "--warmup", "0", "--prompt-len", "8", "--gen", "4",
            "--eval-tokens", "64", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["metrics"]["ppl"]["value"] > 0


def test_a_full_disk_anywhere_else_is_never_unexpected(cli, tiny_artifacts, monkeypatch):
    """Past the paths edgekit checks (a library writing where it likes), a full disk is still one line."""
    import edgekit.inspection

    def full(*args, **kwargs):
        raise FULL["numpy-short-write"]

    monkeypatch.setattr(edgekit.inspection, "inspect", full)
    r = cli("inspect", tiny_artifacts("llama"))
    assert r.code == 2 and r.err == "error: a write failed: No space left on device\n", r.err


def test_a_new_report_may_go_beside_the_results_it_reads(cli, tmp_path, make_result, write_results):
    """A results folder is read, not replaced: a new report file in it is fine (the next report ignores
    it), an existing file in it is never overwritten."""
    folder = write_results(tmp_path / "res", make_result("int4", decode_tok_s=10.0))
    assert cli("report", folder, "-f", "md", "-o", folder / "report.md").code == 0
    assert (folder / "report.md").read_text().startswith("| model")
    assert cli("report", folder).code == 0  # the report beside them is no result: still read alike
    r = cli("report", folder, "-f", "md", "-o", folder / "0.json")
    assert r.code == 2 and "is inside the result folder" in r.err and json.loads((folder / "0.json").read_text())
