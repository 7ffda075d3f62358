"""Export time, peak RSS, size and parity of every ONNX recipe, for builtin:tiny and a
SmolLM2-135M-shaped random model. Each export runs as its own `edgekit export` process.

    .venv/bin/python bench/export_times.py [--models tiny,smollm] [--recipes fp32,fp16,int8,int4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--recipes", default="fp32,fp16,int8,int4")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    models = {"tiny": "builtin:tiny"}
    if "smollm" in args.models.split(","):
        from edgekit.synthetic import SMOLLM_135M, make_model

        models["smollm"] = str(make_model("llama", work / "smollm-135m-random", **SMOLLM_135M))
    rows = []
    for name in args.models.split(","):
        for recipe in args.recipes.split(","):
            out = work / f"{name}-{args.target}-{recipe}"
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "edgekit", "export", models[name], "-t", args.target, "-r", recipe, "-o", str(out), "--json"],
                capture_output=True, text=True,
            )
            wall = time.perf_counter() - t
            row = {"model": name, "target": args.target, "recipe": recipe, "exit": proc.returncode, "process_s": round(wall, 1)}
            manifest_file = out / "edgekit.json"
            if manifest_file.is_file():
                m = json.loads(manifest_file.read_text())
                p = m["parity"]
                row.update(
                    recipe=m["recipe"]["name"],
                    export_s=m["export"]["wall_s"],
                    stages=m["export"]["stages"],
                    peak_rss_mb=m["export"]["peak_rss_mb"],
                    size_mb=round(sum(f["bytes"] for f in m["files"]) / 1e6, 2),
                    parity=p["passed"],
                    top1_agree=round(p["top1_agree"], 3),
                    kl_mean=p["kl_mean"],
                )
            else:
                row["error"] = proc.stderr.strip().splitlines()[-1:] 
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    table = Table(title=f"{args.target} export (each in its own process)")
    for c in ("model", "recipe", "export s", "process s", "peak RSS MB", "size MB", "parity", "top-1", "KL"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["model"], r["recipe"], str(r.get("export_s", "-")), str(r["process_s"]), str(r.get("peak_rss_mb", "-")),
            str(r.get("size_mb", "-")), str(r.get("parity", r.get("error"))), str(r.get("top1_agree", "-")),
            f"{r['kl_mean']:.2g}" if "kl_mean" in r else "-",
        )
    Console().print(table)
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
