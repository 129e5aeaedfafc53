"""Tries to undo the read-only mounts (MS_REMOUNT|MS_BIND without MS_RDONLY, on every mount it can see), then
writes the absolute paths greenpatch's own test put into targets.txt (which checks them afterwards: under /tmp a
write lands in the run's private overlay). Passes when no mount could be made writable."""

import ctypes
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MS_REMOUNT, MS_BIND = 32, 4096


def test_cannot_make_the_file_systems_writable_again():
    libc = ctypes.CDLL(None, use_errno=True)
    remounted = []
    with open("/proc/self/mountinfo") as f:
        targets = ["/"] + [line.split()[4] for line in f]
    for target in targets:
        if libc.mount(None, target.encode(), None, MS_REMOUNT | MS_BIND, None) == 0:
            remounted.append(target)
    targets_file = ROOT / "targets.txt"
    for line in targets_file.read_text().splitlines() if targets_file.exists() else []:
        try:
            with open(line, "a") as f:
                f.write("escaped")
        except OSError:
            pass
    assert remounted == []
