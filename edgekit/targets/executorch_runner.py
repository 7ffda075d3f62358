"""An ExecuTorch artifact in ExecuTorch's own LLM runner, the one its Android and iOS demo apps use:
``executorch.extension.llm.runner.TextLLMRunner(model.pte, tokenizer.json, model.pte.ptd)``.

``standard_check`` greedily generates after a prompt there, as an app would, and returns the token
ids. The runner takes text and hands each new token to its callback as text: the prompt's ids are
rendered as the text that ExecuTorch's tokenizer library (``pytorch_tokenizers``, the runner's own)
encodes back to exactly those ids, from the artifact's own ``tokenizer.json``. The runner itself is
given a copy of that file without its decoder, the one part of it that only displays text: each
piece it passes is then the vocabulary's own token string, which names one id, and never a lone byte
of a multi-byte character (which its Python binding cannot pass as text: it raises).

The program's LLM custom ops (``llama::custom_sdpa``, ``llama::update_cache``) and quantized kernels
are not in the runner's own build: their libraries are loaded first (``kernel_libraries`` in the
manifest), as an app links ``custom_ops`` (and ``quantized_kernels``) beside the runner.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from edgekit.environment import distribution_version
from edgekit.errors import first_line
from edgekit.runtime import native_output

API = "executorch.extension.llm.runner.TextLLMRunner"
TOKENIZER = "tokenizer.json"


def standard_check(folder: Path, prompt: list[int], expected: list[int]) -> dict:
    """Greedy ``len(expected)`` tokens after the ids ``prompt`` from the artifact in ``folder``, run by
    TextLLMRunner: ``{"runtime", "version", "api", "loaded": True, "tokens"}``, or ``"loaded": False``
    with a one-line ``"error"``. The runtime's own log is kept off the terminal."""
    record = {"runtime": "executorch", "version": distribution_version("executorch"), "api": API}
    try:
        tokens = generate(Path(folder), list(prompt), len(expected))
    except Exception as e:  # the runner's, the tokenizer's or the manifest's words, on one line
        return {**record, "loaded": False, "error": first_line(e)}
    return {**record, "loaded": True, "tokens": tokens}


def generate(folder: Path, prompt: list[int], count: int) -> list[int]:
    """The ids TextLLMRunner generates greedily (temperature 0), at most ``count``, after ``prompt``."""
    from edgekit.runtime import MANIFEST
    from edgekit.runtime.executorch import _load_kernels

    runtime = json.loads((folder / MANIFEST).read_text())["runtime"]
    tokenizer = folder / TOKENIZER
    vocabulary = _Vocabulary(tokenizer)
    text, bos = vocabulary.render(prompt)
    with tempfile.TemporaryDirectory() as tmp, native_output((1, 2)) as log:
        raw = Path(tmp) / TOKENIZER  # pieces as the vocabulary's token strings
        raw.write_text(json.dumps({**json.loads(tokenizer.read_text()), "decoder": None}))
        try:
            for name in runtime.get("kernel_libraries", ()):
                _load_kernels(name)
            from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner

            data = folder / runtime["data_file"] if runtime.get("data_file") else None
            runner = TextLLMRunner(str(folder / runtime["model_file"]), str(raw), str(data) if data else None)
            pieces: list[str] = []
            config = GenerationConfig(echo=False, max_new_tokens=count, temperature=0.0, num_bos=bos, num_eos=0)
            runner.generate(text, config, pieces.append)
        except Exception as e:
            raise RuntimeError(f"{first_line(e)}{_why(log())}") from None
    return vocabulary.ids(pieces)


class _Vocabulary:
    """The artifact's tokenizer as ExecuTorch's tokenizer library reads it, beside the Hugging Face one."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.hf = Tokenizer.from_file(str(path))
        with native_output((1, 2)) as log:
            try:
                from pytorch_tokenizers import CppHFTokenizer  # its import logs a line

                self.et = CppHFTokenizer()
                self.et.load(str(path))
            except Exception as e:
                raise RuntimeError(f"ExecuTorch's tokenizer library cannot load {path.name}: "
                                   f"{_why(log()).lstrip('( ').rstrip(')') or first_line(e)}") from None

    def render(self, prompt: list[int]) -> tuple[str, int]:
        """The text (and the number of BOS the runner adds) that ExecuTorch's tokenizer encodes to ``prompt``."""
        bos = self.et.bos_tok()
        tries = [(prompt, 0)] + ([(prompt[1:], 1)] if len(prompt) > 1 and prompt[0] == bos else [])
        for ids, added in tries:
            text = self.hf.decode(ids, skip_special_tokens=False)
            if list(self.et.encode(text, added, 0)) == prompt:
                return text, added
        raise RuntimeError("ExecuTorch's tokenizer does not encode the prompt's text back to its ids")

    def ids(self, pieces: list[str]) -> list[int]:
        """The ids of the runner's pieces (token strings: its tokenizer had no decoder)."""
        out = []
        for i, piece in enumerate(pieces):
            found = self.hf.token_to_id(piece)
            if found is None:
                raise RuntimeError(f"the runner's token {i} ({piece!r}) is no token of the vocabulary")
            out.append(found)
        return out


_LOG_LINE = re.compile(r"^(?:[EIWDF] [\d:.]+ )?(?:\S+:)?\[?[\w./]+\.(?:cpp|h):\d+\]\s*")


def _why(log: str) -> str:
    """The runtime log's last error line, as `` (reason)``; empty where it has none."""
    lines = [_LOG_LINE.sub("", line).strip() for line in log.splitlines()]
    errors = [line for line in lines if re.search(r"Missing operator|[Ff]ail|[Ee]rror|not found|[Ii]nvalid", line)]
    return f" ({errors[-1]})" if errors else ""
