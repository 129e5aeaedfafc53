"""`greenpatch complete FILE:LINE:COL` with the fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenpatch.completion.command import complete_command, parse_location
from greenpatch.errors import UsageError


def test_the_location_is_one_based_and_checked(tmp_path: Path) -> None:
    source = tmp_path / "calc.py"
    source.write_text("x = 1\n")
    assert parse_location(f"{source}:1:3") == (source.resolve(), 0, 2)
    with pytest.raises(UsageError, match="FILE:LINE:COL"):
        parse_location("calc.py")
    with pytest.raises(UsageError, match="no such file"):
        parse_location(f"{tmp_path / 'missing.py'}:1:1")


def test_complete_prints_the_suggestion_and_timing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return a +\n")
    assert complete_command(f"{source}:2:15", model="fake", verbose=True, gate=True) == 0
    out, err = capsys.readouterr()
    assert out == " b\n"
    assert "mean logprob" in err and "shown" in err


def test_a_line_its_docstring_examples_fail_is_withheld_and_verbose_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "calc.py"
    source.write_text('def add(a, b):\n    """\n    >>> add(1, 2)\n    4\n    """\n    return a +\n')
    assert complete_command(f"{source}:6:15", model="fake", verbose=True, gate=False) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "withheld (docstring examples: failed)" in err


def test_nothing_to_suggest_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "calc.py"
    source.write_text("value = 42\n")
    assert complete_command(f"{source}:1:11", model="fake", verbose=False, gate=True) == 1
    assert capsys.readouterr().out == ""
