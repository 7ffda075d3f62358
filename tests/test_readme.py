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
