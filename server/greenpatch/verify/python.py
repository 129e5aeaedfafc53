"""Which interpreter runs the workspace's tests, and what it offers them (`probe`)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from greenpatch.errors import VerifyError


def _venv_python(venv: Path) -> Path | None:
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def resolve_python(root: Path, configured: str = "") -> str:
    """The configured interpreter (a path, or a name on PATH) > root/.venv > root/venv > greenpatch's own.
    A configured interpreter that does not exist is a VerifyError, never a silent fallback."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute() and os.sep not in configured and "/" not in configured:
            found = shutil.which(configured)
            if found:
                return found
        elif path.is_absolute() or (root / path).exists():
            path = path if path.is_absolute() else root / path
            if path.exists() and os.access(path, os.X_OK):
                return str(path)
        raise VerifyError(
            f"the configured Python interpreter {configured!r} does not exist",
            "fix the greenpatch.python setting or the --python option",
        )
    for name in (".venv", "venv"):
        venv = _venv_python(root / name)
        if venv:
            return str(venv)
    return sys.executable


MIN_PYTHON = (3, 8)
MIN_PYTEST = (7, 0)
PROBE_TIMEOUT = 60.0

# Runs in the project's interpreter (Python 3.8 syntax) with the plugin folder on its path: the same test of
# coverage.py the plugin makes, so the probe and the run cannot disagree.
_PROBE = """
import json, sys
sys.path[:] = [p for p in sys.path if p]  # not the working directory `-c` puts first
out = {"version": sys.version.split()[0], "pytest": "", "pytest_error": "", "coverage": "", "coverage_why": "",
       "pytest_cov": ""}
try:
    import pytest
    out["pytest"] = str(pytest.__version__)
except Exception as exc:
    out["pytest_error"] = type(exc).__name__ + ": " + str(exc)
try:
    import greenpatch_lines
    module, out["coverage_why"] = greenpatch_lines.usable_coverage()
    if module is not None:
        out["coverage"] = str(module.__version__)
except Exception as exc:
    out["coverage_why"] = "cannot check coverage: " + type(exc).__name__
try:
    from importlib import metadata
    if not out["coverage"]:
        try:
            out["coverage_installed"] = metadata.version("coverage")
        except Exception:
            pass
    out["pytest_cov"] = metadata.version("pytest-cov")
except Exception:
    pass
print("GREENPATCH-PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class Interpreter:
    """What the project's interpreter offers greenpatch's test runs (found by `probe`)."""

    python: str
    version: str = ""  # "" when the probe could not run it
    pytest: str = ""  # pytest's version; "" when it does not import (pytest_error says why)
    pytest_error: str = ""
    coverage: str = ""  # the version of a coverage.py usable for per-test contexts; "" when the tracer is used
    coverage_why: str = ""  # why not coverage.py ("coverage not installed", "coverage 4.5.4 is older than 5.0")
    pytest_cov: str = ""  # pytest-cov's version when installed (switched off in greenpatch's runs)
    error: str = ""  # the probe itself failed

    @property
    def engine(self) -> str:
        """What records lines per test: "coverage" (the project's coverage.py), "tracer" (greenpatch's own), or ""
        when unknown (the plugin then decides by itself)."""
        if not self.version:
            return ""
        return "coverage" if self.coverage else "tracer"

    def describe(self) -> str:
        if not self.version:
            return f"{self.python} did not answer: {self.error}"
        parts = [f"Python {self.version}", f"pytest {self.pytest}" if self.pytest else "no pytest"]
        if self.coverage:
            parts.append(f"coverage: coverage.py {self.coverage}")
        else:
            parts.append(f"coverage: greenpatch's tracer ({self.coverage_why})")
        if self.pytest_cov:
            parts.append(f"pytest-cov {self.pytest_cov} switched off in greenpatch's runs")
        return ", ".join(parts)

    def check(self) -> None:
        """VerifyError when this interpreter is older than what greenpatch's test runs support. A missing pytest
        is left to the run, which reports it as its error."""
        if self.version and _version(self.version) < MIN_PYTHON:
            raise VerifyError(
                f"{self.python} is Python {self.version}; greenpatch runs tests with Python 3.8 or newer",
                "set greenpatch.python (or --python) to a newer interpreter of the project",
            )
        if self.pytest and _version(self.pytest) < MIN_PYTEST:
            raise VerifyError(
                f"{self.python} has pytest {self.pytest}; greenpatch needs pytest 7.0 or newer",
                f"upgrade it in the project's environment: {self.python} -m pip install 'pytest>=7'",
            )


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


_probed: dict[tuple[object, ...], Interpreter] = {}
_probe_lock = threading.Lock()


def _probe_key(python: str) -> tuple[object, ...]:
    """The interpreter and what installing or removing a package changes (its site-packages folders' mtimes)."""
    path = Path(python)
    stamps: list[object] = [python]
    for candidate in (path, *sorted(path.parent.parent.glob("lib/python*/site-packages"))):
        try:
            stamps.append(candidate.stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def probe(python: str, env: dict[str, str]) -> Interpreter:
    """Ask `python` (once per interpreter and state of its site-packages) for its version, pytest, coverage.py
    and pytest-cov. Runs the project's interpreter: only for trusted workspaces. Never raises."""
    key = _probe_key(python)
    with _probe_lock:
        known = _probed.get(key)
    if known is not None:
        return known
    try:
        done = subprocess.run([python, "-c", _PROBE], env=env, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, cwd=env.get("TMPDIR") or None, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("GREENPATCH-PROBE ")), "")
        if not line:
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            return Interpreter(python, error=tail[:300])
        data = json.loads(line.split(" ", 1)[1])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return Interpreter(python, error=str(exc)[:300])
    why = str(data.get("coverage_why") or "")
    if why == "coverage not installed" and data.get("coverage_installed"):
        why = f"coverage {data['coverage_installed']} does not import"
    found = Interpreter(
        python, version=str(data.get("version") or "?"), pytest=str(data.get("pytest") or ""),
        pytest_error=str(data.get("pytest_error") or ""), coverage=str(data.get("coverage") or ""),
        coverage_why=why, pytest_cov=str(data.get("pytest_cov") or ""),
    )
    with _probe_lock:
        _probed[key] = found
    return found
