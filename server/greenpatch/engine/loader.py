"""Choosing and building an engine from settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from greenpatch.config import Settings
from greenpatch.engine import models
from greenpatch.engine.base import Engine


def load_engine(
    name_or_path: str, settings: Settings, on_status: Callable[[Any], None] | None = None
) -> Engine:
    """"fake" -> FakeEngine; a model name or .gguf path -> LlamaEngine on that file.

    The server never downloads: a missing model raises ModelNotInstalled naming `greenpatch model install NAME`
    (the CLI calls `models.ensure_model` first, so it installs on first use). A missing llama-cpp-python raises
    EngineUnavailable naming `pip install 'greenpatch[llm]'`.
    With `settings.engine.url` set, the OpenAI-compatible server serves and the local model is only the fallback
    (built when the server fails); `on_status` receives the fallback's EngineStatus changes.
    """
    if name_or_path == "fake":
        from greenpatch.engine.fake import FakeEngine

        # end-to-end tests of work ahead need a preparation that lasts (see tests/e2e/test_completion_ahead.py)
        return FakeEngine(prepare_seconds=float(os.environ.get("GREENPATCH_FAKE_PREPARE_SECONDS", "0") or 0))
    if settings.engine.url:
        from greenpatch.engine.fallback import make_engine

        return make_engine(settings, lambda: _local(name_or_path, settings), on_status)
    return _local(name_or_path, settings)


def _local(name_or_path: str, settings: Settings) -> Engine:
    spec, path = models.require_model(name_or_path, settings.model.cache_dir)
    from greenpatch.engine.llama import LlamaEngine  # raises EngineUnavailable without llama-cpp-python

    return LlamaEngine(
        path, name=spec.name if spec else path.stem, fim=spec.fim if spec else None, threads=settings.model.threads
    )
