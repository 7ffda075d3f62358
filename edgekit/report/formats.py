"""One table of results in the formats people paste: rich table, markdown, CSV, JSON."""

from __future__ import annotations

import csv
import io
import math

from edgekit.report.results import key

COLUMNS = [
    "decode_tok_s", "prefill_tok_s", "ttft_ms", "token_ms_p50", "token_ms_p90", "load_s", "peak_rss_mb", "eval_peak_rss_mb", "file_mb",
    "ppl", "dppl_pct", "top1_agree", "kl_mean",
]
KEY = ("model", "target", "recipe", "device")
# the columns that carry a standard error (a mean over the scored tokens): CSV and JSON give it as
# ``<name>_stderr``, the text tables as ``value ± error``
WITH_STDERR = ("ppl", "dppl_pct", "top1_agree", "kl_mean")


def rows(results: list[dict], emulated: bool = False) -> list[dict]:
    """One flat row per result: its key, completeness and the median of every metric; an emulator's
    figures (an emulated device's timings) are left out unless ``emulated``."""
    from edgekit.profile.metrics import is_emulated, stderr
    from edgekit.profile.settings import label

    out = []
    for r in sorted(results, key=key):
        row = dict(zip(KEY, key(r)))
        row["complete"] = r.get("complete", False)
        row["parity"] = parity(r)
        row["settings"] = label(r)
        for name in COLUMNS:
            m = r["metrics"].get(name)
            value = None if m is None or (is_emulated(m) and not emulated) else m.get("value")
            row[name] = value if isinstance(value, (int, float)) and math.isfinite(value) else None
            if name in WITH_STDERR:
                se = stderr(m) if row[name] is not None else None
                row[f"{name}_stderr"] = se if se is not None and math.isfinite(se) else None
        out.append(row)
    return out


def parity(result: dict) -> str | None:
    """The export's parity check as a table shows it: "passed", "FAILED", "not checked" (None: a
    combination that failed before its artifact was made)."""
    if "parity_passed" not in result["artifact"]:
        return None
    return {True: "passed", False: "FAILED"}.get(result["artifact"]["parity_passed"], "not checked")


def fields() -> list[str]:
    """The CSV/JSON fields of a row, in order."""
    out = [*KEY, "complete", "parity", "settings"]
    for name in COLUMNS:
        out += [name, f"{name}_stderr"] if name in WITH_STDERR else [name]
    return out


def cell(value) -> str:
    from edgekit.output import fmt

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt(value) if isinstance(value, float) else str(value)


def text_table(results: list[dict], emulated: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the results table."""
    from edgekit.output import fmt_pm

    header = [*KEY, "complete", "parity", "settings", *COLUMNS]

    def text(row: dict, h: str) -> str:
        if h in WITH_STDERR and row[h] is not None and row[f"{h}_stderr"] is not None:
            return fmt_pm(row[h], row[f"{h}_stderr"])
        return cell(row[h])

    return header, [[text(r, h) for h in header] for r in rows(results, emulated)]


def markdown(results: list[dict], emulated: bool = False) -> str:
    header, cells = text_table(results, emulated)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def csv_text(results: list[dict], emulated: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(results, emulated))
    return buf.getvalue()


def json_text(results: list[dict], emulated: bool = False) -> str:
    from edgekit import jsonfile

    return jsonfile.dumps(rows(results, emulated)) + "\n"


def render(format: str, results: list[dict], verdicts: list, emulated: bool = False) -> str:
    """The junit or html report of results judged by ``verdicts`` (`edgekit report` and `edgekit check`)."""
    if format == "junit":
        from edgekit.report.junit import junit_xml

        return junit_xml(verdicts)
    from edgekit.report.html import html_page

    return html_page(results, verdicts, emulated=emulated)
