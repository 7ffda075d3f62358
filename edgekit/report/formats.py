"""The one registry of output formats: name -> render(results, verdicts) -> text. `edgekit report`,
`edgekit check` and `edgekit sweep` write every report through it; the terminal's tables are the two
views at the end (printed by ``edgekit.output``, the sink).

``verdicts``: ``edgekit.check.Verdict`` records (a key, a check's name, passed, a message); formats
that show only results ignore them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from edgekit.core.results import SPECS, RunResult
from edgekit.errors import EdgekitError
from edgekit.report.fields import HEADLINE, KEY, LESS_NEEDED, fields, fmt, rows, text_cells


@dataclass(frozen=True)
class Format:
    name: str
    render: Callable[..., str]  # (results, verdicts, emulated=False) -> text
    help: str


FORMATS: dict[str, Format] = {}


def register(name: str, help: str):
    def add(render):
        FORMATS[name] = Format(name, render, help)
        return render
    return add


def get(name: str) -> Format:
    if name not in FORMATS:
        raise EdgekitError(f"unknown format '{name}'; formats: {', '.join(FORMATS)}")
    return FORMATS[name]


def render(format: str, results: list[RunResult], verdicts: list = (), emulated: bool = False) -> str:
    return get(format).render(results, list(verdicts), emulated=emulated)


def md_escape(text) -> str:
    """A markdown table's cell: a ``|`` would end it, a line break the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(header, cells) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


@register("md", "the results table in markdown")
def markdown(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    note = reference_note(results)
    return (f"{note}\n\n" if note else "") + md_table(*results_table(results, emulated))


def busy_note(results: list[RunResult]) -> str | None:
    """One line where some results were measured on a busy machine (their speed figures are low)."""
    busy = [r for r in results if r.environment is not None and r.environment.busy]
    if not busy:
        return None
    if len(busy) == 1:
        return f"warning: {' / '.join(busy[0].key)}: {busy[0].environment.busy}"
    return (f"warning: {len(busy)} of {len(results)} results were measured on a busy machine (machine_load): "
            "their speed figures are lower than a quiet machine's")


def reference_note(results: list[RunResult]) -> str | None:
    """What a table's accuracy figures compare against, where a model's reference is not its float
    weights (a quantized GGUF source, dequantized), said beside every table that shows dppl/top-1/KL."""
    refs = sorted({(r.model, r.reference) for r in results if r.reference})
    if not refs:
        return None
    return "accuracy (dppl, top-1, KL) against " + "; ".join(f"{m}: {ref}" for m, ref in refs) + (
        ", not the original float weights")


@register("csv", "one row per result, every field (the environment too)")
def csv_text(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(results, emulated))
    return buf.getvalue()


@register("json", "one object per result, every field (the environment too)")
def json_text(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    from edgekit import jsonfile

    return jsonfile.dumps(rows(results, emulated)) + "\n"


@register("junit", "the checks as JUnit XML: a test suite per combination, a test case per check")
def junit(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    from edgekit.report.junit import junit_xml

    return junit_xml(verdicts)


@register("html", "one self-contained page: summary, plots, the results table")
def html(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    from edgekit.report.html import html_page

    return html_page(results, verdicts, emulated=emulated)


@register("summary", "the markdown a pull request shows: the verdict, the failed checks, the results table")
def summary(results: list[RunResult], verdicts=(), emulated: bool = False) -> str:
    failed = [v for v in verdicts if v.passed is False]
    passed = sum(v.passed is True for v in verdicts)
    head = (f"## edgekit check: FAILED, {len(failed)} of {len(verdicts)} checks failed" if failed
            else f"## edgekit check: passed, all {passed} checks")
    lines = [head, ""]
    if failed:
        lines.append(md_table(("combination", "check", "why"), [(v.combination, v.name, v.message) for v in failed]))
    lines += [f"{len(results)} result(s), {passed} check(s) passed, {len(failed)} failed, "
              f"{sum(v.passed is None for v in verdicts)} skipped.", "", "### Results", "",
              markdown(results, emulated=emulated)]
    return "\n".join(lines)


# the terminal's views, for ``edgekit.output.table``

# how the results table narrows on a terminal: the key's columns stay, which others go first and last
RESULTS_LAYOUT = {"keep": len(KEY), "less_needed": LESS_NEEDED, "headline": HEADLINE}


def results_table(results: list[RunResult], emulated: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the results table (printed with ``RESULTS_LAYOUT``)."""
    return fields(table=True), [text_cells(r) for r in rows(results, emulated)]


def metrics_table(result: RunResult) -> tuple[str, list[str], list[tuple], str | None]:
    """One result's figures: median, standard error, unit, spread, count and direction of each metric
    (an emulator's left out); returns (title, header, rows, a note on what was left out)."""
    order = list(SPECS)
    shown = result.figures()
    cells = []
    for name, m in sorted(shown.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        spread = f"{fmt(m.min)} .. {fmt(m.max)}" if len(m.samples) > 1 else ""
        direction = "higher is better" if m.higher_is_better else "lower is better"
        n = m.tokens if m.tokens is not None else len(m.samples)
        cells.append((name, fmt(m.value), "" if m.stderr is None else f"± {fmt(m.stderr)}", m.unit, spread, n,
                      direction))
    a = result.artifact
    status = "" if result.complete else " (INCOMPLETE)"
    title = f"{a.get('name', result.recipe)} ({result.target} {result.recipe}) on {result.device_name}{status}"
    if result.reference and any(SPECS[n].accuracy for n in shown if n in SPECS):
        title += f"; {reference_note([result])}"
    hidden = result.emulated_figures
    note = (f"{result.device_name} is emulated: {', '.join(hidden)} are the emulator's figures, "
            "kept in the result JSON only"
            if hidden else None)
    return title, ["metric", "value", "± (std. error)", "unit", "min .. max", "n", ""], cells, note


def artifact_tables(report: dict) -> list[tuple[str | None, tuple, list[tuple]]]:
    """An artifact's inspection (``edgekit inspect``) as tables: (title, header, rows) each."""
    head = ("artifact", "target", "recipe", "model", "model_type", "max_context", "parity")
    rows = [(k, report[k]) for k in head]
    roles = report.get("size_roles", ("model", "tokenizer", "config"))
    named = {"model": "model files", "tokenizer": "tokenizer", "config": "config"}
    rows.append(("size", f"{report['size_bytes'] / 1e6:.2f} MB ({', '.join(named[r] for r in roles)})"))
    if report.get("other_bytes"):
        rows.append(("other files", f"{report['other_bytes'] / 1e6:.2f} MB (not counted in the size)"))
    checked = report.get("standard_runtime")
    if checked:
        rows.append(("loads in", _standard_runtime(checked)))
    elif "standard_runtime" in report:
        skipped = report.get("parity_skipped")
        rows.append(("loads in", f"not checked ({skipped})" if isinstance(skipped, str)
                     else "not checked (an export with parity checks it in its runtime's own API)"))
    tables = [(None, ("", ""), rows)]
    if report.get("metadata"):
        tables.append(("metadata", ("key", "value"), list(report["metadata"].items())))
    for kind in ("inputs", "outputs", "states"):
        if report.get(kind):
            tables.append((kind, ("name", "shape", "dtype"), _fold_layers(report[kind])))
    if report.get("weights"):
        tables.append(("stored weights", ("dtype", "bits", "tensors", "elements", "MB"),
                       [(d, w["bits"], w["tensors"], w["elements"], f"{w['bytes'] / 1e6:.3f}")
                        for d, w in report["weights"].items()]))
    if report.get("quantized"):
        tables.append(("quantized layers", ("bits", "block", "layers", "which"),
                       [(q["bits"], q["block_size"] or "-", len(q["layers"]),
                         "the others" if i == 0 and len(report["quantized"]) > 1 else _layer_names(q["layers"]))
                        for i, q in enumerate(report["quantized"])]))
    if report.get("delegation"):
        d = report["delegation"]
        tables.append(("delegation", ("", ""), [("delegated nodes", f"{d['delegated_nodes']} of {d['total_nodes']}"),
                                                ("share", d["share"])]))
    if report.get("ops"):
        tables.append(("ops", ("op", "count"), list(report["ops"].items())))
    return tables


def _standard_runtime(checked: dict) -> str:
    """The export's check of the artifact in its runtime's own LLM API, in one line."""
    what = f"{checked.get('api')} ({checked.get('runtime')} {checked.get('version')})"
    if not checked.get("loaded"):
        return f"{what}: does not load ({checked.get('error')})"
    match = "the same" if checked.get("tokens_match") else "NOT the same"
    return f"{what}: checked, {match} {checked.get('tokens')} greedy tokens as edgekit's runner"


def _fold_layers(tensors: list[dict]) -> list[tuple]:
    """Inputs/outputs as rows, the per-layer ones (``past_key_values.3.key``) folded into one row per
    name pattern with the layer range (a 30-layer model's cache is 2 rows, not 60)."""
    import re

    rows: list[tuple] = []
    folded: dict[tuple, list[int]] = {}
    for f in tensors:
        m = re.fullmatch(r"(.*?\.)(\d+)(\..*)", f["name"])
        if not m:
            rows.append((f["name"], _shape(f["shape"]), f["dtype"]))
            continue
        key = (m.group(1), m.group(3), _shape(f["shape"]), f["dtype"])
        if key not in folded:
            folded[key] = []
            rows.append(key)
        folded[key].append(int(m.group(2)))
    return [(f"{r[0]}{{{min(folded[r])}..{max(folded[r])}}}{r[1]}" if len(folded[r]) > 1
             else f"{r[0]}{folded[r][0]}{r[1]}", r[2], r[3]) if r in folded else r for r in rows]


def _layer_names(names: list[str], most: int = 8) -> str:
    """Layer names, the first ``most`` of them and how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _shape(shape: list) -> str:
    """[1, [1, 128]] -> 1 x 1..128; symbolic dimensions by name."""
    return " x ".join(f"{d[0]}..{d[1]}" if isinstance(d, list) else str(d) for d in shape) or "(any)"
