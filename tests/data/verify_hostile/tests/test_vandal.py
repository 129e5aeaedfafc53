"""Overwrites a source file in place (through whatever link the sandbox uses), then deletes the rest."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_corrupts_and_deletes_workspace_files():
    with open(ROOT / "victim" / "core.py", "r+") as f:
        f.write("raise SystemExit('corrupted')\n")
    (ROOT / "pyproject.toml").unlink()
    shutil.rmtree(ROOT / "victim")
    assert not (ROOT / "victim").exists()
