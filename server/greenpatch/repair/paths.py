"""Which files are tests, and which file a test id is in (pytest's conventions)."""

from __future__ import annotations

from pathlib import PurePosixPath


def is_test_path(rel: str) -> bool:
    p = PurePosixPath(rel)
    if p.name == "conftest.py" or p.name.startswith("test_") or p.name.endswith("_test.py"):
        return True
    return any(part in ("tests", "test", "testing") for part in p.parts[:-1])


def test_file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]
