"""A chat model for the tests: builtin:tiny with a chat template and an end-of-turn token of its own."""

from __future__ import annotations

import json
from pathlib import Path


# a ChatML template: a turn ends with <|im_end|>, a special token of its own
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def chat_copy(folder: Path, license: str = "mit", license_text: str | None = None) -> tuple[Path, int]:
    """builtin:tiny with the ChatML template and its own <|im_start|>/<|im_end|> (the two last ids
    reused: the model's vocab_size stays), a card naming ``license`` and the base model org/tiny-base,
    and a LICENSE file holding ``license_text`` where given; returns the folder and <|im_end|>'s id."""
    import shutil

    from edgekit.builtins import BUILTINS

    shutil.copytree(BUILTINS["tiny"].path(), folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    ids = sorted(vocab.values())[-2:]
    for text, i in zip(("<|im_start|>", "<|im_end|>"), ids):
        del vocab[next(k for k, v in vocab.items() if v == i)]
        vocab[text] = i
        spec["added_tokens"].append({"id": i, "content": text, "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": True})
    spec["model"]["merges"] = [m for m in spec["model"]["merges"]
                               if "".join(m if isinstance(m, list) else m.split(" ")) in vocab]
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = CHATML
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("license: apache-2.0",
                                                   f"license: {license}\nbase_model: org/tiny-base"))
    if license_text is not None:
        (folder / "LICENSE").write_text(license_text)
    return folder, ids[1]


def assert_shipped(folder: Path, target: str) -> None:
    """What every artifact ships beside its model file (edgekit.shipping): the runtimes' configs with the
    model's stop ids, and a model card the Hub reads, its library the target's."""
    import yaml

    generation = json.loads((Path(folder) / "generation_config.json").read_text())
    assert generation["eos_token_id"] is not None and json.loads((Path(folder) / "config.json").read_text())
    card = (Path(folder) / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert target in front["tags"] and front["license"] and front["library_name"]
