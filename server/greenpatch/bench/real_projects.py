"""The real projects of `greenpatch bench real`: pinned PyPI source distributions, each in a virtualenv of its own.

Each project is built once into a cache folder (the unpacked sdist and its venv, reused while the spec is the same)
with the environments real users have: an older pytest without coverage, an old coverage, the oldest Python
greenpatch supports. Only the project's test dependencies go into its venv, never the project itself: its tests
import it from the project folder (`python -m pytest` puts the folder first on the path), so a sandboxed copy with a
slip in it is what the tests see. A step that fails raises SetupFailed naming the step; the bench counts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from greenpatch.errors import GreenpatchError

PIP_TIMEOUT = 600.0


class SetupFailed(GreenpatchError):
    """A project could not be prepared (download, unpack, venv, install, or its own suite does not pass)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True)
class Project:
    name: str  # the PyPI name, or a folder's name for a local project
    version: str
    python: str  # "3.10": the newest pyenv 3.10.x; a path: that interpreter as it is (no venv built)
    requires: tuple[str, ...] = ()  # test dependencies installed into the project's venv
    environment: str = ""  # what this venv stands for, for the report
    # (path, old, new): the upstream fix of a test that fails on the pinned pytest, applied after unpacking
    patches: tuple[tuple[str, str, str], ...] = ()
    local: str = ""  # a folder to copy instead of a PyPI download (tests, a user's own project)

    def key(self) -> str:
        spec = json.dumps(asdict(self), sort_keys=True)
        return f"{self.name}-{self.version}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


PROJECTS: dict[str, Project] = {
    "boltons": Project("boltons", "24.0.0", "3.10", ("pytest==7.0.1",), "Python 3.10, pytest 7.0.1, no coverage"),
    "toolz": Project("toolz", "0.12.0", "3.9", ("pytest==7.4.4",), "Python 3.9, pytest 7.4.4, no coverage"),
    "more-itertools": Project("more-itertools", "10.1.0", "3.8", ("pytest==8.3.5", "coverage==6.5.0"),
                              "Python 3.8 (the oldest supported), pytest 8.3.5, coverage 6.5.0"),
    "python-dateutil": Project(
        "python-dateutil", "2.8.2", "3.11", ("pytest==7.4.4", "pytest-cov==5.0.0", "six", "freezegun", "hypothesis"),
        "Python 3.11, pytest 7.4.4, pytest-cov 5.0.0 (coverage 7)",
        # pytest 7 warns on pytest.warns(None), and the project's filterwarnings=error makes that a failure;
        # 2.9.0 moved to warnings.catch_warnings (and to a src layout, which needs an install: hence 2.8.2)
        (("dateutil/test/test_internals.py", "import sys\n", "import sys\nimport warnings\n"),
         ("dateutil/test/test_internals.py", "pytest.warns(None)", "warnings.catch_warnings(record=True)")),
    ),
}


@dataclass
class Prepared:
    project: Project
    source: Path  # the pristine project folder (never written after setup)
    python: str  # the interpreter its tests run with
    cached: bool
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)


def find_python(version: str) -> str:
    """The interpreter for "3.8" (the newest pyenv 3.8.x, else python3.8 on PATH), or `version` if it is a path."""
    if os.sep in version:
        if not Path(version).exists():
            raise SetupFailed("python", f"{version}: no such interpreter")
        return version
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted((p for p in root.glob(f"{version}.*") if re.fullmatch(rf"{re.escape(version)}\.\d+", p.name)),
                   key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if found and (found[-1] / "bin" / "python").exists():
        return str(found[-1] / "bin" / "python")
    on_path = shutil.which(f"python{version}")
    if on_path:
        return on_path
    raise SetupFailed("python", f"no Python {version} (looked in {root} and on PATH)")


def _run(step: str, argv: list[str], cwd: Path | None = None, timeout: float = PIP_TIMEOUT) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SetupFailed(step, f"timed out after {timeout:.0f} s: {' '.join(argv)}") from None
    except OSError as exc:
        raise SetupFailed(step, str(exc)) from None
    if done.returncode != 0:
        tail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()
                and not line.startswith("WARNING: Location")][-3:]
        raise SetupFailed(step, f"exit {done.returncode}: {' | '.join(tail)[:400]}")
    return done.stdout


def _unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = {n.split("/", 1)[0] for n in names}
        if len(top) != 1 or any(n.startswith("/") or ".." in n.split("/") for n in names):
            raise SetupFailed("unpack", f"{archive.name}: not one top folder")
        tar.extractall(into)  # names checked above: no absolute paths, no `..`
    return into / top.pop()


def prepare(project: Project, cache: Path) -> Prepared:
    """The project unpacked and its venv built under `cache` (reused when already there and complete)."""
    import time

    started = time.monotonic()
    home = cache / project.key()
    ready = home / "ready.json"
    if ready.is_file() and not project.local:  # a local folder may have changed: copied afresh each run
        data = json.loads(ready.read_text(encoding="utf-8"))
        return Prepared(project, Path(data["source"]), data["python"], True, 0.0, data.get("versions", {}))
    if home.exists():
        shutil.rmtree(home)  # a half-built one from an interrupted run
    home.mkdir(parents=True)
    base = find_python(project.python)
    if project.local:
        source = home / "src" / project.name
        shutil.copytree(project.local, source, ignore=shutil.ignore_patterns(".greenpatch", "__pycache__", ".venv"))
    else:
        venv = home / "venv"
        _run("venv", [base, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        _run("pip download", [python, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                              f"{project.name}=={project.version}", "-d", str(home / "dl")])
        archives = sorted((home / "dl").glob("*.tar.gz"))
        if not archives:
            raise SetupFailed("pip download", "no .tar.gz source distribution")
        source = _unpack(archives[0], home / "src")
    for rel, old, new in project.patches:
        path = source / rel
        text = path.read_text(encoding="utf-8")
        if old not in text:
            raise SetupFailed("patch", f"{rel}: {old!r} not found")
        path.write_text(text.replace(old, new), encoding="utf-8")
    if project.local:
        python = base
    elif project.requires:
        _run("pip install", [python, "-m", "pip", "install", "-q", *project.requires])
    versions = _versions(python)
    ready.write_text(json.dumps({"source": str(source), "python": python, "versions": versions}), encoding="utf-8")
    return Prepared(project, source, python, False, round(time.monotonic() - started, 1), versions)


def _versions(python: str) -> dict[str, str]:
    script = ("import sys, json\nfrom importlib import metadata as m\nout = {'python': sys.version.split()[0]}\n"
              "for n in ('pytest', 'coverage', 'pytest-cov'):\n"
              "    try: out[n] = m.version(n)\n    except Exception: out[n] = ''\nprint(json.dumps(out))\n")
    try:
        return json.loads(_run("versions", [python, "-c", script], timeout=60))  # type: ignore[no-any-return]
    except (SetupFailed, ValueError):
        return {}


def local_project(folder: Path, python: str | None) -> Project:
    return Project(folder.name, "local", python or sys.executable, environment="local folder", local=str(folder))
