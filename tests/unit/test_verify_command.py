"""`greenpatch test`: builds the map on the first run, then runs only what a saved edit affects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from greenpatch.cli import main
from verify_helpers import checksum, copy_workspace


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return copy_workspace("verify_clean", tmp_path)


def test_a_changed_file_that_does_not_exist_is_a_one_line_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(project), "--changed", "calc/missing.py"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "greenpatch: error: --changed calc/missing.py: no such file"


@pytest.mark.slow
def test_first_run_builds_the_map_and_a_saved_edit_then_runs_only_affected_tests(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(project)]) == 0
    first = capsys.readouterr().out
    assert "selection: all" in first and "7 test(s): 7 passed" in first
    ops = project / "calc/ops.py"
    ops.write_text(ops.read_text().replace("return a - b", "return b - a"))
    before = checksum(project)
    assert main(["test", str(project), "--changed", str(ops), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["level"] == "coverage"
    assert report["selected"] == ["tests/test_ops.py::test_sub", "tests/test_report.py::test_balance"]
    assert [r["outcome"] for r in report["results"]] == ["failed", "failed"]
    assert checksum(project) == before
