"""JUnit XML: a suite per combination, a case per check; failures and skips carry their reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from edgekit.check import Limit, Rules, evaluate
from edgekit.core.results import RunResult
from edgekit.report.junit import junit_xml


def test_verdicts_as_junit(make_result):
    results = [RunResult.from_json(r) for r in (
        make_result("int4", decode_tok_s=50.0, file_mb=2.5),
        make_result("fp32", decode_tok_s=5.0, file_mb=12.0, parity=None),
        make_result("int8", device="rpi5", complete=False),
    )]
    rules = Rules(parity=None, limits=(Limit("decode_tok_s", min=10), Limit("file_mb", max=20)))
    root = ET.fromstring(junit_xml(evaluate(results, lambda target, recipe: rules)))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("9", "2", "1")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"builtin:tiny onnx/int4 on local", "builtin:tiny onnx/fp32 on local",
                           "builtin:tiny onnx/int8 on rpi5"}
    fp32 = {c.get("name"): c for c in suites["builtin:tiny onnx/fp32 on local"]}
    assert (fp32["decode_tok_s >= 10"].find("failure").get("message")
            == "decode_tok_s 5.00 tok/s is below the minimum 10 tok/s")
    assert fp32["parity"].find("skipped") is not None and fp32["file_mb <= 20"].find("failure") is None
    broken = suites["builtin:tiny onnx/int8 on rpi5"].find("testcase")
    assert broken.get("name") == "completes" and "it broke" in broken.find("failure").text


def test_report_junit_command(cli, tmp_path, make_result, write_results):
    folder = write_results(tmp_path / "res", make_result("int4", decode_tok_s=50.0), make_result("fp32", parity=False))
    out = tmp_path / "junit.xml"
    r = cli("report", folder, "--format", "junit", "-o", out)
    assert r.code == 0, r.err
    root = ET.parse(out).getroot()
    assert root.get("tests") == "4" and root.get("failures") == "1"
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert ([c.get("name") for c in failed] == ["parity"]
            and "parity check failed" in failed[0].find("failure").get("message"))
