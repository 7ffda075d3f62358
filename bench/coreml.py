"""The size of builtin:tiny's Core ML package per recipe: the README's Core ML table, regenerated.

    .venv/bin/python bench/coreml.py [--recipes fp16,int4,pal4] [--work DIR] [--markdown FILE]

Each recipe is exported in its own process (`edgekit export builtin:tiny -t coreml`); the figure is
the bytes under `model.mlpackage` in MB (1e6). Linux converts and compresses; only the sizes are
measured (Core ML's prediction needs a Mac). About a minute per recipe on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def package_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in (folder / "model.mlpackage").rglob("*") if p.is_file()) / 1e6


def markdown(sizes: dict[str, float], context: int = 512) -> str:
    return "\n".join([
        f"| builtin:tiny (context {context}) | " + " | ".join(f"`{r}`" for r in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
        "| `model.mlpackage` | " + " | ".join(f"{mb:.2f} MB" for mb in sizes.values()) + " |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default="fp16,int4,pal4")
    ap.add_argument("--work", type=Path, default=None, help="keep the artifacts here (default: a temp folder)")
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-coreml-"))
    sizes = {}
    for recipe in args.recipes.split(","):
        out = work / recipe
        done = subprocess.run([sys.executable, "-m", "edgekit", "export", "builtin:tiny", "-t", "coreml", "-r", recipe,
                               "-o", str(out), "--overwrite"], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"export {recipe}: {done.stderr.strip().splitlines()[-1:]}")
        sizes[recipe] = package_mb(out)
        print(json.dumps({"recipe": recipe, "mlpackage_mb": round(sizes[recipe], 3)}), file=sys.stderr)
    table = markdown(sizes)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
