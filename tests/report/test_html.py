"""The HTML report: one self-contained page, summary first, then the plots, then the table."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgekit.report.svg import Point, pareto


@pytest.fixture
def page(cli, tmp_path, make_result, write_results):
    results = [make_result(recipe, target, device, decode_tok_s=tok * speed, file_mb=mb, dppl_pct=dppl, ppl=1.8)
               for device, speed in (("local", 1.0), ("rpi5", 0.3))
               for target, recipe, tok, mb, dppl in (("onnx", "fp32", 300.0, 11.7, 0.0),
                                                   ("onnx", "int4-g32", 380.0, 2.4, 6.5),
                                                   ("onnx", "int8", 420.0, 3.2, 1.9),
                                                   ("executorch", "8da4w", 690.0, 2.1, 5.1))]
    folder = write_results(tmp_path / "res", *results, make_result("fp16", device="pixel-8", complete=False))
    out = tmp_path / "report.html"
    r = cli("report", folder, "--format", "html", "-o", out)
    assert r.code == 0, r.err
    return out


def test_page_is_self_contained_with_summary_plots_and_table(page):
    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html and "<link" not in html
    assert (html.count("<svg") == 2 and "Decode speed against file size" in html
            and "Decode speed against accuracy loss" in html)
    assert "file size (MB)" in html and "decode speed (tok/s)" in html and "dppl_pct (%)" in html
    assert html.index("best decode speed") < html.index("<svg") < html.index("<table")
    assert "690 <small>tok/s</small>" in html and "builtin:tiny executorch/8da4w on local" in html  # the fastest
    assert "it broke" in html  # the failure, under the summary
    assert html.count("<tr") == 1 + 9 and "Pareto front" in html


def test_pareto_front_is_per_device():
    pts = [Point(11.7, 300, "fp32", "onnx", "local"), Point(2.4, 380, "int4", "onnx", "local"),
           Point(3.2, 420, "int8", "onnx", "local"), Point(2.1, 690, "8da4w", "executorch", "local"),
           Point(11.7, 90, "fp32", "onnx", "rpi5")]
    assert {(p.label, p.group) for p in pareto(pts)} == {("8da4w", "local"), ("fp32", "rpi5")}


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="chromium is not installed (apt-get install chromium); the page is not rendered")
def test_page_renders_in_headless_chromium(page, tmp_path):
    png = tmp_path / "report.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={png}", "--window-size=1400,1600", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_cards_and_plots_are_per_model_and_different_settings_are_said(cli, tmp_path, make_result, write_results):
    tiny = make_result("int4", decode_tok_s=4952.0, file_mb=2.3, dppl_pct=0.4)
    real = [make_result(recipe, decode_tok_s=tok, file_mb=mb, dppl_pct=d) for recipe, tok, mb, d in
            (("int4", 157.0, 104.0, 11.8), ("int8", 120.0, 170.0, 0.9))]
    for r, tokens in zip(real, (2048, 512)):
        r["artifact"]["model"] = "HuggingFaceTB/SmolLM2-135M"
        r["settings"] = {"eval_tokens": tokens, "prompt_len": 128, "gen": 128}
    out = tmp_path / "r.html"
    assert cli("report", write_results(tmp_path / "res", tiny, *real), "-f", "html", "-o", out).code == 0
    html = out.read_text()
    assert (html.count("<svg") == 4 and "<h2>builtin:tiny: speed" in html
            and "<h2>HuggingFaceTB/SmolLM2-135M: speed" in html)
    real_part = html[html.index("<h2>HuggingFaceTB"):html.index("<h2>builtin:tiny")]  # sorted by name
    # tiny's speed is not the real model's best
    assert "4952" not in real_part and "157 <small>tok/s</small>" in real_part
    assert "Measured with different settings" in real_part and "eval2048" in real_part and "eval512" in real_part
