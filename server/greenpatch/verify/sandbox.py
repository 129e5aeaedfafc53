"""Throwaway copies of a workspace's source tree.

Layout: one private work folder per Verifier (`greenpatch-verify-*` in the system temp dir) holding

* `pristine/`: a real copy of the workspace's source tree, brought up to date before every run by comparing
  (size, mtime) with the workspace, so only edited files are copied again;
* `run-*/src/`: one sandbox per run, a *hardlink farm* of `pristine/` (directories created, files linked), with the
  candidate's changed files written as new files (never through a link), plus `run-*/home`, `run-*/tmp` and
  `run-*/out` (results, coverage data);
* `pristine/**/__pycache__/*.pyc`: checked-hash byte code of the sources warm runs imported, written by the zygote
  (zygote.py) and copied into sandboxes next to unchanged sources only; the interpreter and pytest compare the
  source's hash on every load, and a pyc is dropped when its source is copied again.

The workspace itself is never linked, so nothing a test does to a sandbox file can reach it. A test that writes
through a link changes `pristine/`; `Pristine.repair()` compares every file's (size, mtime, ctime) after each run
and copies the changed ones again from the workspace (ctime cannot be set back by a process); as linking itself
changes a file's ctime, a file whose size and mtime are unchanged is compared by content hash before that.
Measured (bench `sandbox_ms`): a hardlink farm is several times faster than copying `pristine/` per run.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from greenpatch.errors import VerifyError

# Folders never copied into a sandbox: version control, virtual environments, caches and build output.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "node_modules", "__pycache__", ".pytest_cache",
    ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".eggs", "build", "dist", ".idea", ".hypothesis",
    ".ipynb_checkpoints", "htmlcov", ".coverage_cache", ".greenpatch",
})
SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".dist-info")
MAX_FILE_BYTES = 50 * 1024 * 1024


def skip_dir(path: Path) -> bool:
    name = path.name
    return name in SKIP_DIRS or name.endswith(SKIP_SUFFIXES) or (path / "pyvenv.cfg").exists()


def source_files(root: Path) -> dict[str, os.stat_result]:
    """Workspace-relative POSIX path -> stat of every file a sandbox gets (symlinked files are followed,
    symlinked folders skipped so a link cannot loop or lead out of the tree)."""
    found: dict[str, os.stat_result] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not skip_dir(path):
                        stack.append(path)
                    continue
                if entry.name.endswith(SKIP_SUFFIXES) or entry.name in (".coverage",):
                    continue
                st = os.stat(path)  # follows a symlinked file
            except OSError:
                continue  # dangling link, raced deletion
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES:
                found[path.relative_to(root).as_posix()] = st
    return found


@dataclass
class _Entry:
    size: int
    mtime_ns: int  # of the workspace file when copied
    signature: tuple[int, int, int]  # (size, mtime_ns, ctime_ns) of the pristine copy
    digest: bytes = b""  # of the pristine copy's content


def _digest(path: Path) -> bytes:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(), digest_size=16).digest()


class Pristine:
    """A real copy of the workspace's source tree, kept in sync incrementally."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = root
        self.path = base / "pristine"
        self.path.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, _Entry] = {}
        # source -> its byte-compiled files under __pycache__, made by the zygote and copied (never linked: no test
        # can write to these) into sandboxes next to unchanged sources; checked-hash pycs, so the interpreter and
        # pytest compare the source's hash on every load and a pyc never stands for other content
        self._compiled: dict[str, list[str]] = {}

    def sync(self) -> list[str]:
        """Copy new and changed workspace files, remove deleted ones. Returns the paths copied or removed."""
        current = source_files(self.root)
        touched: list[str] = []
        for rel in list(self._entries):
            if rel not in current:
                (self.path / rel).unlink(missing_ok=True)
                del self._entries[rel]
                self._drop_compiled(rel)
                touched.append(rel)
        for rel, st in current.items():
            known = self._entries.get(rel)
            if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
                continue
            self._copy(rel, st)
            touched.append(rel)
        return touched

    def _copy(self, rel: str, st: os.stat_result) -> None:
        self._drop_compiled(rel)
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".gp-new")
        try:
            shutil.copyfile(self.root / rel, tmp)
            os.chmod(tmp, 0o644 | (0o111 if st.st_mode & 0o100 else 0))
            os.replace(tmp, target)  # a new inode: sandboxes still linked to the old one keep their content
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise VerifyError(f"cannot copy {rel} into the sandbox: {exc.strerror}") from exc
        pst = os.stat(target)
        self._entries[rel] = _Entry(st.st_size, st.st_mtime_ns, (pst.st_size, pst.st_mtime_ns, pst.st_ctime_ns),
                                    _digest(target))

    def repair(self) -> list[str]:
        """Copy again every pristine file a test changed through a hardlink. Returns their paths."""
        broken: list[str] = []
        for rel, entry in self._entries.items():
            try:
                pst = os.stat(self.path / rel)
                signature = (pst.st_size, pst.st_mtime_ns, pst.st_ctime_ns)
                if signature == entry.signature:
                    continue
                # linking and unlinking the file for a sandbox changes its ctime too: only the content tells
                if signature[:2] == entry.signature[:2] and _digest(self.path / rel) == entry.digest:
                    entry.signature = signature
                    continue
            except OSError:
                pass
            broken.append(rel)
        for rel in broken:
            try:
                self._copy(rel, os.stat(self.root / rel))
            except OSError:
                (self.path / rel).unlink(missing_ok=True)
                del self._entries[rel]
        return broken

    def add_compiled(self, rel: str, pycs: list[str]) -> None:
        """Record the byte-compiled files of `rel` (relative paths under this copy, inside __pycache__ next to it)."""
        folder = rel.rpartition("/")[0]
        expected = f"{folder}/__pycache__/" if folder else "__pycache__/"
        good = []
        for pyc in pycs:
            if not (isinstance(pyc, str) and pyc.startswith(expected) and pyc.endswith(".pyc")
                    and "/" not in pyc[len(expected):] and ".." not in pyc):
                continue
            try:
                pst = os.stat(self.path / pyc)
            except OSError:
                continue
            if stat.S_ISREG(pst.st_mode):
                good.append(pyc)
        if rel in self._entries and good:
            self._compiled[rel] = sorted(set(self._compiled.get(rel, [])) | set(good))
        else:
            for pyc in good:
                (self.path / pyc).unlink(missing_ok=True)

    def compiled(self) -> dict[str, list[str]]:
        """Source -> its recorded byte-compiled files."""
        return {rel: list(pycs) for rel, pycs in self._compiled.items()}

    def _drop_compiled(self, rel: str) -> None:
        for pyc in self._compiled.pop(rel, {}):
            (self.path / pyc).unlink(missing_ok=True)

    def files(self) -> list[str]:
        return list(self._entries)

    def read(self, rel: str) -> str | None:
        try:
            return (self.path / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for rel in sorted(self._entries):
            e = self._entries[rel]
            digest.update(f"{rel}\0{e.size}\0{e.mtime_ns}\n".encode())
        return digest.hexdigest()


def place_tree(src: Path, dst: Path, files: list[str], *, link: bool) -> None:
    """Recreate `files` of `src` under `dst`, as hard links (cheap) or as copies."""
    place = os.link if link else shutil.copyfile
    dst.mkdir(parents=True, exist_ok=True)
    made: set[str] = set()
    for rel in files:
        parent = rel.rpartition("/")[0]
        if parent and parent not in made:
            (dst / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        place(src / rel, dst / rel)


@dataclass
class Sandbox:
    path: Path  # run-* folder
    src: Path  # the copy of the tree; cwd of the test process
    home: Path
    tmp: Path
    out: Path


def make_sandbox(pristine: Pristine, base: Path, changes: dict[str, str], *, link: bool = True) -> Sandbox:
    """A fresh sandbox from `pristine` with `changes` (workspace-relative path -> content) written as new files."""
    path = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    box = Sandbox(path, path / "src", path / "home", path / "tmp", path / "out")
    files = [rel for rel in pristine.files() if rel not in changes]
    place_tree(pristine.path, box.src, files, link=link)
    place_tree(pristine.path, box.src, [pyc for rel, pycs in pristine.compiled().items() if rel not in changes
                                        for pyc in pycs], link=False)
    for rel, content in changes.items():
        target = box.src / rel
        try:
            target.resolve().relative_to(box.src.resolve())
        except ValueError:
            remove_tree(path)
            raise VerifyError(f"changed file {rel!r} is outside the workspace") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # never write through a hardlink
        target.write_text(content, encoding="utf-8")
    for folder in (box.home, box.tmp, box.out):
        folder.mkdir()
    return box


WORK_PREFIX = "greenpatch-verify-"


def make_work_dir() -> Path:
    """The private folder of one Verifier, named after this process so a later one can sweep it if we die."""
    sweep_stale()
    return Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))


def sweep_stale(base: Path | None = None) -> list[Path]:
    """Remove work folders of greenpatch processes that no longer exist (killed before close() could run)."""
    removed: list[Path] = []
    base = base or Path(tempfile.gettempdir())
    try:
        entries = list(base.glob(f"{WORK_PREFIX}*-*"))
    except OSError:
        return removed
    for path in entries:
        pid = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            remove_tree(path)
            removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_tree(path: Path) -> None:
    """Remove a sandbox even when a test made parts of it read-only."""

    def onerror(func: object, name: str, exc: object) -> None:
        try:
            os.chmod(os.path.dirname(name), 0o700)
            os.chmod(name, 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)
        except OSError:
            pass

    if path.exists():
        shutil.rmtree(path, onerror=onerror)
