"""Every recipe of every target that runs here, for builtin:tiny and a SmolLM2-135M-shaped random model,
profiled on `local` with the same settings, in one run. One table and one JSON.

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
whichever rows were being measured, which is what the ratios between rows need. Core ML is left out: its runtime needs macOS.

    .venv/bin/python bench/recipes.py [--models tiny,smollm] [--onnx fp32,int8,int4] [--executorch 8da4w]
        [--gguf q4_0,q8_0] [--prompt-len 64] [--gen 128] [--runs 3] [--threads 2] [--work DIR [--reuse]]
        [--export-only] [--json out.json]

Exports take long and do not need an idle machine; the profiles do. `--work DIR --export-only` then
`--work DIR --reuse` splits the two.
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

from edgekit.devices import load_profile
from edgekit.profile.metrics import LATENCY
from edgekit.profile.session import Settings, profile

RECIPES = {
    "onnx": "fp32,fp16,int8,int4,int4-g64,int4-g128",
    "executorch": "fp32,fp16,int8,8da4w,8da8w",
    "gguf": "fp32,fp16,q8_0,q4_0,q4_k_m",
}
COLUMNS = [
    ("export_s", "export s"), ("export_rss_x", "export RSS / w"), ("file_mb", "MB"), ("parity", "parity"),
    ("ttft_ms", "TTFT ms"), ("prefill_tok_s", "prefill tok/s"), ("decode_tok_s", "decode tok/s"),
    ("token_ms_p50", "p50 ms"), ("peak_rss_mb", "RSS MiB"), ("dppl_pct", "Δppl %"), ("top1_agree", "top-1"),
    ("decode_vs_q4_0", "decode vs q4_0"), ("prefill_vs_q4_0", "prefill vs q4_0"), ("roofline", "roofline"),
]


def export(model: str, target: str, recipe: str, out: Path, reuse: bool = False) -> dict:
    manifest = out / "edgekit.json"
    if not (reuse and manifest.is_file()):
        proc = subprocess.run(
            [sys.executable, "-m", "edgekit", "export", model, "-t", target, "-r", recipe, "-o", str(out), "--overwrite"],
            capture_output=True, text=True,
        )
        if proc.returncode not in (0, 1) or not manifest.is_file():  # 1: exported, parity failed
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    m = json.loads(manifest.read_text())
    return {
        "recipe": m["recipe"]["name"], "export_s": m["export"]["wall_s"], "stages": m["export"]["stages"],
        "export_rss_mb": m["export"]["peak_rss_mb"], "parity": m["parity"]["passed"],
        "exporter": m["runtime"].get("exporter"), "delegated": m["runtime"].get("delegation", {}).get("share"),
        "decode_mb": round(decode_bytes(out, m) / 1e6, 1),
    }


def decode_bytes(folder: Path, manifest: dict) -> int:
    """Bytes of weights one decoded token streams: all of them but an embedding table only gathered from."""
    target, model_file = manifest["target"], folder / manifest["runtime"]["model_file"]
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
    config = json.loads(Path(manifest["source"]["path"], "config.json").read_text())
    bits = manifest["recipe"].get("embedding_bits") or (16 if manifest["recipe"]["scheme"] == "fp16" else 32)
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
    ap.add_argument("--models", default="tiny,smollm")
    for target, names in RECIPES.items():
        ap.add_argument(f"--{target}", default=names, help=f"{target} recipes ('' for none)")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds of profiles")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="keep artifacts here (default: a temp folder)")
    ap.add_argument("--reuse", action="store_true", help="keep artifacts already exported in --work")
    ap.add_argument("--export-only", action="store_true", help="export into --work and stop (profile later with --reuse)")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    if args.export_only and not args.work:
        ap.error("--export-only needs --work")

    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    models = {"tiny": "builtin:tiny"}
    if "smollm" in args.models.split(","):
        from edgekit.synthetic import SMOLLM_135M, make_model

        folder = work / "smollm-135m-random"
        if not (folder / "config.json").is_file():
            make_model("llama", folder, **SMOLLM_135M)
        models["smollm"] = str(folder)
    plan = [(t, r) for t in RECIPES for r in getattr(args, t).split(",") if r]

    rows = []
    for name in args.models.split(","):
        for target, recipe in plan:
            out = work / f"{name}-{target}-{recipe}"
            row = {"model": name, "target": target, "recipe": recipe, "artifact": str(out)}
            row.update(export(models[name], target, recipe, out, args.reuse))
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
            rounds.setdefault(n, []).append({k: values.get(k) for k in LATENCY})
            print(json.dumps({**row, "round": i}), file=sys.stderr)
    for n, samples in rounds.items():
        for k in LATENCY:
            got = [s[k] for s in samples if s[k] is not None]
            rows[n][k] = statistics.median(got) if got else None
        rows[n]["rounds"] = len(samples)

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

    title = (f"every recipe on this machine: P={settings.prompt_len}, G={settings.gen}, {args.runs} interleaved rounds, "
             f"threads={settings.threads}; read bandwidth {bandwidth:.1f} GB/s")
    table = Table(title=title)
    for col in ("model", "target", "recipe"):
        table.add_column(col)
    for _, heading in COLUMNS:
        table.add_column(heading, justify="right")
    for r in rows:
        table.add_row(r["model"], r["target"], r["recipe"], *(_fmt(r.get(key)) for key, _ in COLUMNS))
    console = Console(width=None if sys.stdout.isatty() else 260)
    console.print(table)
    for r in rows:
        if r.get("error"):
            console.print(f"{r['model']} {r['target']} {r['recipe']}: {r['error']}", markup=False)
    verdicts = best_4bit(rows)
    for v in verdicts:
        console.print(v["line"], markup=False)
    report = {"settings": {**vars(settings), "rounds": args.runs}, "read_bandwidth_gbs": round(bandwidth, 2), "rows": rows,
              "best_4bit": verdicts}
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


FOUR_BIT = ("int4", "8da4w", "q4")


def best_4bit(rows: list[dict], model: str = "smollm", accuracy_model: str = "tiny") -> list[dict]:
    """For ONNX and ExecuTorch, the 4-bit recipe that decodes fastest on ``model``, against llama.cpp
    q4_0: decode and prefill ratios there, and dppl on ``accuracy_model`` (random weights say nothing
    of accuracy) against q4_0's."""
    def find(m, target, recipe):
        return next((r for r in rows if r["model"] == m and r["target"] == target and r["recipe"] == recipe), {})

    q4_dppl = find(accuracy_model, "gguf", "q4_0").get("dppl_pct")
    out = []
    for target in ("onnx", "executorch"):
        timed = [r for r in rows if r["model"] == model and r["target"] == target and r.get("decode_vs_q4_0")
                 and any(k in r["recipe"] for k in FOUR_BIT)]
        if not timed:
            continue
        best = max(timed, key=lambda r: r["decode_vs_q4_0"])
        dppl = find(accuracy_model, target, best["recipe"]).get("dppl_pct")
        met = (best["decode_vs_q4_0"] >= 1.0 and best["prefill_vs_q4_0"] >= 1.0
               and dppl is not None and q4_dppl is not None and abs(dppl) <= abs(q4_dppl))
        line = (f"{target} best 4-bit on {model}: {best['recipe']}: decode {best['decode_vs_q4_0']}x, prefill "
                f"{best['prefill_vs_q4_0']}x llama.cpp q4_0; dppl on {accuracy_model} {_fmt(dppl)}% against q4_0's "
                f"{_fmt(q4_dppl)}%: {'meets' if met else 'misses'} the target")
        out.append({"target": target, "recipe": best["recipe"], "decode_vs_q4_0": best["decode_vs_q4_0"],
                    "prefill_vs_q4_0": best["prefill_vs_q4_0"], "dppl_pct": dppl, "q4_0_dppl_pct": q4_dppl,
                    "met": met, "line": line})
    return out


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
