"""Writes everywhere it can guess: home, the temp dir, and folders above the project."""

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_writes_outside_the_project():
    (Path.home() / "greenpatch-escaped.txt").write_text("escaped")
    Path(tempfile.gettempdir(), "greenpatch-escaped.txt").write_text("escaped")
    for up in (ROOT.parent, ROOT.parent.parent):
        try:
            (up / "greenpatch-escaped.txt").write_text("escaped")
        except OSError:
            pass
    assert os.environ.get("HOME", "").startswith(str(ROOT.parent))
