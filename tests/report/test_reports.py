"""`edgekit compare`: every metric side by side; regressions beyond the tolerance flagged."""

from __future__ import annotations

import json


def test_compare_flags_regressions_by_direction(cli, tmp_path, make_result, write_results):
    base = write_results(tmp_path / "base", make_result("int4", decode_tok_s=100.0, peak_rss_mb=50.0, ppl=2.0),
                         make_result("fp32", decode_tok_s=50.0))
    new = write_results(tmp_path / "new", make_result("int4", decode_tok_s=90.0, peak_rss_mb=49.0, ppl=2.05),
                        make_result("int8", decode_tok_s=70.0))
    r = cli("compare", base, new, "--tolerance", "5", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    by_metric = {c["metric"]: c for c in data["changes"]}
    assert by_metric["decode_tok_s"]["regression"] is True  # 10% slower, higher is better
    assert round(by_metric["decode_tok_s"]["change_pct"]) == -10
    assert by_metric["peak_rss_mb"]["regression"] is False  # less memory is better
    assert by_metric["ppl"]["regression"] is False  # +2.5% is within 5%
    assert data["only_in_base"] == [["builtin:tiny", "onnx", "fp32", "local"]]
    assert data["only_in_new"] == [["builtin:tiny", "onnx", "int8", "local"]]

    r = cli("compare", base / "0.json", new / "0.json")
    assert r.code == 0 and "REGRESSION" in r.out and "1 regression(s)" in r.err


def test_compare_leaves_out_accuracy_scored_on_another_text(cli, tmp_path, make_result, write_results):
    def on(sha, ppl, decode):
        r = make_result("int4", decode_tok_s=decode, ppl=ppl, kl_mean=0.1)
        r["settings"] = {"eval_text_name": "x.txt", "eval_text_sha256": sha}
        return r

    base = write_results(tmp_path / "base", on("a" * 64, 2.0, 100.0))
    new = write_results(tmp_path / "new", on("b" * 64, 20.0, 100.0))
    r = cli("compare", base, new, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [c["metric"] for c in data["changes"]] == ["decode_tok_s"]
    assert sorted(m for *_, m in data["other_eval_text_not_compared"]) == ["kl_mean", "ppl"]
    r = cli("compare", base, new)
    assert r.code == 0 and "not compared, scored on different evaluation texts" in r.err and "0 regression(s)" in r.err

    same = write_results(tmp_path / "same", on("a" * 64, 20.0, 100.0))  # the same text: compared, a regression
    data = json.loads(cli("compare", base, same, "--json").out)
    assert {c["metric"]: c["regression"] for c in data["changes"]}["ppl"] is True


def test_compare_bad_input(cli, tmp_path):
    r = cli("compare", tmp_path / "nope.json", tmp_path / "nope2.json")
    assert r.code == 2 and "no such result file" in r.err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = cli("compare", bad, bad)
    assert r.code == 2 and "not a readable JSON file" in r.err and r.err.count("\n") == 1


def test_report_formats(cli, tmp_path, make_result, write_results):
    folder = write_results(tmp_path / "res", make_result("int4", decode_tok_s=100.0, ppl=2.0),
                           make_result("fp32", decode_tok_s=50.0))
    r = cli("report", folder)
    assert r.code == 0 and "int4" in r.out and "fp32" in r.out
    md = cli("report", folder, "--format", "md").out
    assert (md.startswith("| model | target | recipe | device |")
            and "| builtin:tiny | onnx | int4 | local | yes | passed |  | 100 |" in md)
    out = tmp_path / "r.csv"
    assert cli("report", folder, "-f", "csv", "-o", out).code == 0
    assert out.read_text().splitlines()[0].startswith(
        "model,target,recipe,device,complete,parity,settings,decode_tok_s")
    rows = json.loads(cli("report", folder, "-f", "json").out)
    assert {r["recipe"] for r in rows} == {"int4", "fp32"}


def test_tables_show_accuracy_with_its_error(cli, tmp_path, make_result, write_results):
    from edgekit.profile.metrics import metric

    r = make_result("int4", decode_tok_s=100.0)
    r["metrics"]["dppl_pct"] = metric("dppl_pct", [6.93], 1.2)
    r["metrics"]["ppl"] = metric("ppl", [12.5], 0.31)
    # an older result: no error
    folder = write_results(tmp_path / "res", r, make_result("fp32", decode_tok_s=50.0, ppl=2.0))
    md = cli("report", folder, "-f", "md").out
    assert "| 12.50 ± 0.31 | 6.93 ± 1.20 |" in md and "| 2.00 |" in md
    assert "6.93 ± 1.20" in cli("report", folder).out
    csv_rows = cli("report", folder, "-f", "csv").out.splitlines()
    assert ",ppl,ppl_stderr,dppl_pct,dppl_pct_stderr," in csv_rows[0]
    rows = {x["recipe"]: x for x in json.loads(cli("report", folder, "-f", "json").out)}
    assert rows["int4"]["dppl_pct_stderr"] == 1.2 and rows["fp32"]["ppl_stderr"] is None
    r = cli("report", folder, "-f", "pdf")
    assert r.code == 2 and "unknown format 'pdf'" in r.err


def test_damaged_result_files_are_one_line(cli, tmp_path, make_result):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_result("int4", decode_tok_s=10.0)))
    for name, change in (
        ("metric-not-object", lambda r: r["metrics"].update(ppl=3)),
        ("value-text", lambda r: r["metrics"]["decode_tok_s"].update(value="fast")),
        ("no-device", lambda r: r.pop("device")),
        ("metrics-list", lambda r: r.update(metrics=[])),
        ("recipe-number", lambda r: r["artifact"].update(recipe=4)),
    ):
        result = make_result("int4", decode_tok_s=10.0)
        change(result)
        bad = tmp_path / f"{name}.json"
        bad.write_text(json.dumps(result))
        for args in (("report", bad), ("report", bad, "-f", "html"), ("compare", good, bad), ("compare", bad, good)):
            r = cli(*args)
            assert (r.code == 2 and "is a damaged edgekit result" in r.err
                    and r.err.count("\n") == 1), (name, args, r.err)


def test_compare_says_when_settings_differ_and_never_calls_it_a_regression(cli, tmp_path, make_result, write_results):
    def at(tokens, dppl):
        r = make_result("int4", decode_tok_s=100.0, dppl_pct=dppl)
        r["settings"] = {"eval_tokens": tokens, "prompt_len": 128, "gen": 128, "threads": 4}
        r["artifact"]["exporter"] = "genai"
        return r

    base = write_results(tmp_path / "base", at(2048, 6.93))
    new = write_results(tmp_path / "new", at(512, 11.82))
    r = cli("compare", base, new)
    assert r.code == 0, r.err
    assert "SETTINGS DIFFER: builtin:tiny / onnx / int4 / local: eval_tokens 2048 vs 512" in r.err
    assert "settings differ" in r.out and "REGRESSION" not in r.out and "0 regression(s)" in r.err
    data = json.loads(cli("compare", base, new, "--json").out)
    by_metric = {c["metric"]: c for c in data["changes"]}
    assert (by_metric["dppl_pct"]["settings_differ"] == ["eval_tokens 2048 vs 512"]
            and not by_metric["dppl_pct"]["regression"])
    assert by_metric["decode_tok_s"]["settings_differ"] == []  # the tokens scored change no latency
    assert data["settings_differ"] == [{"key": ["builtin:tiny", "onnx", "int4", "local"],
                                        "differences": ["eval_tokens 2048 vs 512"]}]


def test_a_regression_must_exceed_the_measured_noise_too(cli, tmp_path, make_result, write_results):
    from edgekit.profile.metrics import metric

    def runs(*decode, dppl=(5.0, None)):
        r = make_result("int4")
        r["metrics"]["decode_tok_s"] = metric("decode_tok_s", list(decode))
        r["metrics"]["dppl_pct"] = metric("dppl_pct", [dppl[0]], dppl[1])
        return r

    # 10% slower, but the runs scatter by more than that: within the noise; dppl 5 -> 8 with ±2 each: noise too
    noisy = cli("compare", write_results(tmp_path / "a", runs(157, 201, 174, 197)),
                write_results(tmp_path / "b", runs(140, 190, 160, 170, dppl=(8.0, 2.0))), "--json")
    changes = {c["metric"]: c for c in json.loads(noisy.out)["changes"]}
    assert not changes["decode_tok_s"]["regression"] and "within the noise" in changes["decode_tok_s"]["verdict"]
    assert changes["decode_tok_s"]["noise_pct"] > 10
    assert not changes["dppl_pct"]["regression"] and "within the noise" in changes["dppl_pct"]["verdict"]
    # the same slowdown over tight runs: a regression, beyond both
    tight = cli("compare", write_results(tmp_path / "c", runs(200, 201, 199, 200)),
                write_results(tmp_path / "d", runs(180, 181, 179, 180)))
    assert "REGRESSION" in tight.out and "1 regression(s) beyond 5% and the noise" in tight.err
    assert "within the noise" in cli("compare", tmp_path / "a", tmp_path / "b").out


def test_an_older_result_s_token_count_is_read_as_the_tokens_scored(make_result):
    from edgekit.profile.metrics import metric
    from edgekit.core.results import RunResult
    from edgekit.profile.settings import differences as on_results

    def differences(a, b, *metric):
        return on_results(RunResult.from_json(a), RunResult.from_json(b), *metric)

    old = make_result("int4", ppl=2.0)
    old["settings"] = {"eval_tokens": 2049}  # written before eval_tokens was exact: the tokens read
    new = make_result("int4")
    new["metrics"]["ppl"] = metric("ppl", [2.0], 0.1, tokens=2048)
    new["settings"] = {"eval_tokens": 2048}
    assert differences(old, new) == []
    # its peak_rss_mb covered the accuracy pass: never compared as if it were the generation's peak
    old["metrics"]["peak_rss_mb"] = metric("peak_rss_mb", [621.0])
    new["metrics"]["peak_rss_mb"] = metric("peak_rss_mb", [292.0])
    new["metrics"]["eval_peak_rss_mb"] = metric("eval_peak_rss_mb", [621.0])
    assert differences(new, old, "peak_rss_mb") == [
        "peak_rss_mb covers generation vs the accuracy pass too (older result)"]
    assert differences(new, old, "decode_tok_s") == []


def test_compare_keeps_two_results_that_differ_only_in_their_settings(cli, tmp_path, make_result, write_results):
    def at(threads, decode):
        r = make_result("int4", decode_tok_s=decode)
        r["settings"] = {"threads": threads, "prompt_len": 128, "gen": 128}
        return r

    base = write_results(tmp_path / "base", at(1, 100.0), at(4, 300.0))
    new = write_results(tmp_path / "new", at(1, 99.0), at(4, 200.0))
    data = json.loads(cli("compare", base, new, "--json").out)
    by_settings = {c["settings"]: c for c in data["changes"] if c["metric"] == "decode_tok_s"}
    assert set(by_settings) == {"P128 G128 t1", "P128 G128 t4"}
    assert not by_settings["P128 G128 t1"]["regression"] and by_settings["P128 G128 t4"]["regression"]

    twice = write_results(tmp_path / "twice", at(1, 100.0), at(1, 50.0))  # measured alike: said, never silently one
    r = cli("compare", twice, new)
    assert r.code == 0 and "TWO RESULTS MEASURED ALIKE in base" in r.err, r.err


def test_csv_and_json_rows_carry_the_environment(cli, tmp_path, make_result, write_results):
    r = make_result("int4", decode_tok_s=100.0)
    r["environment"] = {"host": {"os": "Linux", "edgekit": "0.1"}, "python": "3.11", "os": "Linux 6",
                        "machine": "aarch64", "cpu": "Cortex-A76", "cpu_count": 4, "onnxruntime": "1.31.1",
                        "threads": 4}
    folder = write_results(tmp_path / "res", r)
    row = json.loads(cli("report", folder, "--json").out)[0]
    assert (row["machine"], row["cpu"], row["threads"], row["versions"]) == (
        "aarch64", "Cortex-A76", 4, "onnxruntime 1.31.1 python 3.11")
    header = cli("report", folder, "-f", "csv").out.splitlines()[0].split(",")
    assert {"os", "machine", "cpu", "versions", "edgekit", "identity"} <= set(header)
    assert "Cortex-A76" not in cli("report", folder, "-f", "md").out  # the tables have no room for it


def test_the_results_table_narrows_on_a_terminal_as_its_fields_declare(cli, tmp_path, make_result, write_results,
                                                                       monkeypatch):
    from rich.console import Console

    from edgekit import output

    from edgekit.report.fields import COLUMNS

    monkeypatch.setattr(output, "out", Console(force_terminal=True, width=150, highlight=False, emoji=False))
    r = make_result("int4", **{name: 123.25 for name in COLUMNS})
    out = cli("report", write_results(tmp_path / "res", r)).out
    title = " ".join(out[:out.index("--json has all")].split())
    # the columns that say nothing first (no settings, a quiet machine), then the least needed
    assert ("left out for this terminal's width: settings, machine_load, token_ms_p90, token_ms_p50, load_s,"
            in title), out
    assert "decode_tok_s" not in title and "builtin:tiny" in out


def test_markdown_escapes_its_cells_as_the_check_summary_does(cli, tmp_path, make_result, write_results):
    r = make_result("int4", decode_tok_s=100.0)
    r["artifact"]["model"] = "models/a|b"
    md = cli("report", write_results(tmp_path / "res", r), "-f", "md").out
    assert "| models/a\\|b | onnx | int4 |" in md
    summary = cli("report", tmp_path / "res", "-f", "summary").out
    assert summary.startswith("## edgekit check: passed") and "| models/a\\|b | onnx | int4 |" in summary


def test_compare_two_results_of_different_artifacts_side_by_side(cli, tmp_path, make_result, write_results):
    """Two results of another recipe and target: every metric side by side with its uncertainty, what
    differs said, never a regression (that is only called in one artifact's history)."""
    from edgekit.profile.metrics import metric

    a = make_result("q4_0", target="gguf", decode_tok_s=200.0, ppl=40.0)
    b = make_result("int4", decode_tok_s=100.0, ppl=39.0)
    a["metrics"]["dppl_pct"] = metric("dppl_pct", [18.8], 2.16)
    b["metrics"]["dppl_pct"] = metric("dppl_pct", [17.6], 2.10)
    base, new = write_results(tmp_path / "a", a), write_results(tmp_path / "b", b)
    r = cli("compare", base / "0.json", new / "0.json", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    changes = {c["metric"]: c for c in data["changes"]}
    assert set(changes) == {"decode_tok_s", "ppl", "dppl_pct"} and not any(c["regression"] for c in changes.values())
    assert changes["decode_tok_s"]["target"] == "gguf -> onnx" and changes["decode_tok_s"]["across"] == ["target",
                                                                                                       "recipe"]
    assert changes["dppl_pct"]["base_se"] == 2.16 and data["only_in_base"] == data["only_in_new"] == []
    r = cli("compare", base / "0.json", new / "0.json")
    assert r.code == 0 and "18.80 ± 2.16" in r.out and "another target, recipe" in r.out
    assert "3 metrics compared (3 across artifacts, never regressions)" in r.err and "REGRESSION" not in r.out


def test_every_table_of_accuracy_on_a_dequantized_source_says_so(cli, tmp_path, make_result, write_results):
    """A model from a quantized GGUF is measured against that GGUF dequantized: the terminal table's
    title, the markdown and the HTML say so; a plain model's tables say nothing of it."""
    from edgekit.core.manifest import gguf_reference

    ref = gguf_reference({"gguf": {"file": "m.Q4_1.gguf", "file_type": "MOSTLY_Q4_1", "quantized": True}})
    assert ref == "m.Q4_1.gguf dequantized (Q4_1)" and gguf_reference({"model": "x"}) is None
    r = make_result("q4_0", target="gguf", dppl_pct=18.8)
    r["artifact"]["reference"] = ref
    folder = write_results(tmp_path / "a", r)
    for args in (("report", folder), ("report", folder, "-f", "md"), ("report", folder, "-f", "html")):
        out = cli(*args)
        assert out.code == 0 and "m.Q4_1.gguf dequantized (Q4_1)" in out.out.replace("\n", " "), args
    plain = cli("report", write_results(tmp_path / "b", make_result("int4", dppl_pct=1.0)), "-f", "md")
    assert "dequantized" not in plain.out


def test_a_result_measured_on_a_busy_machine_says_so_everywhere(cli, tmp_path, make_result, write_results,
                                                                monkeypatch):
    """Other processes took 48 % of the CPUs during the runs: the result is 'busy', and the report's
    table and HTML, compare and a check's speed verdict say it beside the figure."""
    from edgekit.check import Limit, Rules, evaluate

    monkeypatch.setenv("EDGEKIT_BUSY_SHARE", "0.2")  # (the default; the tests' own machine is never busy)
    from edgekit.core.results import RunResult

    busy = make_result("int4", decode_tok_s=52.0, file_mb=2.0)
    busy["environment"] = {"threads": 2, "threads_from": "2 physical core(s), 1 CPU(s) idle",
                           "load": {"cpus": 2, "loadavg_1m": [4.1, 5.2], "others_share": 0.48, "cpu_mhz": 2600.0}}
    quiet = make_result("int4", decode_tok_s=190.0)
    quiet["environment"] = {"threads": 2, "load": {"cpus": 2, "loadavg_1m": [0.2, 0.3], "others_share": 0.03}}
    folder = write_results(tmp_path / "busy", busy)
    r = cli("report", folder)
    assert "busy 48%" in r.out and "warning: builtin:tiny / onnx / int4 / local: the machine was busy" in r.err
    assert "other processes took 48% of its 2 CPU(s) during the runs (load 5.2)" in r.err
    assert "class=warn>warning:" in cli("report", folder, "-f", "html").out
    rows = json.loads(cli("report", folder, "-f", "json").out)
    assert rows[0]["others_share"] == 0.48 and rows[0]["threads"] == 2 and rows[0]["loadavg_1m"] == 5.2
    quiet_folder = write_results(tmp_path / "quiet", quiet)
    r = cli("report", quiet_folder)
    assert "busy" not in r.out and "warning" not in r.err
    r = cli("compare", quiet_folder, folder)
    assert "BUSY MACHINE: builtin:tiny / onnx / int4 / local (new): the machine was busy" in r.err
    rules = Rules(limits=(Limit("decode_tok_s", min=100.0), Limit("file_mb", max=5.0)))
    verdicts = {v.name: v for v in evaluate([RunResult.from_json(busy)], lambda t, rc: rules)}
    assert "the machine was busy" in verdicts["decode_tok_s >= 100"].message  # a speed figure
    assert "busy" not in verdicts["file_mb <= 5"].message  # not a size


def test_a_bad_busy_share_is_one_line(cli, tmp_path, make_result, write_results, monkeypatch):
    r = make_result("int4", decode_tok_s=52.0)
    r["environment"] = {"load": {"cpus": 2, "others_share": 0.5}}
    folder = write_results(tmp_path / "r", r)
    for bad in ("lots", "nan", "2"):
        monkeypatch.setenv("EDGEKIT_BUSY_SHARE", bad)
        out = cli("report", folder)
        assert out.code == 2 and out.err.startswith("error: $EDGEKIT_BUSY_SHARE must be a number from 0 to 1"), out.err
