"""The README renders: every table row belongs to a table (a paragraph inside one cuts it short)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_table_row_renders_in_a_table():
    from markdown_it import MarkdownIt

    lines = README.read_text().splitlines()
    tokens = MarkdownIt("commonmark").enable("table").parse("\n".join(lines))
    in_table = set()
    for t in tokens:
        if t.type == "table_open" and t.map:
            in_table.update(range(*t.map))
    fenced = set()
    for t in tokens:
        if t.type in ("fence", "code_block") and t.map:
            fenced.update(range(*t.map))
    stray = [f"README.md:{i + 1}: {line[:60]}" for i, line in enumerate(lines)
             if line.startswith("|") and i not in in_table and i not in fenced]
    assert not stray, "table rows outside a table:\n" + "\n".join(stray)


def _bench(name: str):
    """A script of bench/ as a module (bench/ is no package)."""
    import importlib.util

    path = README.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_table_is_what_bench_recipes_renders_from_its_saved_run():
    import json

    recipes = _bench("recipes")
    report = json.loads((README.parent / "bench" / "smollm2-135m.json").read_text())
    md = recipes.markdown(report["rows"], report["verdicts"],
                          recipes._title(report["settings"], report["read_bandwidth_gbs"]))
    assert md in README.read_text()


def test_bench_recipes_shows_the_standard_error_beside_a_figure():
    recipes = _bench("recipes")
    row = {"model": "m", "target": "gguf", "recipe": "q4_0", "dppl_pct": 18.82, "dppl_pct_se": 2.16,
           "top1_agree": 0.674}
    line = recipes.markdown([row], [], "t").splitlines()[-1]
    assert "| 18.8 ± 2.16 | 0.674 |" in line
    assert line.count("|") == recipes.markdown([], [], "t").splitlines()[2].count("|")


def test_the_other_bench_tables_have_the_readme_shape():
    text = README.read_text()
    arm = _bench("arm64").markdown([("int8", "local (x86_64)", {"ppl": 1.7321, "dppl_pct": -0.024, "top1_agree": 0.9937,
                                                                 "kl_mean": 0.00003})])
    coreml = _bench("coreml").markdown({"fp16": 6.026, "int4": 1.881, "pal4": 1.721})
    tiny = _bench("tiny").markdown({"heldout_tokens": 62572, "eval_tokens": 6035, "ppl_trained": 1.7717,
                                    "ppl_random": 2107.09, "ppl_eval_txt": 1.7712})
    for table in (arm, coreml, tiny):
        head = table.splitlines()[:2]
        assert "\n".join(head) in text, head[0]
        assert {line.count("|") for line in table.splitlines()} == {head[0].count("|")}
    assert "| int8 | local (x86_64) | 1.7321 | -0.024 | 0.9937 | 0.00003 |" in arm
    assert tiny in text and coreml in text


def test_the_recipe_table_gives_each_measured_recipe_its_size_and_dppl_from_the_saved_run():
    """For each recipe the README's recipe table says its measured dppl and size on SmolLM2-135M,
    and that figure is the saved benchmark run's (`bench/recipes.py --json`)."""
    import json
    import re

    recipes = _bench("recipes")
    report = json.loads((README.parent / "bench" / "smollm2-135m.json").read_text())
    figures = recipes.recipe_figures(report["rows"])
    lines = README.read_text().split("### Recipes", 1)[1].split("\n\n|", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "Q4_1 GGUF dequantized" in lines[0]  # the heading says what the figures are measured against
    said = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for recipe, figure in re.findall(r"`([^`]+)`: ([^;]+? %)", cells[-1]):
            said[(cells[0], recipe)] = figure
    assert said == figures


# Targets and thresholds the README states in these units: not measurements.
_NOT_MEASURED = ("60 s a recipe aimed at", "1.1x its size")


def _hand_figures(text: str, generated: str) -> list[str]:
    """Speeds, times, memory and speed-up ratios written into the README's text by hand: anything of
    the kind outside code and outside the tables the bench/ scripts render."""
    import re

    text = text.replace(generated, "")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    for allowed in _NOT_MEASURED:
        text = text.replace(allowed, "")
    unit = r"(?:tok/s|ms|µs|s|seconds|CPU-seconds|min|minutes|MiB)\b"
    figure = rf"\d[\d.,]*(?:\s?-\s?\d[\d.,]*)?\s?{unit}|\d[\d.,]*(?:-\d[\d.,]*)?x\b"
    return [m.group(0) for m in re.finditer(figure, text)]


def test_no_measured_speed_time_or_ratio_is_written_into_the_readme_by_hand():
    """Every figure in the README comes from a bench/ script (its tables) or is a by-hand run recorded
    in bench/history.md: a speed, a duration, a MiB or an 'Nx' written into the prose is one neither
    regenerates."""
    import json

    recipes = _bench("recipes")
    report = json.loads((README.parent / "bench" / "smollm2-135m.json").read_text())
    md = recipes.markdown(report["rows"], report["verdicts"],
                          recipes._title(report["settings"], report["read_bandwidth_gbs"]))
    found = _hand_figures(README.read_text(), md)
    assert not found, ("figures no bench/ script regenerates (move them to bench/history.md, or name "
                       f"a target or threshold in _NOT_MEASURED): {found}")
    old = "decode at 193 tok/s, 1.2x q4_0's, in 15-50 s, about 30 µs, 17 minutes, 598 MiB"
    assert _hand_figures(old, md) == ["193 tok/s", "1.2x", "15-50 s", "30 µs", "17 minutes", "598 MiB"]
