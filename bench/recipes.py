"""Every recipe of every target, for builtin:tiny and a SmolLM2-135M-shaped random model, measured in
one run on this machine: export cost (each export in its own process; its peak RSS against the fp32
weights) and every profile metric. All exports come first, then all profiles back to back, so the
rows that are compared are measured close together. Ends with the decode speed of ExecuTorch 8da4w
over ONNX Runtime int4.

    .venv/bin/python bench/recipes.py [--models tiny,smollm] [--onnx fp32,fp16,int8,int4]
                                      [--executorch fp32,fp16,int8,8da4w,8da8w] [--runs 5] [--json out.json]
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
    ("export_s", "export s"), ("export_rss_mb", "export RSS MiB"), ("export_rss_x", "RSS / fp32 weights"),
    ("file_mb", "MB"), ("parity", "parity"), ("delegated", "XNNPACK share"),
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
    if proc.returncode not in (0, 1) or not manifest.is_file():  # 1: exported, parity failed
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    m = json.loads(manifest.read_text())
    return {
        "recipe": m["recipe"]["name"], "export_s": m["export"]["wall_s"], "stages": m["export"]["stages"],
        "export_rss_mb": m["export"]["peak_rss_mb"], "parity": m["parity"]["passed"],
        "delegated": m["runtime"].get("delegation", {}).get("share"),
    }


def _weights_mb(model: str) -> float:
    from edgekit.source import resolve

    return sum(p.stat().st_size for p in resolve(model).path.glob("*.safetensors")) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,smollm")
    ap.add_argument("--onnx", default="fp32,fp16,int8,int4", help="ONNX recipes ('' for none)")
    ap.add_argument("--executorch", default="fp32,fp16,int8,8da4w,8da8w", help="ExecuTorch recipes ('' for none)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None, help="keep artifacts here (default: a temp folder)")
    ap.add_argument("--json", type=Path, help="also write the report here")
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
    plan = [(t, r) for t, names in (("onnx", args.onnx), ("executorch", args.executorch)) for r in names.split(",") if r]

    rows = []
    for name in args.models.split(","):
        for target, recipe in plan:
            out = work / f"{name}-{target}-{recipe}"
            row = {"model": name, "target": target, "recipe": recipe, "artifact": str(out)}
            row.update(export(models[name], target, recipe, out))
            if "export_rss_mb" in row:
                row["export_rss_x"] = round(row["export_rss_mb"] / _weights_mb(models[name]), 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    settings = Settings(runs=args.runs, threads=args.threads)
    for row in rows:
        if "error" not in row:
            result = profile(Path(row["artifact"]), load_profile("local"), settings).data
            row.update({k: v["value"] for k, v in result["metrics"].items()})
            if not result["complete"]:
                row["error"] = result["error"]
            print(json.dumps(row), file=sys.stderr)

    ratios = {}
    for name in args.models.split(","):
        pick = lambda target, scheme: next(  # noqa: E731
            (r.get("decode_tok_s") for r in rows if r["model"] == name and r["target"] == target
             and r["recipe"].split("-")[0] == scheme), None)
        et, ort = pick("executorch", "8da4w"), pick("onnx", "int4")
        if et and ort:
            ratios[name] = round(et / ort, 2)

    table = Table(title=f"recipes on this machine (P={settings.prompt_len}, G={settings.gen}, R={settings.runs})")
    for col in ("model", "target", "recipe"):
        table.add_column(col)
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for r in rows:
        table.add_row(r["model"], r["target"], r["recipe"], *(_fmt(r.get(key)) for key, _ in COLUMNS))
    console = Console(width=None if sys.stdout.isatty() else 260)
    console.print(table)
    for r in rows:
        if r.get("error"):
            console.print(f"{r['model']} {r['target']} {r['recipe']}: {r['error']}", markup=False)
    for name, ratio in ratios.items():
        console.print(f"{name}: decode tok/s, ExecuTorch 8da4w / ONNX Runtime int4 = {ratio}x")
    report = {"settings": vars(settings), "rows": rows, "decode_ratio_8da4w_over_onnx_int4": ratios}
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


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
