"""builtin:tiny's perplexity, trained and randomly initialised: the README's builtin:tiny table, regenerated
from the committed weights (no training).

    .venv/bin/python bench/tiny.py [--markdown FILE]

The held-out text is the one `training/train_tiny.py` scores (400 stories of `training/corpus.py`,
seed 1), the evaluation text the shipped `edgekit/data/eval.txt`; perplexity over non-overlapping
windows of 256 tokens, as the training script computes it. The random model has the committed config
and the training script's seed for it. A few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "edgekit" / "models" / "tiny"
WINDOW = 256


def _train_tiny():
    spec = importlib.util.spec_from_file_location("train_tiny", REPO / "training" / "train_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure() -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    train = _train_tiny()
    tok = AutoTokenizer.from_pretrained(str(TINY))
    held = tok(train.join_stories(train.corpus.generate(400, train.HELDOUT_SEED)), verbose=False)["input_ids"]
    evaluation = tok((REPO / "edgekit" / "data" / "eval.txt").read_text(), verbose=False)["input_ids"]
    model = LlamaForCausalLM.from_pretrained(str(TINY), dtype=torch.float32)
    trained, held_n = train.perplexity(model, held, WINDOW)
    on_eval, eval_n = train.perplexity(model, evaluation, WINDOW)
    torch.manual_seed(1)  # the training script's seed (0) + 1, as it draws the random model
    random = LlamaForCausalLM(LlamaConfig.from_pretrained(str(TINY)))
    untrained, _ = train.perplexity(random, held, WINDOW)
    return {"heldout_tokens": held_n, "eval_tokens": eval_n, "ppl_trained": trained, "ppl_random": untrained,
            "ppl_eval_txt": on_eval}


def markdown(r: dict) -> str:
    return "\n".join([
        f"| model (same shape and tokenizer) | perplexity on held-out text ({r['heldout_tokens']:,} tokens) "
        f"| on `edgekit/data/eval.txt` |",
        "|---|---|---|",
        f"| builtin:tiny, trained | **{r['ppl_trained']:.2f}** | {r['ppl_eval_txt']:.2f} |",
        f"| randomly initialised | {r['ppl_random']:.0f} | — |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    args = ap.parse_args()
    result = measure()
    print(json.dumps(result))
    table = markdown(result)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
