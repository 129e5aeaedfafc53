"""Fixtures for tests with the real tiny model (SmolLM2-135M) through llama.cpp."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'greenpatch[llm]')")
    from greenpatch.engine import models

    spec, path = models.resolve_model("tiny")
    assert spec is not None
    if not models.is_installed(spec, path):
        pytest.skip("the tiny test model is not installed (greenpatch model install tiny)")
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path) -> Iterator[object]:
    from greenpatch.engine.llama import LlamaEngine

    engine = LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048)
    yield engine
    engine.close()
