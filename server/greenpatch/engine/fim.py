"""Fill-in-the-middle formats of served models: which tokens a model family uses, and the prompt built with them.

The remote engine writes these tokens into a `/v1/completions` prompt; a model whose tokens are unknown here goes
through llama.cpp's own `/infill` or a prefix-only prompt instead (engine/remote.py).
"""

from __future__ import annotations

import logging

from greenpatch.engine.base import FimFormat
from greenpatch.errors import GreenpatchError

log = logging.getLogger(__name__)

# FIM tokens of model families commonly served, matched on the lower-cased model name (all parts must occur).
# Only prefix-suffix-middle formats: the same order the local engine uses.
KNOWN_FIM: list[tuple[tuple[str, ...], FimFormat]] = [
    (
        ("qwen", "coder"),
        FimFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>"),
    ),
    (("starcoder",), FimFormat("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<reponame>", "<file_sep>")),
    (("deepseek", "coder"), FimFormat("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")),
]


def fim_for_model(model: str) -> FimFormat | None:
    """The FIM tokens of a served model, from its name; None when the family is unknown."""
    name = model.lower()
    for parts, fim in KNOWN_FIM:
        if all(part in name for part in parts):
            return fim
    return None


def fim_for_served_model(model: str) -> FimFormat | None:
    """FIM tokens for a served model id: greenpatch's own model files by name (a server started on a file from
    greenpatch's cache lists its path), else the family from the name."""
    stem = model.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        from greenpatch.engine.models import load_manifest

        for spec in load_manifest().values():
            if stem in (spec.name, spec.file) or stem == f"{spec.name}.gguf":
                return spec.fim
    except (ImportError, GreenpatchError) as exc:
        log.debug("no manifest for FIM lookup: %s", exc)
    return fim_for_model(model)


def build_fim_prompt(fim: FimFormat, prefix: str, suffix: str, context: str = "") -> str:
    """Prefix-suffix-middle order with the stable repo context first, so servers can reuse its cached prefix.

    As in the local engine, the start of the cursor's line goes after the middle token: typing along a line then
    only appends to the prompt, so a server that reuses the longest common prefix re-evaluates a few tokens per
    keystroke instead of the whole suffix.
    """
    cut = prefix.rfind("\n") + 1
    return f"{context}{fim.prefix}{prefix[:cut]}{fim.suffix}{suffix}{fim.middle}{prefix[cut:]}"

