"""Where data files (grammars, model manifest, prompts) live, installed or in a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parents[1]


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[-1]


@cache
def grammars_dir() -> Path:
    return _first_existing(_PKG / "_data" / "grammars", _REPO / "grammars")


@cache
def manifest_path() -> Path:
    return _first_existing(_PKG / "_data" / "manifest.toml", _REPO / "models" / "manifest.toml")


def prompts_dir() -> Path:
    return _PKG / "prompts"


@cache
def read_prompt(name: str) -> str:
    return (prompts_dir() / name).read_text(encoding="utf-8")
