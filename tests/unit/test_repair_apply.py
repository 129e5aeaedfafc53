"""Combining the fixes of one file and writing them: merged line by line, refused when the file moved on."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenpatch.errors import WriteError
from greenpatch.repair.apply import FileChange, Plan, merge, write_plan
from greenpatch.repair.types import Fix
from greenpatch.workspace.files import read_source

ORIGINAL = "def total(values):\r\n    return -sum(values)\r\n\r\n\r\ndef spread(values):\r\n    return max(values) + min(values)\r\n"


def test_two_fixes_of_one_file_merge_and_keep_the_files_line_endings() -> None:
    first = ORIGINAL.replace("-sum", "sum")
    second = ORIGINAL.replace("max(values) + min", "max(values) - min")
    assert merge(ORIGINAL, [first, second]) == first.replace("max(values) + min", "max(values) - min")
    assert merge(ORIGINAL, [second, first]) == merge(ORIGINAL, [first, second])


def test_fixes_that_touch_the_same_line_do_not_merge() -> None:
    assert merge(ORIGINAL, [ORIGINAL.replace("-sum", "sum"), ORIGINAL.replace("-sum", "+sum")]) is None


def test_a_fix_adding_lines_merges_with_one_below_it() -> None:
    grown = ORIGINAL.replace(
        "    return -sum(values)\r\n", "    result = sum(values)\r\n    return result\r\n"
    )
    second = ORIGINAL.replace("max(values) + min", "max(values) - min")
    merged = merge(ORIGINAL, [grown, second])
    assert merged is not None and "return result\r\n" in merged and "max(values) - min" in merged


def plan_for(root: Path, new_text: str) -> Plan:
    source = read_source(root / "stats.py")
    fix = Fix(
        path="stats.py",
        new_text=new_text,
        diff="",
        title="fix",
        generator="mutation",
        tests_run=1,
        tests_passed=1,
        verified=True,
        original=source.text,
    )
    return Plan(files={"stats.py": FileChange("stats.py", source, new_text, [fix])})


def test_write_plan_writes_the_files_own_bytes(tmp_path: Path) -> None:
    (tmp_path / "stats.py").write_bytes(b"\xef\xbb\xbf" + ORIGINAL.encode())
    assert write_plan(tmp_path, plan_for(tmp_path, ORIGINAL.replace("-sum", "sum"))) == ["stats.py"]
    assert (tmp_path / "stats.py").read_bytes() == b"\xef\xbb\xbf" + ORIGINAL.replace("-sum", "sum").encode()


def test_a_file_changed_or_undecodable_since_the_repair_read_it_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "stats.py"
    target.write_text(ORIGINAL, newline="")
    plan = plan_for(tmp_path, ORIGINAL.replace("-sum", "sum"))
    for now in (ORIGINAL.replace("values", "items").encode(), b"x = '\xff'\n"):
        target.write_bytes(now)
        with pytest.raises(WriteError, match="no file was changed"):
            write_plan(tmp_path, plan)
        assert target.read_bytes() == now


def test_the_diff_keeps_crs_and_splits_only_at_line_breaks() -> None:
    from greenpatch.repair.candidates import unified_diff

    old = "a = 1\r\n\x0c\r\nb = 2\r\n"
    diff = unified_diff("x.py", old, old.replace("b = 2", "b = 3"))
    assert "-b = 2\r\n+b = 3\r\n" in diff and " \x0c\r\n" in diff and "No newline" not in diff
    cr_only = unified_diff("x.py", "a = 1\rb = 2\r", "a = 1\rb = 3\r")
    assert "-b = 2\r\n+b = 3\r\n" in cr_only and "No newline" not in cr_only
