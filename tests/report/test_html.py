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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# measures the rendered page and writes what it found into the page (chromium's --dump-dom prints it)
_MEASURE = """<script>
const box = e => e.getBoundingClientRect();
const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
const out = {viewport: window.innerWidth, overlaps: []};
const table = document.querySelector("table");
out.table_right = box(table).right;
out.page_scrolls = document.documentElement.scrollWidth > window.innerWidth;
for (const svg of document.querySelectorAll("svg")) {
  const labels = [...svg.querySelectorAll("text.pt")], marks = [...svg.querySelectorAll("g.mk")];
  for (const t of labels) {
    for (const m of marks) if (hit(box(t), box(m))) out.overlaps.push(t.textContent + " over a marker");
    for (const u of labels)
      if (u !== t && hit(box(t), box(u))) out.overlaps.push(t.textContent + " over " + u.textContent);
  }
}
document.body.insertAdjacentHTML("beforeend", "<pre id=layout>" + JSON.stringify(out) + "</pre>");
</script>"""


@pytest.mark.skipif(not CHROMIUM,
                    reason="chromium is not installed (apt-get install chromium); the page is not rendered")
def test_the_rendered_page_fits_1400_px_and_no_label_covers_a_point(cli, tmp_path, make_result, write_results):
    """Rendered by Chromium at 1400 px: the results table fits (no sideways scroll), and no point's
    label covers a marker or another label, with points crowded together as real recipes are."""
    import json
    import re

    from edgekit.profile.metrics import metric
    from edgekit.report.fields import COLUMNS

    results = []
    for i, (target, recipe, tok, mb, dppl) in enumerate((
            ("gguf", "q4_0", 184.0, 93.3, 18.82), ("onnx", "int4-g64-mix1", 176.0, 95.57, 17.59),
            ("onnx", "int4-g64-mix1-imatrix", 188.0, 95.57, 9.33),
            ("executorch", "8da4w-g32-emb8-mix2", 190.0, 94.7, 16.4),
            ("gguf", "q8_0", 150.0, 145.0, 0.9), ("onnx", "int8", 149.0, 159.0, 0.74))):
        r = make_result(recipe, target, **{name: 123.25 + i for name in COLUMNS})
        r["metrics"].update(decode_tok_s=metric("decode_tok_s", [tok]), file_mb=metric("file_mb", [mb]),
                            dppl_pct=metric("dppl_pct", [dppl], 2.0))
        r["artifact"]["model"] = "builtin:smollm2-135m"
        r["settings"] = {"exporter": "genai" if target == "onnx" else None, "prompt_len": 128, "gen": 128,
                         "max_context": 2048, "eval_tokens": 2048}
        results.append(r)
    page = tmp_path / "report.html"
    assert cli("report", write_results(tmp_path / "res", *results), "-f", "html", "-o", page).code == 0
    html = page.read_text()
    assert "Measured with different settings" not in html  # the exporter alone is no setting
    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("</body>", _MEASURE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1400,1600", "--virtual-time-budget=3000", "--dump-dom", measured.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    layout = json.loads(re.findall(r"<pre id=\"?layout\"?>(.*?)</pre>", dom, re.S)[-1])  # (not the script's own)
    assert layout["viewport"] == 1400 and not layout["page_scrolls"] and layout["table_right"] <= 1400, layout
    assert layout["overlaps"] == [], layout["overlaps"]


def test_one_colour_per_target_error_bars_and_best_only_beyond_the_error(cli, tmp_path, make_result, write_results):
    """A target has its colour in every plot of every page; every accuracy point has its error bar;
    "best accuracy" is not awarded between overlapping intervals (16.36 ± 1.96 vs 17.59 ± 2.10: tied);
    a plain report claims no passed checks."""
    import re

    from edgekit.profile.metrics import metric

    def made(target, recipe, model, dppl, se, tok):
        r = make_result(recipe, target, decode_tok_s=tok, file_mb=90.0)
        r["metrics"]["dppl_pct"] = metric("dppl_pct", [dppl], se)
        r["artifact"]["model"] = model
        return r

    one = [made("gguf", "q4_0", "a", 17.59, 2.10, 180.0), made("executorch", "8da4w", "a", 16.36, 1.96, 190.0),
           made("onnx", "int4", "b", 5.0, 0.5, 200.0), made("gguf", "q4_0", "b", 9.0, 0.5, 150.0)]
    page = tmp_path / "r.html"
    assert cli("report", write_results(tmp_path / "res", *one), "-f", "html", "-o", page).code == 0
    html = page.read_text()
    gguf_fills = {m for svg in re.findall(r"<svg.*?</svg>", html, re.S)
                  for m in re.findall(r'<g class="mk"><\w+ [^>]*fill="(#\w+)"', svg)}
    assert len(re.findall(r'class="err"', html)) == 4  # the two accuracy plots' points, one bar each
    from edgekit.report.svg import colour_of

    assert colour_of("gguf") in gguf_fills and colour_of("gguf") != colour_of("onnx") != colour_of("executorch")
    part_a = html[html.index("<h2>a: speed"):html.index("<h2>b: speed")]
    assert "tied for best accuracy" in part_a and ">best accuracy<" not in part_a
    part_b = html[html.index("<h2>b: speed"):]
    assert ">best accuracy<" in part_b  # 5.0 ± 0.5 against 9.0 ± 0.5: a best
    assert "checks passed" not in html and "no checks set" in html
