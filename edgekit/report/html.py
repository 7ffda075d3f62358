"""One self-contained HTML page (inline CSS and SVG, nothing fetched): a summary first, then the
speed/size and speed/accuracy plots with their Pareto fronts, then every result in a table."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from edgekit.core.results import RunResult
from edgekit.report.fields import fields, fmt, rows, text_cells
from edgekit.report.svg import Point, line_plot, pareto, scatter

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px 32px; color: #18181b; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px; }
.meta { color: #71717a; font-size: 13px; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; margin-top: 16px; }
.card { border: 1px solid #e4e4e7; border-radius: 8px; padding: 12px 16px; min-width: 210px; }
.card .label { color: #71717a; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin: 4px 0; }
.card .what { font-size: 13px; }
.card.bad { border-color: #dc2626; background: #fef2f2; } .card.good { border-color: #16a34a; background: #f0fdf4; }
ul.failures { font-size: 13px; } ul.failures li { margin: 3px 0; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #e4e4e7; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f5; white-space: normal; vertical-align: bottom; } td:nth-child(-n+4) { text-align: left; }
tr.incomplete td { background: #fef2f2; }
.warn { color: #92400e; background: #fffbeb; border: 1px solid #f59e0b; border-radius: 6px; padding: 6px 10px;
        font-size: 13px; margin-top: 10px; }
"""


def html_page(results: list[RunResult], verdicts: list, title: str = "edgekit report", emulated: bool = False) -> str:
    """``verdicts``: ``edgekit.check.Verdict`` records; the failed ones are listed under the summary.
    An emulated device's timings are left out of the cards, plots and table unless ``emulated``."""
    from edgekit.report.compare import noise

    flat = rows(results, emulated)
    for row, r in zip(flat, sorted(results, key=lambda r: r.key)):  # (rows() sorts them so)
        m = r.figures(emulated).get("decode_tok_s")  # its runs' uncertainty: a "best" speed must beat it
        row["decode_tok_s_spread"] = noise(m) if m is not None else None
    failed = [v for v in verdicts if v.passed is False]
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1><div class=meta>{len(results)} result(s), made {made}</div>",
        _emulated_note(results, emulated), _busy(results),
        _summary(flat, failed, sum(v.name != "completes" for v in verdicts)),
        *_per_model(flat),
        "<h2>All results</h2>", _reference(results), _table(flat),
        *_timings(results),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _busy(results: list[RunResult]) -> str:
    """The warning that some results were measured on a busy machine, where they were."""
    from edgekit.report.formats import busy_note

    note = busy_note(results)
    return f"<div class=warn>{escape(note)}</div>" if note else ""


def _reference(results: list[RunResult]) -> str:
    """What the accuracy figures compare against, where that is not a model's float weights."""
    from edgekit.report.formats import reference_note

    note = reference_note(results)
    return f"<div class=meta>{escape(note)}</div>" if note else ""


def _per_model(flat: list[dict]) -> list[str]:
    """For each model: its best-of cards, a note where its results were measured with different
    settings, and its plots: a figure of one model is never set beside another model's."""
    models = sorted({r["model"] for r in flat})
    parts = []
    for model in models:
        mine = [r for r in flat if r["model"] == model]
        parts.append(f"<h2>{escape(model)}: speed, size and accuracy</h2>")
        parts.append(f"<div class=cards>{''.join(_cards(mine))}</div>")
        # the exporter is how an artifact was made, not how it was measured: not a setting that differs
        labels = sorted({_without_exporter(r["settings"]) for r in mine if r["complete"] and r["settings"]})
        if len(labels) > 1:
            parts.append("<p class='meta settings'>Measured with different settings (P, G, threads, "
                         f"context, tokens scored): {escape(' | '.join(labels))}. Compare rows of the same settings "
                         "only (the table's settings column).</p>")
        parts += [
            "<p class=meta>Each point is one recipe on one device: colour is the target, shape the device. "
            "Points on a device's Pareto front (outlined, joined by the dashed line) are not beaten on both axes "
            "by any other result on that device.</p>",
            "<div class=plots>", *_plots(mine), "</div>",
        ]
    return parts


def _without_exporter(label: str) -> str:
    """A settings label (``genai P128 G128 ctx8192 eval2048``) without the exporter's word."""
    import re

    return " ".join(w for w in label.split() if re.fullmatch(r"(P|G|t|ctx|eval)\d+", w))


def _summary(flat: list[dict], failed: list, checks: int) -> str:
    """The failures card; a plain report (no checks set, only whether each result completed) claims no
    passed checks."""
    if checks:
        cards = [_card("failures", str(len(failed)), f"all {checks} checks passed" if not failed else "see below",
                       "bad" if failed else "good")]
    else:
        cards = [_card("incomplete results", str(len(failed)), "no checks set (edgekit check sets them)"
                       + ("; see below" if failed else ""), "bad" if failed else "")]
    out = f"<div class=cards>{''.join(cards)}</div>"
    if failed:
        items = "".join(f"<li><b>{escape(v.combination)}</b>: {escape(v.name)}: {escape(v.message)}</li>"
                        for v in failed)
        out += f"<ul class=failures>{items}</ul>"
    return out


def _cards(flat: list[dict]) -> list[str]:
    """The best of each headline figure; "tied" where another result's interval (± its standard error)
    overlaps the best one's: a best is only called where the figures' uncertainty does not cover it."""
    done = [r for r in flat if r["complete"]]
    cards = []
    for label, metric, pick, unit in (
        ("best decode speed", "decode_tok_s", max, "tok/s"),
        ("smallest file", "file_mb", min, "MB"),
        ("best accuracy", "dppl_pct", min, "% perplexity change"),
    ):
        have = [r for r in done if r[metric] is not None]
        if not have:
            cards.append(_card(label, "-", "not measured"))
            continue
        best = pick(have, key=lambda r: r[metric])
        se = best.get(f"{metric}_stderr")
        value = f"{round(best[metric], 2) + 0.0:+.2f}" if metric == "dppl_pct" else fmt(best[metric])
        if se is not None:
            value += f" ± {se:.2f}"
        tied = [r for r in have if r is not best and _overlap(best, r, metric)]
        if tied:
            who = "tied within ± one standard error: " + ", ".join(_who(r) for r in [best, *tied])
            cards.append(_card(label.replace("best", "tied for best").replace("smallest", "tied for smallest"),
                               f"{value} <small>{unit}</small>", who))
        else:
            cards.append(_card(label, f"{value} <small>{unit}</small>", _who(best)))
    return cards


def _overlap(a: dict, b: dict, metric: str) -> bool:
    """Whether two results' figures are within each other's uncertainty (value ± standard error, or
    the spread of the runs where a figure has no standard error); exact figures overlap only when equal."""
    ea, eb = (r.get(f"{metric}_stderr") or r.get(f"{metric}_spread") or 0.0 for r in (a, b))
    return abs(a[metric] - b[metric]) <= ea + eb


def _emulated_note(results: list[RunResult], shown: bool) -> str:
    devices = sorted({r.device_name for r in results if r.device.get("emulated") or r.emulated_figures})
    if not devices:
        return ""
    what = "shown (emulated, not comparable with devices)" if shown else "left out: their accuracy is shown"
    return f"<p class=meta>Emulated device(s) {escape(', '.join(devices))}: timings and memory {what}.</p>"


def _card(label: str, value: str, what: str, kind: str = "") -> str:
    return (f"<div class='card {kind}'><div class=label>{escape(label)}</div><div class=value>{value}</div>"
            f"<div class=what>{escape(what)}</div></div>")


def _timings(results: list[RunResult]) -> list[str]:
    """For the results that have them: the per-operator table (``profile --ops``) and the sustained run
    (``profile --duration``: its summary, decode speed and temperature over time)."""
    out = []
    for r in sorted((r for r in results if r.ops is not None or r.sustained is not None), key=lambda r: r.key):
        who = f"{r.model} {r.target}/{r.recipe} on {r.device_name}"
        if r.ops is not None:
            out.append(f"<h2>{escape(who)}: per-operator times</h2><p class=meta>{escape(r.ops.title)}</p>")
            if r.ops.rows:
                out.append(_html_table(*r.ops.table()))
        if r.sustained is not None:
            s = r.sustained
            out.append(f"<h2>{escape(who)}: sustained run</h2><p class=meta>{escape(s.summary())}</p>")
            speed = [(p.t_s, p.decode_tok_s) for p in s.samples if p.decode_tok_s is not None]
            temps = [(p.t_s, p.temp_c) for p in s.samples if p.temp_c is not None]
            out.append("<div class=plots>" + line_plot(speed, "Decode speed over time", "seconds", "decode tok/s")
                       + line_plot(temps, "Temperature over time", "seconds", "°C") + "</div>")
    return out


def _who(row: dict) -> str:
    return f"{row['model']} {row['target']}/{row['recipe']} on {row['device']}"


def _plots(flat: list[dict]) -> list[str]:
    out = []
    for x, x_label, title in (
        ("file_mb", "file size (MB)", "Decode speed against file size"),
        ("dppl_pct", "perplexity change vs fp32 PyTorch, dppl_pct (%)", "Decode speed against accuracy loss"),
    ):
        pts = [Point(r[x], r["decode_tok_s"], _point_label(r, flat), r["target"], r["device"], r.get(f"{x}_stderr"))
               for r in flat if r["complete"] and r[x] is not None and r["decode_tok_s"] is not None]
        out.append(scatter(pts, title, x_label, "decode speed (tok/s)", pareto(pts)))
    return out


def _point_label(row: dict, flat: list[dict]) -> str:
    """The recipe; with the model too when there is more than one."""
    many = len({r["model"] for r in flat}) > 1
    return f"{row['model'].removeprefix('builtin:')} {row['recipe']}" if many else row["recipe"]


# the results table's room on a 1400 px page, in characters of its 12 px font: where the table is wider,
# the columns the terminal leaves out first go, and the page names them (the CSV/JSON reports have all)
TABLE_CHARS = 200


def _table(flat: list[dict]) -> str:
    from edgekit.output import _collapse
    from edgekit.report.formats import RESULTS_LAYOUT

    columns, cells, left_out = _collapse(fields(table=True), [text_cells(r) for r in flat], RESULTS_LAYOUT["keep"],
                                         TABLE_CHARS, RESULTS_LAYOUT["less_needed"], RESULTS_LAYOUT["headline"])
    note = (f"<p class=meta>Left out to fit the page: {escape(', '.join(left_out))} "
            "(`edgekit report -f csv` or `-f json` has every field).</p>" if left_out else "")
    return _html_table(columns, cells, [row["complete"] for row in flat]) + note


def _html_table(header, rows, complete=None) -> str:
    """A table of text cells (escaped), a header's underscores breakable; a row whose ``complete`` is
    False marked as incomplete."""
    head = "".join(f"<th>{escape(h).replace('_', '_<wbr>')}</th>" for h in header)
    body = "".join(("<tr>" if complete is None or complete[i] else "<tr class=incomplete>")
                   + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
