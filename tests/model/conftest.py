"""Fixtures for tests with the real tiny model (SmolLM2-135M) through llama.cpp (its path: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _loaded_tiny_engine(tiny_model_path: Path) -> Iterator[object]:
    from greenpatch.engine.llama import LlamaEngine

    engine = LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048)
    yield engine
    engine.close()


@pytest.fixture
def tiny_engine(_loaded_tiny_engine: object) -> object:
    """The engine loaded once, as a fresh one: default settings, empty KV cache, no drafts or parked prompts.
    Whatever an earlier test left (in any order, and however far a generation cancelled on a timer got) would
    otherwise decide where this test's tokens sit in the cache, hence the order of the floating-point sums, hence a
    near-tie between two tokens."""
    from greenpatch.engine.kvplan import DEFAULT_REUSE

    engine = _loaded_tiny_engine
    settings = {"reuse": DEFAULT_REUSE, "speculate": True, "heal": True, "park": True}
    for name, value in settings.items():
        setattr(engine, name, value)
    engine._clear()  # type: ignore[attr-defined]
    engine._drafts.clear()  # type: ignore[attr-defined]
    return engine
