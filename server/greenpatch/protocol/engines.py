"""One engine worker per model name, shared by completion and repair; built on first use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from greenpatch.engine.base import Engine
    from greenpatch.engine.fallback import EngineStatus
    from greenpatch.engine.worker import EngineWorker
    from greenpatch.protocol.server import GreenpatchServer


def engine_worker(ls: GreenpatchServer, model: str) -> EngineWorker:
    """The EngineWorker for `model` (a manifest name, "fake", or a .gguf path). Loading happens on the worker
    thread at the first request; failures reach the caller as GreenpatchErrors."""
    worker = ls.services.engines.get(model)
    if worker is not None:
        return worker
    from greenpatch.engine import load_engine
    from greenpatch.engine.worker import EngineWorker

    settings = ls.settings

    def on_status(state: str, message: str) -> None:
        ls.notify_threadsafe(ls.status, state, message)
        if state == "error":
            ls.notify_threadsafe(ls.say_once, f"engine:{model}:{message}", message, types.MessageType.Error)

    def on_remote(status: EngineStatus) -> None:
        # the shared server went down (local fallback) or came back
        state = "ready" if status.state in ("remote", "fallback") else "error"
        on_status(state, status.message)
        if status.state != "remote":
            ls.notify_threadsafe(ls.say, status.message, types.MessageType.Warning)

    def factory() -> Engine:
        if model == "fake" or settings.engine.url:
            return load_engine(model, settings, on_remote)
        from greenpatch.engine.child import ChildEngine

        # The local model runs in a child process: a native crash in llama.cpp must not take the server down.
        return ChildEngine(model, settings, on_status=on_status)

    worker = EngineWorker(factory, on_status=on_status)
    ls.services.engines[model] = worker
    return worker


def drop_engines(ls: GreenpatchServer, keep: set[str]) -> None:
    """Close workers for models no longer configured (after a settings change)."""
    for model in [m for m in ls.services.engines if m not in keep]:
        worker = ls.services.engines.pop(model)
        # close() joins the model thread, which may be inside a prompt step for seconds: never on the event loop
        threading.Thread(target=worker.close, name=f"greenpatch-close-engine:{model}", daemon=True).start()
