"""Where data files (grammars, model manifest, prompts) live, installed or in a source checkout; where greenpatch
keeps its per-user and per-workspace state."""

from __future__ import annotations

import hashlib
import os
import sys
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


def user_cache_dir() -> Path:
    """greenpatch's folder in the platform's user cache (XDG_CACHE_HOME honoured)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "greenpatch"


def workspace_key(root: Path) -> str:
    """A workspace's name in per-workspace state: its folder name and a hash of its path."""
    return f"{root.name}-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}"
