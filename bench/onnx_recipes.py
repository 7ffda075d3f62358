"""Every ONNX recipe of builtin:tiny and of a SmolLM2-135M-shaped random model: export cost
(each export in its own process) and every profile metric on this machine, in one run.

    .venv/bin/python bench/onnx_recipes.py [--models tiny,smollm] [--recipes fp32,fp16,int8,int4]
                                           [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgekit.devices import load_profile
from edgekit.profile.session import Settings, profile

COLUMNS = [
    ("export_s", "export s"), ("export_rss_mb", "export RSS MiB"), ("file_mb", "MB"), ("parity", "parity"),
    ("load_s", "load s"), ("ttft_ms", "TTFT ms"), ("prefill_tok_s", "prefill tok/s"), ("decode_tok_s", "decode tok/s"),
    ("token_ms_p50", "p50 ms"), ("token_ms_p90", "p90 ms"), ("peak_rss_mb", "RSS MiB"), ("ppl", "ppl"),
    ("dppl_pct", "Δppl %"), ("top1_agree", "top-1"), ("kl_mean", "KL"),
]


def export(model: str, target: str, recipe: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "export", model, "-t", target, "-r", recipe, "-o", str(out), "--overwrite"],
        capture_output=True, text=True,
    )
    manifest = out / "edgekit.json"
    if not manifest.is_file():
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    m = json.loads(manifest.read_text())
    return {
        "recipe": m["recipe"]["name"], "export_s": m["export"]["wall_s"], "stages": m["export"]["stages"],
        "export_rss_mb": m["export"]["peak_rss_mb"], "parity": m["parity"]["passed"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--recipes", default="fp32,fp16,int8,int4")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None, help="keep artifacts here (default: a temp folder)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    models = {"tiny": "builtin:tiny"}
    if "smollm" in args.models.split(","):
        from edgekit.synthetic import SMOLLM_135M, make_model

        folder = work / "smollm-135m-random"
        if not (folder / "config.json").is_file():
            make_model("llama", folder, **SMOLLM_135M)
        models["smollm"] = str(folder)
    settings = Settings(runs=args.runs, threads=args.threads)
    rows = []
    for name in args.models.split(","):
        for recipe in args.recipes.split(","):
            out = work / f"{name}-{args.target}-{recipe}"
            row = {"model": name, "target": args.target, "recipe": recipe, **export(models[name], args.target, recipe, out)}
            if "error" not in row:
                result = profile(out, load_profile("local"), settings).data
                row.update({k: v["value"] for k, v in result["metrics"].items()})
                if not result["complete"]:
                    row["error"] = result["error"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    table = Table(title=f"{args.target} recipes on this machine (P={settings.prompt_len}, G={settings.gen}, R={settings.runs})")
    table.add_column("model")
    table.add_column("recipe")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for r in rows:
        table.add_row(r["model"], r["recipe"], *(_fmt(r.get(key)) for key, _ in COLUMNS))
    Console(width=240).print(table)
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


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
