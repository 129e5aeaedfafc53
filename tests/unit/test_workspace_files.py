"""The user's files: line endings and encodings survive a fix byte for byte, and writes are atomic."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from greenpatch.errors import UnreadableFile, WriteError
from greenpatch.workspace.files import (
    decode_source,
    read_source,
    split_lines,
    with_endings,
    write_file,
    write_files,
)


def test_split_lines_splits_only_at_line_breaks_and_joins_back() -> None:
    text = "a\r\nb\x0cc\rd\ne"
    assert split_lines(text) == [("a", "\r\n"), ("b\x0cc", "\r"), ("d", "\n"), ("e", "")]
    assert split_lines("x\n") == [("x", "\n"), ("", "")]
    assert "".join(c + e for c, e in split_lines(text)) == text


def test_a_changed_line_of_a_crlf_file_keeps_crlf_and_the_others_are_untouched() -> None:
    original = "def f(a, b):\r\n    return a - b\r\n"
    assert with_endings(original, "def f(a, b):\n    return a + b\n") == "def f(a, b):\r\n    return a + b\r\n"


def test_a_cr_only_file_stays_cr_only() -> None:
    assert with_endings("x = 1\ry = 2\r", "x = 1\ny = 3\n") == "x = 1\ry = 3\r"


def test_a_mixed_file_keeps_every_line_its_own_ending() -> None:
    original = "a = 1\r\nb = 2\nc = 3\r\nd = 4\n"
    new = with_endings(original, "a = 1\nb = 20\nc = 3\nd = 4\n")
    assert new == "a = 1\r\nb = 20\nc = 3\r\nd = 4\n"


def test_added_lines_take_the_files_most_common_ending() -> None:
    original = "def f():\r\n    return 1\r\n"
    assert with_endings(original, "def f():\n    x = 1\n    return x\n") == "def f():\r\n    x = 1\r\n    return x\r\n"


def test_lines_a_rewrite_keeps_keep_their_own_endings() -> None:
    original = "def f():\r\n    a = 1\n    b = 2\r\n    return a\r\n"
    new = with_endings(original, "def f():\n    a = 1\n    extra = 0\n    b = 2\n    return a + b\n")
    assert new == "def f():\r\n    a = 1\n    extra = 0\r\n    b = 2\r\n    return a + b\r\n"


def test_a_file_without_a_final_newline_gets_none_and_appending_gives_the_old_last_line_one() -> None:
    assert with_endings("a\r\nb", "a\nc") == "a\r\nc"
    assert with_endings("a\r\nb", "a\nb\nc") == "a\r\nb\r\nc"


def test_a_bom_is_read_as_the_encoding_and_written_back() -> None:
    data = b"\xef\xbb\xbfx = 1\r\n"
    source = decode_source(data)
    assert source.text == "x = 1\r\n" and source.bom
    assert source.encode(source.text) == data


def test_a_coding_cookie_decides_the_encoding() -> None:
    data = "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1")
    source = decode_source(data)
    assert source.encoding == "iso-8859-1" and "café" in source.text and not source.utf8
    assert source.encode(source.text) == data


def test_bytes_that_do_not_decode_are_refused() -> None:
    with pytest.raises(UnreadableFile):
        decode_source(b"x = '\xff\xfe'\n")
    with pytest.raises(UnreadableFile):
        decode_source(b"# -*- coding: no-such-codec -*-\n")


def test_a_write_keeps_the_files_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "calc.py"
    target.write_bytes(b"old\r\n")
    target.chmod(0o640)
    write_file(target, b"new\r\n")
    assert target.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calc.py"]


def test_a_symlinked_file_is_written_through_and_the_link_stays(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_text("old\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    write_file(link, b"new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_read_only_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "calc.py"
    target.write_text("old\n")
    target.chmod(0o444)
    with pytest.raises(WriteError, match="read-only"):
        write_file(target, b"new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calc.py"]


def test_when_one_file_cannot_be_written_no_file_is_changed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("a\n")
    second.write_text("b\n")
    second.chmod(0o444)
    with pytest.raises(WriteError, match="no file was changed"):
        write_files({first: b"A\n", second: b"B\n"})
    assert first.read_text() == "a\n" and second.read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


@pytest.fixture
def full_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 64 KiB tmpfs holding one file, filled to the last byte (needs root to mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=False).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        (mount / "calc.py").write_bytes(b"def f():\r\n    return 1\r\n")
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 512):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_stops_the_write_and_the_original_stays_intact(full_disk: Path) -> None:
    target = full_disk / "calc.py"
    before = target.read_bytes()
    with pytest.raises(WriteError, match="No space left on device"):
        write_file(target, b"def f():\r\n    return 2\r\n" + b"# padding\r\n" * 1000)
    assert target.read_bytes() == before
    assert sorted(p.name for p in full_disk.iterdir()) == ["calc.py", "filler"]


def test_reading_keeps_the_line_endings_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "calc.py"
    target.write_bytes(b"a = 1\r\nb = 2\r\n")
    source = read_source(target)
    assert source.text == "a = 1\r\nb = 2\r\n" and source.lf_text == "a = 1\nb = 2\n"
    assert source.render("a = 1\nb = 3\n") == "a = 1\r\nb = 3\r\n"
