"""Writes where a test on the user's machine may write (/tmp, /var/tmp, /dev/shm) and where it should not (/dev),
and looks for disks. greenpatch's own test checks that nothing of it is left on the host."""

import errno
import os
import stat
from pathlib import Path

NAME = "greenpatch-hostile-left-behind"


def test_writes_tmp_and_var_tmp_like_on_the_users_machine():
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        Path(folder, NAME).write_text("left")
        assert Path(folder, NAME).read_text() == "left"


def test_cannot_add_files_to_dev_or_see_a_disk():
    try:
        Path("/dev", NAME).write_text("left")
        created = True
    except OSError:
        created = False
    disks = [n for n in os.listdir("/dev") if stat.S_ISBLK(os.stat(os.path.join("/dev", n)).st_mode)]
    with open("/dev/null", "w") as null:  # the harmless devices still work
        null.write("fine")
    assert (created, disks) == (False, [])


def test_tmp_is_bounded():
    """Fills /tmp with 16 MiB files: a bounded /tmp says "no space left" before 1 GiB."""
    chunk = b"x" * (16 << 20)
    written = 0
    try:
        for i in range(64):
            with open(f"/tmp/fill-{i}", "wb") as f:
                f.write(chunk)
            written += len(chunk)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    else:
        raise AssertionError(f"wrote {written >> 20} MiB to /tmp")
