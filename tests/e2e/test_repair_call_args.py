"""`greenpatch repair --model none` as a user runs it, on a small package whose bug is a keyword argument the caller
forgot to pass on to a function in another module: the fix comes from the callee's signature, is verified by the
tests, and the JSON report says what kind of edit it is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.slow
def test_a_forgotten_keyword_argument_is_added_from_the_callees_signature_without_a_model(tmp_path: Path) -> None:
    root = tmp_path / "textkit"
    shutil.copytree(DATA / "buggy_missing_kwarg", root)
    before = (root / "textkit" / "render.py").read_text()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "server"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "greenpatch", "repair", str(root), "--model", "none", "--json"],
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 1, done.stderr[-2000:]  # every failure got a verified fix
    data = json.loads(done.stdout)
    best = data["fixes"][0]
    assert best["verified"] and best["kind"] == "call-args" and best["path"] == "textkit/render.py"
    assert "+    return \"\\n\".join(wrap_lines(words, width, break_long_words=break_long_words))\n" in best["diff"]
    assert best["fixes"] == ["tests/test_render.py::test_paragraph_keeps_a_long_url_whole_when_asked"]
    assert (root / "textkit" / "render.py").read_text() == before  # shown, not written without --apply
