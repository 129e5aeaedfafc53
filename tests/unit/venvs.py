"""Real virtualenvs for the compatibility tests: a given Python (from pyenv) with given packages from PyPI.

Built once into a cache folder ($GREENPATCH_TEST_VENVS, else $XDG_CACHE_HOME or ~/.cache, /greenpatch-tests/venvs)
and reused by later runs: the key is the Python version and the exact requirements. A venv is built into a
temporary folder and renamed into place, so an interrupted build is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

PYENV_ROOT = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


class Unavailable(Exception):
    """The venv cannot be built here (no such Python, or PyPI is out of reach): the test is skipped."""


def cache_root() -> Path:
    explicit = os.environ.get("GREENPATCH_TEST_VENVS")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "greenpatch-tests" / "venvs"


def find_python(version: str) -> Path:
    """The interpreter of a pyenv version starting with `version` ("3.9" -> 3.9.18), newest first."""
    versions = PYENV_ROOT / "versions"
    found = sorted((p for p in versions.glob(f"{version}*") if (p / "bin" / "python").exists()),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")], reverse=True)
    if not found:
        raise Unavailable(f"Python {version} is not installed under {versions}")
    return found[0] / "bin" / "python"


def ensure_venv(version: str, requirements: list[str]) -> Path:
    """Path to the python of a venv with Python `version` and exactly `requirements` installed (cached); a ";"
    in `requirements` starts another pip command."""
    base = find_python(version)
    key = hashlib.sha256(f"{base}\n{sorted(requirements)}".encode()).hexdigest()[:12]
    target = cache_root() / f"py{version}-{key}"
    python = target / "bin" / "python"
    if (target / ".complete").exists() and python.exists():
        return python
    building = target.with_name(f"{target.name}.building.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([str(base), "-m", "venv", str(building)], check=True, capture_output=True, timeout=300)
        for step in " ".join(requirements).split(";"):  # ";" separates pip commands (their options differ)
            args = step.split()
            pip = subprocess.run(
                [str(building / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 "--retries", "1", "--timeout", "20", *args],
                capture_output=True, text=True, timeout=900, check=False,
            )
            if pip.returncode != 0:
                raise Unavailable(f"pip install {step.strip()} failed (is PyPI reachable?): "
                                  + (pip.stderr.strip().splitlines() or ["no output"])[-1])
        (building / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        # a venv works after a move when run as `bin/python -m ...` (its scripts' #! lines keep the old path)
        os.replace(building, target)
    except subprocess.SubprocessError as exc:
        raise Unavailable(f"cannot build a Python {version} venv: {exc}") from exc
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return python
