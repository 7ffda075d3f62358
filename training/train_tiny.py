#!/usr/bin/env python
"""Train edgekit's shipped tiny model (``builtin:tiny``) from scratch.

Everything is reproducible from this repository alone (no downloads):

1. synthetic stories from ``training/corpus.py`` (train: seed 0,
   held-out: seed 1, ``edgekit/data/eval.txt``: seed 2);
2. a byte-level BPE tokenizer (``tokenizers``) trained on the train stories;
3. a small Llama (GQA) model trained with AdamW + cosine schedule on packed
   sequences, on CPU;
4. perplexity of the trained model and of a freshly initialised one on the
   held-out text, written to ``training/results.json``.

Usage::

    python training/train_tiny.py --out edgekit/models/tiny
    python training/train_tiny.py --write-eval-only     # only edgekit/data/eval.txt
    python training/train_tiny.py --out /tmp/t --steps 20 --train-stories 2000   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

SPECIAL = "<|endoftext|>"
TRAIN_SEED = 0
HELDOUT_SEED = 1
EVAL_SEED = 2
EVAL_STORIES = 40  # about 5-6k tokens with the shipped tokenizer


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def join_stories(stories: list[str]) -> str:
    """How stories are laid out in a plain text file (eval.txt, held-out)."""
    return "\n\n".join(stories) + "\n"


def write_eval(path: Path) -> str:
    text = join_stories(corpus.generate(EVAL_STORIES, EVAL_SEED))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def make_documents(stories: list[str], seed: int) -> list[str]:
    """Group stories into documents of 1-3 stories separated by blank lines.

    Each document is later prefixed with the ``<|endoftext|>`` token, so the
    model sees stories separated both by the special token and by plain blank
    lines (the layout of eval.txt).
    """
    rng = random.Random(seed)
    docs, i = [], 0
    while i < len(stories):
        k = rng.choice([1, 1, 2, 3])
        docs.append("\n\n".join(stories[i:i + k]))
        i += k
    return docs


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    eot = tok.token_to_id(SPECIAL)
    # Llama-style: the tokenizer prepends the BOS token (here <|endoftext|>),
    # exactly as the training documents are laid out.
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{SPECIAL} $A",
            pair=f"{SPECIAL} $A {SPECIAL} $B:1",
            special_tokens=[(SPECIAL, eot)],
        ),
    ])
    return tok


def save_tokenizer(tok, out: Path, model_max_length: int) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL,
        eos_token=SPECIAL,
        unk_token=SPECIAL,
        pad_token=SPECIAL,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(str(out))


# ---------------------------------------------------------------------------
# Model / data
# ---------------------------------------------------------------------------


def build_config(args, vocab_size: int, eot: int):
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=512,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        use_cache=True,
    )
    cfg.architectures = ["LlamaForCausalLM"]
    return cfg


def pack(tok, docs: list[str], seq_len: int):
    """Tokenise documents (each gets the BOS/EOT prefix) and cut into blocks."""
    import torch

    ids: list[int] = []
    for enc in tok.encode_batch(docs):
        ids.extend(enc.ids)
    n = len(ids) // seq_len
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len), len(ids)


def perplexity(model, ids: list[int], window: int) -> tuple[float, int]:
    """Token-level perplexity over non-overlapping windows (no context carry)."""
    import torch

    model.eval()
    total_nll, total_n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, window):
            chunk = ids[s: s + window]
            if len(chunk) < 2:
                break
            x = torch.tensor([chunk])
            logits = model(input_ids=x).logits.float()
            nll = torch.nn.functional.cross_entropy(
                logits[0, :-1], x[0, 1:], reduction="sum")
            total_nll += nll.item()
            total_n += len(chunk) - 1
    return math.exp(total_nll / total_n), total_n


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(1.0, p)))


# ---------------------------------------------------------------------------
# Model card
# ---------------------------------------------------------------------------

CARD = """\
---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [llama, tiny, synthetic-data, edgekit]
---

# edgekit `builtin:tiny`

A deliberately tiny Llama-architecture causal language model that ships with
edgekit, so that the exporters (ONNX / ExecuTorch / CoreML) and the profiler
can be exercised end to end with a *trained* model, offline, in seconds.
It writes short, simple children's stories. It is a test fixture, not a useful
language model.

## Architecture

`LlamaForCausalLM`: {layers} layers, hidden size {hidden}, {heads} attention heads,
{kv_heads} key/value heads (grouped-query attention), head dim {head_dim}, MLP size
{intermediate}, RoPE theta 10000, RMSNorm, tied input/output embeddings,
max {max_pos} positions, vocabulary {vocab} (byte-level BPE).
{params:,} parameters, stored as float32 safetensors ({st_mb:.1f} MB).

Tokenizer: byte-level BPE trained with `tokenizers` on the training text. The
single special token `<|endoftext|>` (id {eot}) is BOS, EOS and PAD; the
tokenizer prepends it to every encoded text (as during training).

## Training

* Data: only text generated by `training/corpus.py`, a probabilistic grammar
  of children's stories written for this repository (training seed 0,
  {train_stories} stories, {train_tokens:,} tokens). No external data.
* {steps} steps of AdamW (lr {lr}, cosine to {min_lr}, {warmup} warmup steps,
  weight decay {wd}, betas (0.9, 0.95), grad clip 1.0), batch {batch} x {seq_len}
  packed tokens ({tokens_seen:,} tokens seen), fp32, CPU ({threads} threads),
  `torch.manual_seed({seed})`; {train_minutes:.1f} minutes.
* Reproduce: `python training/train_tiny.py --out edgekit/models/tiny`
  (see `training/README.md`).

## Evaluation

Token-level perplexity on held-out generated stories (seed 1, {heldout_tokens:,}
tokens, windows of {seq_len} tokens):

| model | perplexity |
|---|---|
| this model | {ppl_trained:.3f} |
| same config, random init | {ppl_random:.1f} |

On `edgekit/data/eval.txt` (seed 2, {eval_tokens:,} tokens): {ppl_eval:.3f}.

## Licence

Apache-2.0, the same as the edgekit repository. The weights were trained only
on text generated by `training/corpus.py`.
"""


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "edgekit" / "models" / "tiny"))
    ap.add_argument("--eval-txt", default=str(REPO / "edgekit" / "data" / "eval.txt"))
    ap.add_argument("--results", default=str(HERE / "results.json"),
                    help="where to write the metrics JSON ('' to skip)")
    ap.add_argument("--write-eval-only", action="store_true",
                    help="only (re)write --eval-txt and exit")
    ap.add_argument("--train-stories", type=int, default=60000)
    ap.add_argument("--heldout-stories", type=int, default=400)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=25)
    args = ap.parse_args(argv)

    eval_path = Path(args.eval_txt)
    eval_text = write_eval(eval_path)
    log(f"wrote {eval_path} ({len(eval_text)} chars, {EVAL_STORIES} stories, seed {EVAL_SEED})")
    if args.write_eval_only:
        return 0

    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    # Guard against denormal-float slowdowns on CPU (results unaffected in practice).
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # -- data + tokenizer ---------------------------------------------------
    t0 = time.time()
    train_stories = corpus.generate(args.train_stories, TRAIN_SEED)
    heldout_text = join_stories(corpus.generate(args.heldout_stories, HELDOUT_SEED))
    log(f"generated {len(train_stories)} train stories "
        f"({sum(len(s.split()) for s in train_stories):,} words) in {time.time() - t0:.1f}s")
    tok = train_tokenizer(train_stories, args.vocab_size)
    vocab = tok.get_vocab_size()
    eot = tok.token_to_id(SPECIAL)
    save_tokenizer(tok, out, model_max_length=512)
    log(f"tokenizer: vocab {vocab}, {SPECIAL}={eot}")

    docs = make_documents(train_stories, TRAIN_SEED)
    blocks, n_train_tokens = pack(tok, docs, args.seq_len)
    log(f"train tokens {n_train_tokens:,} -> {blocks.shape[0]} blocks of {args.seq_len}")

    # -- model --------------------------------------------------------------
    cfg = build_config(args, vocab, eot)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model params {n_params:,}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(blocks.shape[0], generator=gen)
    pos = 0
    model.train()
    t_train = time.time()
    ema = None
    for step in range(args.steps):
        if pos + args.batch_size > len(order):
            order = torch.randperm(blocks.shape[0], generator=gen)
            pos = 0
        x = blocks[order[pos: pos + args.batch_size]]
        pos += args.batch_size
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        li = loss.item()
        ema = li if ema is None else 0.95 * ema + 0.05 * li
        if step % args.log_every == 0 or step == args.steps - 1:
            el = time.time() - t_train
            eta = el / (step + 1) * (args.steps - step - 1)
            log(f"step {step + 1}/{args.steps} loss {li:.4f} (ema {ema:.4f}) lr {lr:.2e} "
                f"elapsed {el / 60:.1f}m eta {eta / 60:.1f}m")
    train_seconds = time.time() - t_train
    log(f"training done in {train_seconds / 60:.1f} min")

    # -- save ---------------------------------------------------------------
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    model.save_pretrained(str(out), safe_serialization=True)
    # Record the dtype under both spellings (transformers >= 4.56 writes "dtype").
    cfg_path = out / "config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_json["torch_dtype"] = "float32"
    cfg_json["dtype"] = "float32"
    cfg_path.write_text(json.dumps(cfg_json, indent=2, sort_keys=True) + "\n")
    st_bytes = (out / "model.safetensors").stat().st_size
    log(f"saved to {out} (model.safetensors {st_bytes / 1e6:.2f} MB)")

    # -- evaluate -----------------------------------------------------------
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    held_ids = hf_tok(heldout_text, verbose=False)["input_ids"]
    eval_ids = hf_tok(eval_text, verbose=False)["input_ids"]
    ppl_trained, n_held = perplexity(model, held_ids, args.seq_len)
    ppl_eval, n_eval = perplexity(model, eval_ids, args.seq_len)
    torch.manual_seed(args.seed + 1)
    random_model = LlamaForCausalLM(cfg)
    ppl_random, _ = perplexity(random_model, held_ids, args.seq_len)
    log(f"held-out perplexity: trained {ppl_trained:.3f}  random-init {ppl_random:.1f}")
    log(f"eval.txt perplexity ({n_eval} tokens): trained {ppl_eval:.3f}")

    prompt = "Once upon a time"
    enc = hf_tok(prompt, return_tensors="pt")
    with torch.no_grad():
        g = model.generate(**enc, max_new_tokens=40, do_sample=False)
    sample = hf_tok.decode(g[0], skip_special_tokens=True)
    log(f"greedy sample: {sample!r}")

    config_summary = {k: cfg_json[k] for k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
        "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")
        if k in cfg_json}
    results = {
        "ppl_trained": round(ppl_trained, 4),
        "ppl_random": round(ppl_random, 2),
        "ppl_eval_txt": round(ppl_eval, 4),
        "heldout_tokens": n_held,
        "eval_txt_tokens": n_eval,
        "train_seconds": round(train_seconds, 1),
        "params": n_params,
        "safetensors_bytes": st_bytes,
        "train_tokens": n_train_tokens,
        "tokens_seen": args.steps * args.batch_size * args.seq_len,
        "final_train_loss_ema": round(ema, 4),
        "sample_greedy_40": sample,
        "hparams": {k: getattr(args, k) for k in (
            "train_stories", "heldout_stories", "vocab_size", "seq_len", "batch_size", "steps",
            "warmup", "lr", "min_lr", "weight_decay", "seed", "threads")},
        "versions": {"torch": torch.__version__,
                     "transformers": __import__("transformers").__version__,
                     "tokenizers": __import__("tokenizers").__version__},
        "config": config_summary,
    }
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.results}")

    (out / "README.md").write_text(CARD.format(
        layers=args.layers, hidden=args.hidden, heads=args.heads, kv_heads=args.kv_heads,
        head_dim=args.hidden // args.heads, intermediate=args.intermediate, max_pos=512,
        vocab=vocab, params=n_params, st_mb=st_bytes / 1e6, eot=eot,
        train_stories=args.train_stories, train_tokens=n_train_tokens, steps=args.steps,
        lr=args.lr, min_lr=args.min_lr, warmup=args.warmup, wd=args.weight_decay,
        batch=args.batch_size, seq_len=args.seq_len,
        tokens_seen=args.steps * args.batch_size * args.seq_len, threads=args.threads,
        seed=args.seed, train_minutes=train_seconds / 60, heldout_tokens=n_held,
        ppl_trained=ppl_trained, ppl_random=ppl_random, eval_tokens=n_eval, ppl_eval=ppl_eval))
    log("done")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
