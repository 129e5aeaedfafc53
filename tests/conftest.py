"""Shared fixtures: paths to sample workspaces, copied to a temp dir so tests never touch the repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of the README's buggy example project."""
    target = tmp_path / "example"
    shutil.copytree(DATA / "example", target, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    return target
