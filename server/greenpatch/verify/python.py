"""Which interpreter runs the workspace's tests."""

from __future__ import annotations

import os
import shutil
import sys
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
        found = _venv_python(root / name)
        if found:
            return str(found)
    return sys.executable
