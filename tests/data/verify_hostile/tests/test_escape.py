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


def test_writes_to_a_path_it_was_told_about():
    """greenpatch's own test writes absolute paths (the real workspace, a folder of its own) into targets.txt."""
    targets = ROOT / "targets.txt"
    written = []
    for line in targets.read_text().splitlines() if targets.exists() else []:
        try:
            with open(line, "a") as f:
                f.write("escaped")
            written.append(line)
        except OSError:
            pass
    assert written == []
