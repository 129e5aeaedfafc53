"""Helpers for the verification tests: private copies of sample workspaces, checksums, leftover checks."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from greenpatch.config import VerifySettings

DATA = Path(__file__).resolve().parents[1] / "data"
# A sandboxed run's time limit where the limit is not what a test checks: the product's default (300 s). A run ends
# when its tests do, so a quiet machine is no slower; 20-60 s is close to what one run of these small workspaces
# takes on a busy machine (38 s at load 28 on 2 cores).
RUN_LIMIT = VerifySettings().run_timeout


def copy_workspace(name: str, target: Path) -> Path:
    dest = target / name
    shutil.copytree(DATA / name, dest)
    return dest


def checksum(root: Path) -> str:
    """Hash of every path, mode and content under `root` (detects any write, delete or new file)."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        digest.update(str(sorted(dirs)).encode())
    return digest.hexdigest()


def processes_with(marker: str, under: int = 0, orphans: bool = False) -> list[int]:
    """Pids (not zombies) whose command line contains `marker`; with `under`, only descendants of that pid (other
    test sessions on a shared machine run the same programs), and with `orphans` those adopted by init as well
    (whoever's they were: where a process that escaped its sandbox ends up)."""
    found, parents = [], {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path("/proc", name, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state, ppid = Path("/proc", name, "stat").read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue
        parents[int(name)] = int(ppid)
        if marker in cmdline and state != "Z":
            found.append(int(name))
    return [pid for pid in found
            if not under or (orphans and parents[pid] == 1) or _descends(pid, under, parents)]


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = parents.get(pid, 0)
        if pid == ancestor:
            return True
    return False


def session_gone(sid: int) -> bool:
    try:
        os.killpg(sid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
