"""Generating text with an artifact (``edgekit run``), the host side: tokenize, chat template, stop
tokens, stream the text. The token loop itself is ``edgekit.runtime.generate`` (numpy, no torch: it
runs on devices too); the command is ``edgekit.cli.generate``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from edgekit import artifact, targets
from edgekit.errors import EdgekitError, first_line


@dataclass(frozen=True)
class RunOutput:
    text: str  # the prompt and what was generated; with --chat, the reply alone (the prompt was a message)
    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_tok_s: float | None
    context_limit: int | None = None  # set where generation stopped because the context was full

    def summary(self) -> str:
        line = (
            f"{self.new_tokens} tokens; prompt {self.prompt_tokens} tokens in {self.prefill_s * 1000:.1f} ms "
            f"({self.prompt_tokens / self.prefill_s:.1f} tok/s)"
        )
        if self.decode_tok_s:
            line += f"; decode {self.decode_tok_s:.1f} tok/s"
        if self.context_limit:
            line += f"; stopped at the model's context limit of {self.context_limit} tokens"
        return line


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen: greedy at temperature 0 (the default), else sampled (``runtime.generate.sampler``)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


def generate(path: Path, prompt: str, max_new_tokens: int, *, threads: int | None = None, stream: TextIO | None = None,
             verify: bool = False, chat: bool = False, sampling: Sampling = Sampling()) -> RunOutput:
    """``chat``: the prompt is a user's message, wrapped in the model's chat template (and only the
    reply is streamed)."""
    from edgekit.runtime import load as runtime_load
    from edgekit.runtime.generate import greedy, sampler
    from edgekit.runtime.measure import top1

    from edgekit.config import NUMBERS

    numbers = {"--max-new-tokens": ("max_new_tokens", max_new_tokens), "--threads": ("threads", threads),
               **{f"--{k.replace('_', '-')}": (k, v) for k, v in asdict(sampling).items()}}
    for option, (key, value) in numbers.items():  # each in its range, before any work
        if value is not None:
            NUMBERS[key].check(value, option)
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise EdgekitError("--prompt is not valid UTF-8 text") from None
    art = artifact.load(path)
    targets.require_host(art.target, art.path)
    backend = targets.spec(art.target).runner_backend
    artifact.verify(art, full=verify)
    targets.spec(art.target).check_loads(art.path, art.manifest.runtime)  # a native abort: one line, not the end
    tokenizer = artifact.tokenizer(art.path)
    try:
        lm = runtime_load(art.path, threads, backend)
    except Exception as e:  # the runtime's own words on why it refused the file, whatever their type
        raise EdgekitError(f"cannot run {art.path}: {first_line(e)}") from None
    text_in = _chat_prompt(art.path, prompt) if chat else prompt
    ids = tokenizer.encode(text_in, add_special_tokens=not chat).ids  # a template writes its own specials
    if not ids:
        raise EdgekitError("the prompt is empty after tokenization")
    if len(ids) >= lm.max_context:
        raise EdgekitError(f"the prompt has {len(ids)} tokens; the model's context is {lm.max_context}")
    stop = _stop_tokens(art.path, tokenizer)
    shown = ""
    tokens: list[int] = []
    prefix = tokenizer.decode(ids)

    def new_text(toks: list[int]) -> str:
        full = tokenizer.decode(ids + [t for t in toks if t not in stop])
        return full[len(prefix):] if full.startswith(prefix) else tokenizer.decode(toks)

    def on_token(t: int) -> None:
        nonlocal shown
        tokens.append(t)
        text = new_text(tokens)
        if stream is not None and text.startswith(shown) and not text.endswith("\ufffd"):
            stream.write(text[len(shown):])
            stream.flush()
            shown = text

    if stream is not None and not chat:
        stream.write(prompt)
    chosen = sampler(sampling.temperature, sampling.top_p, sampling.seed)

    def pick(logits) -> int:  # broken logits stop the run with a word, not with whatever token their argmax is
        if top1(logits) < 0:
            if stream is not None:
                stream.write("\n")
                stream.flush()
            raise EdgekitError(f"{art.path} produced NaN/inf logits (at generated token {len(tokens) + 1}): "
                               "its weights or its runtime are broken")
        return chosen(logits)

    gen = greedy(lm, ids, max_new_tokens, stop=stop, on_token=on_token, pick=pick)
    text = new_text(gen.tokens)
    if stream is not None:
        stream.write(text[len(shown):] + "\n")
        stream.flush()
    full = (len(gen.tokens) < max_new_tokens and len(ids) + len(gen.tokens) >= lm.max_context
            and gen.tokens[-1] not in stop)
    return RunOutput(text if chat else prompt + text, len(ids), len(gen.tokens), gen.prefill_s, gen.decode_tok_s,
                     lm.max_context if full else None)


def _chat_prompt(folder: Path, message: str) -> str:
    """``message`` as the user's turn in the model's chat template (``chat_template.jinja`` or
    ``tokenizer_config.json``'s ``chat_template``, as transformers saves it), rendered as
    transformers renders it (a sandboxed Jinja environment, the generation prompt added)."""
    import json

    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    config_file = folder / "tokenizer_config.json"
    try:
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    except (OSError, ValueError):
        raise EdgekitError(f"{config_file} is not valid JSON") from None
    template = ((folder / "chat_template.jinja").read_text() if (folder / "chat_template.jinja").is_file()
                else config.get("chat_template"))
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    if not isinstance(template, str):
        raise EdgekitError(f"{folder} has no chat template (chat_template.jinja or tokenizer_config.json); "
                           "run without --chat")

    def special(name: str):
        value = config.get(name)
        return value.get("content") if isinstance(value, dict) else value

    def raise_exception(text):
        raise TemplateError(text)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=[{"role": "user", "content": message}], add_generation_prompt=True,
            bos_token=special("bos_token") or "", eos_token=special("eos_token") or "",
        )
    except Exception as e:  # the template is the model's own code: whatever it raises (the sandbox's
        # OverflowError for a huge range(), a TypeError of its own arithmetic) is its failure, in one line
        raise EdgekitError(f"the chat template of {folder} failed: {first_line(e)}") from None


def _stop_tokens(folder: Path, tokenizer) -> set[int]:
    import json

    stop: set[int] = set()
    gen_cfg = folder / "generation_config.json"
    if gen_cfg.is_file():
        try:
            eos = json.loads(gen_cfg.read_text()).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            raise EdgekitError(f"{gen_cfg} is not a valid generation config (a JSON object)") from None
        stop.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for name in ("<|endoftext|>", "</s>", "<|im_end|>", "<|end_of_text|>", "<eos>"):
        t = tokenizer.token_to_id(name)
        if t is not None and not stop:
            stop.add(t)
    return stop
