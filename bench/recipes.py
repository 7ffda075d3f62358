"""Every recipe of every target that runs here, for builtin:tiny and the real SmolLM2-135M-Instruct
(builtin:smollm2-135m), profiled on `local` with the same settings, in one run. One table and one JSON.

Per row: export cost (each export in its own process; its peak RSS against the fp32 weights), file
size, parity, every profile metric, and two ratios:
- `vs q4_0`: decode (and prefill) tok/s over llama.cpp q4_0's, measured in the same run;
- `roofline`: decode tok/s over this machine's bound for it, the memory read bandwidth (measured here
  with the benchmark's thread count) divided by the bytes each decoded token must stream: the
  artifact's weights, less an embedding table that is only gathered from (a table that is also the
  output head counts).

All exports come first, then the profiles in interleaved rounds: each round profiles every row once
(one warm-up, one measured generation; accuracy in the first round only), and a row's latency
figures are the median over the rounds. A slow spell of the machine (a cloud VM's neighbours swing
tok/s by a quarter from one minute to the next here) then falls on every row alike instead of on
whichever rows were being measured, which is what the ratios between rows need.
Core ML is left out: its runtime needs macOS.

    .venv/bin/python bench/recipes.py [--models tiny,smollm2] [--onnx fp32,int8,int4] [--executorch 8da4w]
        [--gguf q4_0,q8_0] [--prompt-len 64] [--gen 128] [--runs 3] [--threads 2] [--work DIR [--reuse]]
        [--export-only] [--json out.json] [--markdown out.md]
    .venv/bin/python bench/recipes.py --from-json out.json [--markdown out.md]   # the tables again, measuring nothing

Exports take long and do not need an idle machine; the profiles do. `--work DIR --export-only` then
`--work DIR --reuse` splits the two (an artifact is kept in DIR under its recipe's canonical name, and
reused only if it is that recipe: one whose default changed since is exported again). The JSON keeps
every row's figures (the accuracy ones' standard errors as `KEY_se`, shown as ±; each round's decode
and prefill tok/s as `KEY_rounds`) and the command that measured them; `--from-json` renders a saved
report's table, markdown and closing lines again.

Closing lines, per target, on the real model (accuracy is measured on the shipped prose text against
the fp32 reference; llama.cpp's q8_0, q4_0 and q4_k_m, exported by edgekit and run by llama.cpp in
the same run, are the yardstick):
- int8 (ONNX `int8`, ExecuTorch `8da8w`, GGUF `q8_0`): dppl within +1 %: met/missed;
- default 4-bit (ONNX `int4`, ExecuTorch `8da4w`, GGUF `q4_0`): dppl <= q4_0's at <= 1.1x its size: met/missed;
  decode vs q4_0;
- calibrated 4-bit (HQQ, GPTQ, AWQ, imatrix recipes): dppl <= half of q4_0's at <= 1.1x its size;
- the best recipe on the size / dppl / decode front.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgekit import artifact, recipes
from edgekit.core.manifest import Manifest
from edgekit.core.results import SPECS
from edgekit.errors import EdgekitError
from edgekit.devices import load_profile
from edgekit.profile.metrics import LATENCY
from edgekit.profile.session import Settings, profile

RECIPES = {
    "onnx": "fp32,fp16,int8,int4,int4-g32,int4-imatrix,int4-g32-imatrix,int4-g32-gptq",
    "executorch": "fp32,fp16,int8,8da8w,8da4w,8da4w-emb4,8da4w-imatrix",
    "gguf": "fp32,fp16,q8_0,q4_0,q4_k_m,q4_0-imatrix,q4_k_m-imatrix",
}
# the metrics' headings come from the declared metrics (edgekit.core.results.SPECS), the others are this benchmark's
COLUMNS = [
    ("export_s", "export s"), ("export_rss_x", "export RSS / w"), ("file_mb", SPECS["file_mb"].heading),
    ("parity", "parity"),
    *((name, SPECS[name].heading) for name in ("ttft_ms", "prefill_tok_s", "decode_tok_s", "token_ms_p50",
                                               "peak_rss_mb",
                                               "dppl_pct", "top1_agree", "kl_mean")),
    ("decode_vs_q4_0", "decode vs q4_0"), ("prefill_vs_q4_0", "prefill vs q4_0"), ("roofline", "roofline"),
]


def export(model: str, target: str, recipe: str, canonical: str, out: Path, reuse: bool = False) -> dict:
    """Export unless ``reuse`` finds an artifact of this very recipe (``canonical``, its full name, so that
    a recipe whose default changed since is exported again) in ``out``."""
    manifest = out / "edgekit.json"
    m = artifact.load(out).manifest if reuse and manifest.is_file() else None
    if m is None or m.recipe_name != canonical:
        proc = subprocess.run(
            [sys.executable, "-m", "edgekit", "export", model, "-t", target, "-r", recipe, "-o", str(out),
             "--overwrite"],
            capture_output=True, text=True,
        )
        if proc.returncode not in (0, 1) or not manifest.is_file():  # 1: exported, parity failed
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        m = artifact.load(out).manifest
    return {
        "exported_as": m.recipe_name, "export_s": m.export["wall_s"], "stages": dict(m.stages),
        "export_rss_mb": m.export["peak_rss_mb"], "parity": m.parity_passed,
        "exporter": m.exporter, "delegated": m.runtime.get("delegation", {}).get("share"),
        "decode_mb": round(decode_bytes(out, m) / 1e6, 1),
    }


def decode_bytes(folder: Path, manifest: Manifest) -> int:
    """Bytes of weights one decoded token streams: all of them but an embedding table only gathered from."""
    target, model_file = manifest.target, folder / manifest.model_file
    if target == "onnx":
        import onnx

        graph = onnx.load(str(model_file), load_external_data=False).graph
        size = {i.name: _initializer_bytes(i) for i in graph.initializer}
        users: dict[str, set[str]] = {}
        for node in graph.node:
            for name in node.input:
                users.setdefault(name, set()).add(node.op_type)
        gathered = {  # tables read by a Gather of the token ids and by nothing else
            name for node in graph.node if node.op_type in ("Gather", "GatherBlockQuantized")
            for name in node.input if name in size and users[name] <= {"Gather", "GatherBlockQuantized"}
        }
        return sum(b for name, b in size.items() if name not in gathered)
    if target == "gguf":
        from gguf import GGUFReader

        tensors = {t.name: int(t.n_bytes) for t in GGUFReader(str(model_file)).tensors}
        tied = "output.weight" not in tensors  # the head reads token_embd
        return sum(b for name, b in tensors.items() if tied or name != "token_embd.weight")
    # ExecuTorch: the .pte holds a separate head; its embedding table is float unless -embB quantized it
    config = json.loads(Path(manifest.source_path, "config.json").read_text())
    bits = manifest.recipe.get("embedding_bits") or (16 if manifest.recipe["scheme"] == "fp16" else 32)
    return model_file.stat().st_size - config["vocab_size"] * config["hidden_size"] * bits // 8


def _initializer_bytes(init) -> int:
    for entry in init.external_data:
        if entry.key == "length":
            return int(entry.value)
    return len(init.raw_data)


def read_bandwidth_gbs(threads: int, gib: int = 1, repeats: int = 7) -> float:
    """Memory read bandwidth: the best of ``repeats`` sums of a ``gib`` GiB array split over ``threads``."""
    import numpy as np

    data = np.ones(gib << 28, dtype=np.float32)
    parts = np.array_split(data, threads)
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=np.sum, args=(p,)) for p in parts]  # numpy sums without the GIL
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, data.nbytes / (time.perf_counter() - t) / 1e9)
    return best


def _weights_mb(model: str) -> float:
    from edgekit.source import resolve

    return sum(p.stat().st_size for p in resolve(model).path.glob("*.safetensors")) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm2", help="tiny (builtin:tiny), smollm2 (builtin:smollm2-135m)")
    for target, names in RECIPES.items():
        ap.add_argument(f"--{target}", default=names, help=f"{target} recipes ('' for none)")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds of profiles")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="keep artifacts here (default: a temp folder)")
    ap.add_argument("--reuse", action="store_true", help="keep artifacts already exported in --work")
    ap.add_argument("--export-only", action="store_true",
                    help="export into --work and stop (profile later with --reuse)")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--markdown", type=Path,
                    help="also write the table and closing lines as markdown here (the README's)")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="measure nothing: print the table (and --markdown) of a report this script wrote with --json")
    args = ap.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        rows, closing = report["rows"], report["verdicts"]
        title = _title(report["settings"], report["read_bandwidth_gbs"])
        _print_table(rows, closing, title)
        if args.markdown:
            args.markdown.write_text(markdown(rows, closing, title) + "\n")
        return
    if args.export_only and not args.work:
        ap.error("--export-only needs --work")

    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    models = {"tiny": "builtin:tiny", "smollm2": "builtin:smollm2-135m"}
    unknown = set(args.models.split(",")) - set(models)
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}; known: {', '.join(models)}")
    try:  # each recipe with its canonical name, which names its folder in --work
        plan = [(t, r, recipes.parse(t, r).name) for t in RECIPES for r in getattr(args, t).split(",") if r]
    except EdgekitError as e:
        ap.error(str(e))

    rows = []
    for name in args.models.split(","):
        for target, recipe, canonical in plan:
            out = work / f"{name}-{target}-{canonical}"
            row = {"model": name, "target": target, "recipe": recipe, "artifact": str(out)}
            row.update(export(models[name], target, recipe, canonical, out, args.reuse))
            if "export_rss_mb" in row:
                row["export_rss_x"] = round(row["export_rss_mb"] / _weights_mb(models[name]), 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if args.export_only:
        return
    settings = Settings(prompt_len=args.prompt_len, gen=args.gen, runs=1, threads=args.threads)
    rounds: dict[int, list[dict]] = {}
    for i in range(args.runs):
        for n, row in enumerate(rows):
            if "error" in row:
                continue
            result = profile(Path(row["artifact"]), load_profile("local"),
                             settings if i == 0 else replace(settings, accuracy=False)).data
            if not result["complete"]:
                row["error"] = result["error"]
                continue
            values = {k: v["value"] for k, v in result["metrics"].items()}
            if i == 0:
                row.update(values)
                row.update({f"{k}_se": v["stderr"] for k, v in result["metrics"].items()
                            if v.get("stderr") is not None})
            rounds.setdefault(n, []).append({k: values.get(k) for k in LATENCY})
            print(json.dumps({**row, **rounds[n][-1], "round": i}), file=sys.stderr)  # this round's latency
    for n, samples in rounds.items():
        for k in LATENCY:
            got = [s[k] for s in samples if s[k] is not None]
            rows[n][k] = statistics.median(got) if got else None
        rows[n]["rounds"] = len(samples)
        # each round's decode and prefill, so that a reader sees the spread behind the median
        rows[n]["decode_tok_s_rounds"] = [s["decode_tok_s"] for s in samples]
        rows[n]["prefill_tok_s_rounds"] = [s["prefill_tok_s"] for s in samples]

    bandwidth = read_bandwidth_gbs(args.threads)
    for name in args.models.split(","):
        base = next((r for r in rows if r["model"] == name and r["target"] == "gguf"
                     and r["recipe"] == "q4_0" and r.get("decode_tok_s")), None)
        for r in rows:
            if r["model"] != name or not r.get("decode_tok_s"):
                continue
            r["roofline"] = round(r["decode_tok_s"] / (bandwidth * 1e9 / (r["decode_mb"] * 1e6)), 2)
            if base:
                r["decode_vs_q4_0"] = round(r["decode_tok_s"] / base["decode_tok_s"], 2)
                r["prefill_vs_q4_0"] = round(r["prefill_tok_s"] / base["prefill_tok_s"], 2)

    report_settings = {**vars(settings), "rounds": args.runs}
    title = _title(report_settings, bandwidth)
    closing = verdicts(rows)
    _print_table(rows, closing, title)
    report = {"command": " ".join(["bench/recipes.py", *sys.argv[1:]]), "settings": report_settings,
              "read_bandwidth_gbs": round(bandwidth, 2), "rows": rows, "verdicts": closing}
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(rows, closing, title) + "\n")


def _title(settings: dict, bandwidth: float) -> str:
    return (f"every recipe on this machine: P={settings['prompt_len']}, G={settings['gen']}, {settings['rounds']} "
            f"interleaved rounds, threads={settings['threads']}; read bandwidth {bandwidth:.1f} GB/s")


def _print_table(rows: list[dict], closing: list[dict], title: str) -> None:
    table = Table(title=title)
    for col in ("model", "target", "recipe"):
        table.add_column(col)
    for _, heading in COLUMNS:
        table.add_column(heading, justify="right")
    for r in rows:
        table.add_row(r["model"], r["target"], r["recipe"], *(_cell(r, key) for key, _ in COLUMNS))
    console = Console(width=None if sys.stdout.isatty() else 260)
    console.print(table)
    for r in rows:
        if r.get("error"):
            console.print(f"{r['model']} {r['target']} {r['recipe']}: {r['error']}", markup=False)
    for v in closing:
        console.print(v["line"], markup=False)


INT8 = {"onnx": "int8", "executorch": "8da8w", "gguf": "q8_0"}
DEFAULT_4BIT = {"onnx": "int4", "executorch": "8da4w", "gguf": "q4_0"}
CALIBRATED = ("hqq", "gptq", "awq", "imatrix")
FOUR_BIT = ("int4", "4w", "q4")


def verdicts(rows: list[dict], model: str = "smollm2") -> list[dict]:
    """Per target, on ``model``: the int8 recipe within +1 % ppl; the default 4-bit recipe against llama.cpp
    q4_0 (dppl no worse at no more than 1.1x its size, and decode); the best calibrated 4-bit recipe against
    half of q4_0's dppl; the best recipe on the size / dppl / decode front."""
    mine = [r for r in rows if r["model"] == model and r.get("dppl_pct") is not None]
    q4 = next((r for r in mine if r["target"] == "gguf" and r["recipe"] == "q4_0"), None)
    if q4 is None:
        return []
    q4_mb, q4_dppl = q4["file_mb"], q4["dppl_pct"]
    out = []

    def verdict(kind: str, r: dict, met: bool, rule: str) -> None:
        decode = r.get("decode_vs_q4_0")
        line = (f"{r['target']} {kind} {r['recipe']} on {model}: dppl {_fmt(r['dppl_pct'])}% "
                f"at {_fmt(r['file_mb'])} MB "
                f"(q4_0: {_fmt(q4_dppl)}% at {_fmt(q4_mb)} MB); {rule}: {'met' if met else 'missed'}; "
                f"decode vs q4_0: {_fmt(decode)}x")
        out.append({"target": r["target"], "kind": kind, "recipe": r["recipe"], "dppl_pct": r["dppl_pct"],
                    "file_mb": r["file_mb"], "decode_vs_q4_0": decode, "met": met, "line": line})

    for target in ("onnx", "executorch", "gguf"):
        of = [r for r in mine if r["target"] == target]
        r8 = next((r for r in of if r["recipe"] == INT8[target]), None)
        if r8:
            verdict("int8", r8, r8["dppl_pct"] <= 1.0, "dppl within +1%")
        r4 = next((r for r in of if r["recipe"] == DEFAULT_4BIT[target]), None)
        if r4 and target != "gguf":
            verdict("default 4-bit", r4, r4["dppl_pct"] <= q4_dppl and r4["file_mb"] <= 1.1 * q4_mb,
                    "dppl <= q4_0's at <= 1.1x its size")
        calibrated = [r for r in of if any(c in r["recipe"] for c in CALIBRATED)
                      and any(b in r["recipe"] for b in FOUR_BIT)
                      and r["file_mb"] <= 1.1 * q4_mb]
        if calibrated:
            best = min(calibrated, key=lambda r: r["dppl_pct"])
            verdict("calibrated 4-bit", best, best["dppl_pct"] <= q4_dppl / 2,
                    "dppl <= half of q4_0's at <= 1.1x its size")
        front = pareto(of)
        if front:
            names = ", ".join(f"{r['recipe']} ({_fmt(r['file_mb'])} MB, {_fmt(r['dppl_pct'])}%, "
                              f"{_fmt(r.get('decode_tok_s'))} tok/s)"
                              for r in front)
            out.append({"target": target, "kind": "front", "recipes": [r["recipe"] for r in front],
                        "line": f"{target} size / dppl / decode front on {model}: {names}"})
    return out


MARKDOWN = [("file_mb", "MB"), ("export_s", "export s"), ("parity", "parity"), ("dppl_pct", "dppl %"),
            ("top1_agree", "top-1"), ("kl_mean", "KL"), ("decode_tok_s", "decode tok/s"),
            ("prefill_tok_s", "prefill tok/s"), ("peak_rss_mb", "RSS MiB"), ("decode_vs_q4_0", "decode vs q4_0")]


def markdown(rows: list[dict], closing: list[dict], title: str) -> str:
    """The rows as the README's markdown table (model, target, recipe as exported, the MARKDOWN
    columns), then the closing lines."""
    head = ["model", "target", "recipe", *(h for _, h in MARKDOWN)]
    lines = [f"_{title}_", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["target"], f"`{r.get('exported_as') or r.get('recipe')}`",
                 *(_cell(r, k) for k, _ in MARKDOWN)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [""] + [f"- {v['line']}" for v in closing]
    return "\n".join(lines)


def recipe_figures(rows: list[dict], model: str = "smollm2") -> dict[tuple[str, str], str]:
    """What the README's recipe table says of each recipe measured on ``model``: (target, recipe as
    asked) -> "file MB, dppl ± its standard error"."""
    return {(r["target"], r["recipe"]): f"{_fmt(r['file_mb'])} MB, {_cell(r, 'dppl_pct')} %"
            for r in rows if r["model"] == model and r.get("file_mb") is not None and r.get("dppl_pct") is not None}


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on all of file size, dppl and decode speed."""
    def beats(a, b):
        ka = (a["file_mb"], a["dppl_pct"], -(a.get("decode_tok_s") or 0))
        kb = (b["file_mb"], b["dppl_pct"], -(b.get("decode_tok_s") or 0))
        return all(x <= y for x, y in zip(ka, kb)) and ka != kb

    return sorted((r for r in rows if not any(beats(o, r) for o in rows)), key=lambda r: r["file_mb"])


def _cell(row: dict, key: str) -> str:
    """The row's figure, with its standard error where the profile gave one (``KEY_se``)."""
    se = row.get(f"{key}_se")
    return _fmt(row.get(key)) if se is None or row.get(key) is None else f"{_fmt(row[key])} ± {_fmt(se)}"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "pass" if v else "FAIL"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


if __name__ == "__main__":
    main()
