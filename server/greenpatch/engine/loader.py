"""Choosing and building an engine from settings."""

from __future__ import annotations

from greenpatch.config import Settings
from greenpatch.engine import models
from greenpatch.engine.base import Engine


def load_engine(name_or_path: str, settings: Settings) -> Engine:
    """"fake" -> FakeEngine; a model name or .gguf path -> LlamaEngine on that file.

    The server never downloads: a missing model raises ModelNotInstalled naming `greenpatch model install NAME`
    (the CLI calls `models.ensure_model` first, so it installs on first use). A missing llama-cpp-python raises
    EngineUnavailable naming `pip install 'greenpatch[llm]'`.
    """
    if name_or_path == "fake":
        from greenpatch.engine.fake import FakeEngine

        return FakeEngine()
    spec, path = models.require_model(name_or_path, settings.model.cache_dir)
    from greenpatch.engine.llama import LlamaEngine  # raises EngineUnavailable without llama-cpp-python

    return LlamaEngine(
        path, name=spec.name if spec else path.stem, fim=spec.fim if spec else None, threads=settings.model.threads
    )
