"""The output layer prints user strings (paths, model and device names) as they are: never as rich markup."""

from __future__ import annotations

import pytest

STRINGS = ["x[/]y", "a[/b]", "models/smol[v2]", "[bold]loud[/bold]", "my[/]phone", ":smile: [link=x]"]


@pytest.mark.parametrize("text", STRINGS)
def test_error_note_and_table_print_text_as_it_is(capsys, text):
    from edgekit import output

    output.error(f"not found: {text}")
    output.note(text)
    output.table(f"title {text}", (f"col {text}",), [(text,)])
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: not found: {text}", text]
    assert captured.out.count(text) == 3, captured.out


@pytest.mark.parametrize(
    "args",
    [
        ("run", "x[/]y"),
        ("inspect", "[bold]art"),
        ("export", "models/smol[v2]", "-o", "out"),
        ("compare", "a[/b]", "r.json"),
        ("report", "res[/]ults"),
        ("sweep", "sw[/]eep.toml"),
        ("check", "[red]edgekit.toml"),
        ("devices", "setup", "my[/]phone"),
    ],
)
def test_user_strings_in_errors_are_not_markup(cli, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = cli(*args)
    assert r.code == 2, r.err
    assert (r.err.startswith("error:") and r.err.count("\n") == 1
            and args[1 if args[0] != "devices" else 2] in r.err), r.err


def test_a_device_name_that_looks_like_markup(cli, tiny_artifacts):
    r = cli("profile", tiny_artifacts("llama"), "-d", "my[/]phone")
    assert r.code == 2 and r.err == "error: unknown device 'my[/]phone'; known: " + r.err.split("known: ")[1], r.err


def test_write_file_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno

    from edgekit import output
    from edgekit.errors import EdgekitError

    (tmp_path / "folder").mkdir()
    with pytest.raises(EdgekitError, match="it is a folder"):
        output.write_file(tmp_path / "folder", "text")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full)
    with pytest.raises(EdgekitError, match="No space left on device"):
        output.write_file(tmp_path / "r.json", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_check_html_to_a_folder_leaves_nothing(cli, tmp_path, make_result, write_results):
    folder = write_results(tmp_path / "res", make_result("int4", decode_tok_s=100.0))
    r = cli("report", folder, "-f", "html", "-o", folder)
    assert r.code == 2 and "it is a folder" in r.err and r.err.count("\n") == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "\x1b[31mred", "\udcff\udcfe bytes", "\ud800 lone", "tab\there"])
def test_an_error_is_one_line_whatever_it_holds(capsys, text):
    from edgekit import output

    output.error(f"not found: {text}")
    err = capsys.readouterr().err
    assert err.startswith("error: not found: ") and err.count("\n") == 1 and "\x1b" not in err, repr(err)


def test_a_path_that_is_not_utf8_is_one_line(cli, tmp_path):
    r = cli("run", str(tmp_path) + "/\udcff\udcfe\nx")
    assert r.code == 2 and r.err.startswith("error: artifact not found") and r.err.count("\n") == 1, repr(r.err)


def test_without_a_terminal_each_stage_is_one_plain_line_with_its_time(cli, tmp_path):
    """CI logs (stderr not a terminal, as under pytest) show where a long export or profile is: one
    line per stage with the seconds since the command started, and a last line when it finished."""
    import re

    out = tmp_path / "art"
    r = cli("export", "builtin:tiny", "-o", out, "--no-parity")
    assert r.code == 0, r.err
    lines = [line for line in r.err.splitlines() if line.startswith("[")]
    assert any(re.fullmatch(r"\[ *\d+\.\d s\] export builtin:tiny -> onnx: tokenizer", line) for line in lines), r.err
    assert lines[-1].endswith("export builtin:tiny -> onnx: finished") and len(lines) == len(set(lines))
    r = cli("profile", out, "--runs", "1", "--gen", "4", "--prompt-len", "8", "--no-accuracy")
    assert r.code == 0, r.err
    assert re.search(r"\] profile art on local: load model\n", r.err) and "profile art on local: finished" in r.err


def test_without_a_terminal_a_long_step_says_it_is_still_running(capsys, monkeypatch):
    """One stage can last minutes (an ExecuTorch lowering): a CI log gets a line for it again while it runs."""
    import time

    from edgekit import output

    monkeypatch.setattr(output, "STILL_RUNNING_S", 0.2)
    with output.plain_progress("export m -> executorch") as line:
        line("lower to XNNPACK")
        time.sleep(0.5)
        line("to_executorch")
    lines = capsys.readouterr().err.splitlines()
    assert [x.split("] ", 1)[1] for x in lines][:2] == ["export m -> executorch: lower to XNNPACK",
                                                      "export m -> executorch: lower to XNNPACK (still running)"]
    assert lines[-2:][0].endswith("to_executorch") and lines[-1].endswith(": finished")


def test_a_wide_table_collapses_to_the_terminal_empty_columns_first():
    from edgekit.output import _collapse

    columns = ["model", "recipe", "ttft", "empty", "decode", "ppl"]
    rows = [["builtin:tiny", "int4-g32-mix1", "12.5", "-", "250.1", "1.73"], ["m", "fp32", "9.0", "", "300.0", "1.72"]]
    assert _collapse(columns, rows, 2, 200) == (columns, rows, [])
    cols, cells, left = _collapse(columns, rows, 2, 60)
    assert left == ["empty"] and cols == ["model", "recipe", "ttft", "decode", "ppl"]
    cols, cells, left = _collapse(columns, rows, 2, 40)
    assert cols[:2] == ["model", "recipe"] and left[0] == "empty" and "ppl" in left
    assert all(len(r) == len(cols) for r in cells)


def test_terminal_tables_never_cut_a_figure_and_key_value_tables_have_no_empty_header(monkeypatch):
    """A cell wider than its column folds onto the next line (never "166…" or "6.25e…"); a table whose
    headers are all empty prints no header row; on a terminal too narrow for any figure, only the key stays."""
    import io

    from rich.console import Console

    from edgekit import output
    from edgekit.output import _collapse

    buf = io.StringIO()
    monkeypatch.setattr(output, "out", Console(file=buf, width=40, force_terminal=True, color_system=None))
    output.table(None, ("", ""), [("llama.attention.layer_norm_rms_epsilon", "9.999999747378752e-06")])
    text = buf.getvalue()
    assert "…" not in text and "┃" not in text  # no header row (rich draws it with heavy bars)
    cells = [line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 3]
    assert "".join(cells) == "9.999999747378752e-06"  # folded over two lines, every digit there
    columns, rows = ["model", "recipe", "decode"], [["builtin:smollm2-135m", "int4-g64-mix1", "176"]]
    cols, _, left = _collapse(columns, rows, 2, 30)
    assert cols == ["model", "recipe"] and left == ["decode"]  # no squeezed stub of a column
