"""Every ExecuTorch recipe beside ONNX Runtime's fp32 and int4, for builtin:tiny and a SmolLM2-135M-shaped
random model: export cost (each export in its own process) and every profile metric on this machine,
measured in one run; then the decode speed of ExecuTorch 8da4w over ONNX Runtime int4.

    .venv/bin/python bench/executorch_recipes.py [--models tiny,smollm] [--recipes fp32,fp16,8da4w,8da8w]
                                                 [--onnx-recipes fp32,int4] [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from onnx_recipes import COLUMNS, _fmt, export  # noqa: E402  (the same export helper and columns)

from edgekit.devices import load_profile  # noqa: E402
from edgekit.profile.session import Settings, profile  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm")
    ap.add_argument("--recipes", default="fp32,fp16,8da4w,8da8w", help="ExecuTorch recipes")
    ap.add_argument("--onnx-recipes", default="fp32,int4", help="ONNX rows to compare with")
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
    plan = [("onnx", r) for r in args.onnx_recipes.split(",") if r] + [("executorch", r) for r in args.recipes.split(",") if r]
    settings = Settings(runs=args.runs, threads=args.threads)
    rows = []
    for name in args.models.split(","):
        for target, recipe in plan:
            out = work / f"{name}-{target}-{recipe}"
            row = {"model": name, "target": target, "recipe": recipe, **export(models[name], target, recipe, out)}
            if "error" not in row:
                result = profile(out, load_profile("local"), settings).data
                row.update({k: v["value"] for k, v in result["metrics"].items()})
                row["delegated"] = json.loads((out / "edgekit.json").read_text())["runtime"].get("delegation", {}).get("share")
                if not result["complete"]:
                    row["error"] = result["error"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    ratios = {}
    for name in args.models.split(","):
        et = next((r for r in rows if r["model"] == name and r["target"] == "executorch" and r["recipe"].startswith("8da4w")), None)
        ort = next((r for r in rows if r["model"] == name and r["target"] == "onnx" and r["recipe"].startswith("int4")), None)
        if et and ort and et.get("decode_tok_s") and ort.get("decode_tok_s"):
            ratios[name] = round(et["decode_tok_s"] / ort["decode_tok_s"], 2)

    table = Table(title=f"ExecuTorch beside ONNX Runtime on this machine (P={settings.prompt_len}, G={settings.gen}, R={settings.runs})")
    for col in ("model", "target", "recipe"):
        table.add_column(col)
    columns = [*COLUMNS, ("delegated", "XNNPACK share")]
    for _, title in columns:
        table.add_column(title, justify="right")
    for r in rows:
        table.add_row(r["model"], r["target"], r["recipe"], *(_fmt(r.get(key)) for key, _ in columns))
    console = Console(width=None if sys.stdout.isatty() else 240)
    console.print(table)
    for name, ratio in ratios.items():
        console.print(f"{name}: decode tok/s, ExecuTorch 8da4w / ONNX Runtime int4 = {ratio}x")
    report = {"rows": rows, "decode_ratio_8da4w_over_onnx_int4": ratios}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
