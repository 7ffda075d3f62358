"""Result files and manifests are strict JSON: NaN becomes null (a missing figure), never a bare token."""

from __future__ import annotations

import json

import pytest


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"bare {token} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_dumps_writes_null_for_nan_and_infinity_and_loads_reads_old_tokens_as_null():
    from edgekit import jsonfile

    data = {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")], "c": {"d": (2, float("nan"))}, "e": "NaN"}
    assert _strict(jsonfile.dumps(data)) == {"a": None, "b": [1.0, None, None], "c": {"d": [2, None]}, "e": "NaN"}
    assert jsonfile.loads('{"x": NaN, "y": [Infinity, -Infinity, 1]}') == {"x": None, "y": [None, None, 1]}


def test_result_manifest_and_json_output_are_strict(tmp_path, capsys, make_result):
    from edgekit import artifact, output
    from edgekit.profile.session import RunResult, write_result

    result = make_result("int4", ppl=float("nan"), kl_mean=float("inf"))
    write_result(RunResult.from_json(result), tmp_path / "r.json")
    data = _strict((tmp_path / "r.json").read_text())
    assert data["metrics"]["ppl"]["value"] is None and data["metrics"]["kl_mean"]["samples"] == [None]
    artifact.write_manifest(tmp_path, {"parity": {"kl_mean": float("nan")}})
    assert _strict((tmp_path / "edgekit.json").read_text()) == {"parity": {"kl_mean": None}}
    output.emit_json({"x": float("nan")})
    assert _strict(capsys.readouterr().out) == {"x": None}


@pytest.mark.parametrize("format", ["html", "json", "md", "csv", "table", "junit"])
def test_report_reads_nan_tokens_as_missing(cli, tmp_path, make_result, format):
    """A result file from before (bare NaN tokens) reports in every format; NaN shows as missing."""
    r = make_result("int4", decode_tok_s=float("nan"), file_mb=float("nan"), dppl_pct=float("nan"), ppl=float("nan"))
    other = make_result("fp32", decode_tok_s=20.0, file_mb=3.0, dppl_pct=0.0, ppl=1.8)
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(r))  # Python's json writes bare NaN
    (folder / "b.json").write_text(json.dumps(other))
    assert "NaN" in (folder / "a.json").read_text()
    out = cli("report", folder, "-f", format)
    assert out.code == 0, out.err
    assert "nan" not in out.out.lower().replace("nans", "")  # never shown as a figure
    if format == "json":
        assert _strict(out.out)[1]["decode_tok_s"] is None
