"""`edgekit check`: exit 0 when every check passes, 1 when one fails (named in JUnit), 2 on a bad config."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgekit.check import load_check

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _failures(junit: Path) -> dict[str, str]:
    root = ET.parse(junit).getroot()
    return {case.get("name"): case.find("failure").get("message") for case in root.iter("testcase")
            if case.find("failure") is not None}


def test_check_passes_fails_on_a_threshold_and_on_a_baseline(cli, sweep_file, tmp_path, monkeypatch):
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    limits = "[thresholds]\nparity = true\ndppl_pct = { max = 50 }\nfile_mb = { max = 30 }\n"
    config = sweep_file(recipes=("int4",), extra=limits + "[thresholds.onnx]\ndecode_tok_s = { min = 1 }\n")
    junit, summary = tmp_path / "reports" / "junit.xml", tmp_path / "reports" / "summary.md"
    r = cli("check", config, "--junit", junit, "--summary", summary, "--html", tmp_path / "reports" / "r.html")
    assert r.code == 0, r.err
    assert "all 5 checks passed" in r.err
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "5" and root.get("failures") == "0"
    assert {c.get("name") for c in root.iter("testcase")} == {
        "completes", "parity", "dppl_pct <= 50", "file_mb <= 30", "decode_tok_s >= 1"}
    assert (summary.read_text().startswith("## edgekit check: passed")
            and "| onnx | int4-g64-mix1 | local | yes |" in summary.read_text())
    assert step_summary.read_text() == summary.read_text() + "\n"

    # an impossible threshold for this recipe only: the result is kept (nothing re-runs), the check fails
    config = sweep_file(recipes=("int4",), extra=limits + "[thresholds.\"onnx/int4\"]\ndecode_tok_s = { min = 1e9 }\n")
    r = cli("check", config, "--junit", junit, "--summary", summary)
    assert r.code == 1, r.err
    assert "0 measured, 1 kept" in r.err and "1 of 5 checks failed" in r.err and "decode_tok_s >= 1e+09" in r.out
    assert list(_failures(junit)) == ["decode_tok_s >= 1e+09"]
    assert "is below the minimum 1e+09 tok/s" in _failures(junit)["decode_tok_s >= 1e+09"]
    assert summary.read_text().startswith("## edgekit check: FAILED, 1 of 5 checks failed")
    assert step_summary.read_text().count("## edgekit check") == 2

    # a baseline 10x faster than this run: a regression beyond the tolerance
    baseline = tmp_path / "baseline.json"
    data = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    data["metrics"]["decode_tok_s"]["value"] *= 10
    baseline.write_text(json.dumps(data))
    extra = limits + (f"[baseline]\nresults = \"{baseline}\"\ntolerance_pct = 20\n"
                      "metrics = [\"decode_tok_s\", \"file_mb\"]\n")
    r = cli("check", sweep_file(recipes=("int4",), extra=extra), "--junit", junit)
    assert r.code == 1, r.err
    failures = _failures(junit)
    assert (list(failures) == ["decode_tok_s vs baseline"]
            and "-90.0%: worse by 90.0%, beyond the tolerance 20%" in failures["decode_tok_s vs baseline"])

    # a baseline scored on another evaluation text, far better: its accuracy is not compared, not a failure
    data["metrics"]["decode_tok_s"]["value"] /= 10
    data["metrics"]["dppl_pct"]["value"] -= 1000
    data["settings"]["eval_text_sha256"] = "0" * 64
    baseline.write_text(json.dumps(data))
    extra = limits + (f"[baseline]\nresults = \"{baseline}\"\ntolerance_pct = 20\n"
                      "metrics = [\"decode_tok_s\", \"dppl_pct\"]\n")
    r = cli("check", sweep_file(recipes=("int4",), extra=extra), "--junit", junit)
    assert r.code == 0, r.err
    skipped = {case.get("name"): case.find("skipped").get("message")
               for case in ET.parse(junit).getroot().iter("testcase")
               if case.find("skipped") is not None}
    assert skipped == {
        "dppl_pct vs baseline": "dppl_pct was scored on another evaluation text than the baseline's: not compared"}


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[thresholds]\ndecode_speed = { min = 1 }\n", "unknown metric 'decode_speed'"),
        ("[thresholds]\ndecode_tok_s = 5\n", "'decode_tok_s' must be a table such as { min = 1 }"),
        ("[thresholds]\ndecode_tok_s = { least = 5 }\n", "unknown key(s) least"),
        ("[thresholds.\"onnx/int8\"]\nfile_mb = { max = 1 }\n", "[onnx/int8] matches none of the recipes to check"),
        ("[thresholds]\nparity = 'yes'\n", "'parity' must be true or false"),
        ("[baseline]\ntolerance_pct = 5\n", "'results' (a result file or folder) is required"),
        ("[baseline]\nresults = 'nowhere'\n", "no such result file or folder"),
        ("[baseline]\nresults = 'b.json'\nmetrics = ['speed']\n", "unknown metric 'speed'"),
        ("[reports]\npdf = 'r.pdf'\n", "unknown key(s) pdf"),
        ("[thresholds]\nppl = { max = nan }\n", "'ppl' max must be a finite number"),
        ("[thresholds.onnx]\nkl_mean = { max = inf }\n", "'kl_mean' max must be a finite number"),
        ("[thresholds]\nfile_mb = { min = 10, max = 5 }\n", "'file_mb' min 10 is above its max 5: no value can pass"),
        ("[thresholds.onnx]\nfile_mb = { max = -1 }\n", "'file_mb' max -1 is below 0"),
        ("[thresholds]\ntop1_agree = { min = 1.5 }\n", "'top1_agree' min 1.5 is above 1"),
        ("[thresholds]\nppl = { max = 0.5 }\n", "'ppl' max 0.5 is below 1"),
        ("[thresholds]\ndppl_pct = { max = -200 }\n", "'dppl_pct' max -200 is below -100"),
        ("[reports]\nhtml = '.'\n", "it is a folder"),
        ("[reports]\njunit = 'sweep.toml/r.xml'\n", "is a file, not a folder"),
        ("[checks]\n", "unknown key(s) checks"),
    ],
)
def test_bad_check_config_is_one_line_and_exit_2(cli, sweep_file, tmp_path, extra, message):
    r = cli("check", sweep_file(recipes=("fp32",), extra=extra))
    assert r.code == 2 and message in r.err and r.err.strip().count("\n") == 0, r.err
    assert not (tmp_path / "results").exists()  # nothing ran


def test_missing_model_is_a_bad_config(cli, sweep_file, tmp_path):
    r = cli("check", sweep_file(models=(tmp_path / "no-such-model",)))
    assert r.code == 2 and "model not found" in r.err and r.err.strip().count("\n") == 0, r.err


def test_a_model_the_target_cannot_take_is_a_bad_config(cli, tmp_path):
    """Refused from its config before anything runs, in the target's words (the feature it lacks)."""
    model = tmp_path / "neox"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "gpt_neox"}')
    config = tmp_path / "edgekit.toml"
    config.write_text(f'models = ["{model}"]\noutput = "results"\n[recipes]\nexecutorch = ["fp32"]\n')
    r = cli("check", config)
    assert r.code == 2 and r.err.strip().count("\n") == 0, r.err
    assert "executorch: gpt_neox is not supported (parallel attention and MLP" in r.err, r.err
    assert not (tmp_path / "results").exists()


def test_examples_load():
    from edgekit.sweep import load_config

    check = load_check(EXAMPLES / "edgekit.toml")
    assert {r.target for r in check.sweep.recipes} == {"onnx", "executorch"}
    assert check.rules_for("onnx", "int4-g64-mix1").limits != check.rules_for("onnx", "fp32").limits
    assert set(check.reports) == {"junit", "summary", "html"}
    sweep, _ = load_config(EXAMPLES / "sweep.toml")
    assert len(sweep.combinations()) == 8
    import yaml

    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["check"]["steps"])
    assert "edgekit check edgekit.toml" in steps and "gh pr comment" in steps


def test_a_nan_or_missing_figure_fails_every_check_that_reads_it(make_result):
    from edgekit.check import Rules, Limit, against_baseline as on_results, evaluate as evaluate_results
    from edgekit.core.results import RunResult

    def evaluate(results, rules_for):
        return evaluate_results([RunResult.from_json(r) for r in results], rules_for)

    def against_baseline(results, baseline, *args):
        return on_results([RunResult.from_json(r) for r in results], [RunResult.from_json(r) for r in baseline], *args)

    nan = float("nan")
    result = make_result("int4", ppl=nan, top1_agree=nan, decode_tok_s=10.0)
    result["metrics"]["kl_mean"] = {"value": None, "unit": "nats"}
    rules = Rules(limits=(Limit("ppl", max=3), Limit("kl_mean", max=0.01), Limit("top1_agree", min=0.9),
                          Limit("dppl_pct", max=5)))
    verdicts = {v.name: v for v in evaluate([result], lambda target, recipe: rules)}
    for name in ("ppl <= 3", "kl_mean <= 0.01", "top1_agree >= 0.9", "dppl_pct <= 5"):
        assert verdicts[name].passed is False, verdicts[name]

    baseline = make_result("int4", ppl=2.0, top1_agree=0.95, decode_tok_s=10.0, file_mb=1.0)
    verdicts = {v.name: v
                for v in against_baseline([result], [baseline], 5.0, ("ppl", "top1_agree", "decode_tok_s", "file_mb"))}
    assert verdicts["ppl vs baseline"].passed is False and verdicts["top1_agree vs baseline"].passed is False
    assert verdicts["file_mb vs baseline"].passed is False and "not measured" in verdicts["file_mb vs baseline"].message
    assert verdicts["decode_tok_s vs baseline"].passed is True


def test_unwritable_report_options_are_refused_before_anything_runs(cli, sweep_file, tmp_path):
    (tmp_path / "folder").mkdir()
    for option in ("--html", "--junit", "--summary"):
        r = cli("check", sweep_file(recipes=("fp32",)), option, tmp_path / "folder")
        assert r.code == 2 and "it is a folder" in r.err and r.err.count("\n") == 1, r.err
    assert not (tmp_path / "results").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


def test_a_device_that_cannot_run_a_target_is_refused_before_any_work(cli, standin, tmp_path):
    """check asks the one capability check (edgekit.devices.refusal) and says its line, as sweep and profile do."""
    config = tmp_path / "edgekit.toml"
    config.write_text(f'models = ["builtin:tiny"]\ndevices = ["{standin}"]\noutput = "results"\ncache = "cache"\n'
                      '[recipes]\nexecutorch = ["fp32"]\n')
    r = cli("check", config)
    why = "device emu: push: runs onnx artifacts only, not executorch (ExecuTorch's Python runtime links libtorch"
    assert r.code == 2 and r.err.startswith(f"error: {config}: {why}") and r.err.count("\n") == 1, r.err
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()

    r = cli("sweep", config)  # the sweep goes on past it, recording the same line in the combination's result
    assert r.code == 1 and not (tmp_path / "cache").exists()
    [result] = (tmp_path / "results").glob("*.json")
    assert f"error: {config}: {json.loads(result.read_text())['error']}\n" == cli("check", config).err


def test_a_negative_dppl_limit_is_possible():
    from edgekit.check import _rule

    assert _rule("dppl_pct", {"max": -1}, "here")["dppl_pct"].max == -1  # an improvement may be asked for


def test_the_baseline_skips_what_was_measured_with_other_settings(make_result):
    from edgekit.check import against_baseline as on_results
    from edgekit.core.results import RunResult

    def against_baseline(results, baseline, *args):
        return on_results([RunResult.from_json(r) for r in results], [RunResult.from_json(r) for r in baseline], *args)

    def with_gen(gen, decode):
        r = make_result("int4", decode_tok_s=decode, ppl=2.0)
        r["settings"] = {"gen": gen, "prompt_len": 16, "eval_tokens": 200}
        return r

    verdicts = {v.name: v
                for v in against_baseline([with_gen(8, 50.0)], [with_gen(128, 500.0)], 5.0, ("decode_tok_s", "ppl"))}
    assert verdicts["decode_tok_s vs baseline"].passed is None
    assert "other settings than the baseline's (gen 128 vs 8)" in verdicts["decode_tok_s vs baseline"].message
    assert verdicts["ppl vs baseline"].passed is True  # G changes no accuracy figure


def test_check_and_sweep_print_json(cli, sweep_file):
    config = sweep_file(recipes=("fp32",), extra="[thresholds]\nfile_mb = { max = 1e-3 }\n")
    r = cli("check", config, "--json")
    assert r.code == 1, r.err
    data = json.loads(r.out)
    assert data["passed"] is False and [
        v["check"] for v in data["verdicts"] if v["passed"] is False] == ["file_mb <= 0.001"]
    assert (data["results"][0]["recipe"] == "fp32" and data["results"][0]["identity"]
            and "versions" in data["results"][0])
    r = cli("sweep", sweep_file(recipes=("fp32",)), "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [(c["recipe"], c["status"]) for c in data["combinations"]] == [("fp32", "kept")]
    assert data["results"][0]["complete"] is True


def test_an_all_nan_model_fails_its_accuracy_check(cli, sweep_file, nan_artifact, tmp_path):
    """It passed "all 3 checks" with top1_agree 1.00 (issue 30): NaN logits agree with nothing."""
    extra = "[thresholds]\nparity = false\ntop1_agree = { min = 0.9 }\ndecode_tok_s = { min = 1 }\n"
    config = sweep_file(recipes=("fp32",), models=(nan_artifact.parent / "model",), extra=extra)
    config.write_text("parity = false\n" + config.read_text())  # the sweep's own key, before any table
    junit = tmp_path / "junit.xml"
    r = cli("check", config, "--junit", junit)
    assert r.code == 1, r.err
    failures = _failures(junit)
    assert "top1_agree >= 0.9" in failures and "top1_agree 0" in failures["top1_agree >= 0.9"], failures


def test_a_report_that_cannot_be_written_is_kept(cli, sweep_file, tmp_path, full_disk):
    """A full disk under the reports: the verdicts stand, the report is kept in the temporary folder, and
    the check says where (exit 2); no empty report folder is left."""
    scratch = full_disk("s.md")
    config = sweep_file(recipes=("fp32",), extra="[reports]\nsummary = \"reports/s.md\"\n")
    r = cli("check", config)
    assert r.code == 2 and r.err.count("error:") == 1 and r.err.splitlines()[-1].startswith("error: "), r.err
    [kept] = scratch.glob("edgekit-*-s.md")
    assert "builtin:tiny" in kept.read_text()
    assert "checks passed, but cannot write" in r.err and "No space left on device" in r.err and str(kept) in r.err
    assert not (tmp_path / "reports").exists()


def test_a_result_that_cannot_be_written_never_passes_silently(cli, sweep_file, tmp_path, full_disk):
    """A full disk under the results: the check judges what was measured, then says the result is kept
    elsewhere (exit 2), never "all checks passed" with a result missing from the output folder."""
    scratch = full_disk("results")
    r = cli("check", sweep_file(recipes=("fp32",)))
    [kept] = scratch.glob("edgekit-*builtin-tiny__onnx-fp32__local.json")
    assert r.code == 2 and r.err.splitlines()[-1].startswith("error: all "), r.err
    assert "checks passed, but cannot write" in r.err and f"its result is in {kept} instead" in r.err
    assert not (tmp_path / "results").exists()
