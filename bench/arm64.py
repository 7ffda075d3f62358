"""builtin:tiny's ONNX recipes scored on this host and on the emulated arm64 board (`arm64-emulated`,
qemu user mode, ONNX Runtime's aarch64 kernels): the README's ARM accuracy table, regenerated.

    .venv/bin/python bench/arm64.py [--recipes fp32,int8,int4] [--work DIR] [--markdown FILE]

Accuracy only (the shipped evaluation text, 2,048 tokens): emulated timings are qemu's, not a board's.
The userland is set up first if it is not there (`edgekit devices setup arm64-emulated`, ~53 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DEVICES = ("local", "arm64-emulated")
COLUMNS = ("ppl", "dppl_pct", "top1_agree", "kl_mean")


def edgekit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True)


def markdown(rows: list[tuple[str, str, dict]]) -> str:
    """(recipe as exported, device, its COLUMNS) rows as the README's table."""
    lines = ["| recipe | device | ppl | dppl_pct | top1_agree | kl_mean |", "|---|---|---|---|---|---|"]
    for name, where, m in rows:
        lines.append(f"| {name} | {where} | {m['ppl']:.4f} | {m['dppl_pct']:+.3f} | {m['top1_agree']:.4f} | "
                     f"{m['kl_mean']:.5f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default="fp32,int8,int4")
    ap.add_argument("--work", type=Path, default=None, help="keep the artifacts here (default: a temp folder)")
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-arm64-"))
    setup = edgekit("devices", "setup", "arm64-emulated")
    if setup.returncode != 0:
        sys.exit(f"arm64-emulated cannot be set up: {setup.stderr.strip().splitlines()[-1:]}")
    rows = []
    for recipe in args.recipes.split(","):
        out = work / recipe
        done = edgekit("export", "builtin:tiny", "-t", "onnx", "-r", recipe, "-o", str(out), "--overwrite")
        if done.returncode != 0:
            sys.exit(f"export {recipe}: {done.stderr.strip().splitlines()[-1:]}")
        name = json.loads((out / "edgekit.json").read_text())["recipe"]["name"]
        for device in DEVICES:
            r = edgekit("profile", str(out), "-d", device, "--runs", "1", "--warmup", "0", "--prompt-len", "16",
                        "--gen", "8", "--json")
            if r.returncode != 0:
                sys.exit(f"profile {recipe} on {device}: {r.stderr.strip().splitlines()[-1:]}")
            result = json.loads(r.stdout)
            metrics = {k: result["metrics"][k]["value"] for k in COLUMNS}
            cpu = result.get("device", {}).get("cpu")
            where = f"{device} ({cpu or result['environment']['machine']})"
            rows.append((name, where, metrics))
            print(json.dumps({"recipe": name, "device": where, **metrics}), file=sys.stderr)
    table = markdown(rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
