"""Fixtures for tests with the real tiny model (SmolLM2-135M) through llama.cpp (its path: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path) -> Iterator[object]:
    from greenpatch.engine.llama import LlamaEngine

    engine = LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048)
    yield engine
    engine.close()
