"""A user mistake on the command line is one line on stderr and a non-zero exit, never a traceback or a usage
block; a module that does not parse is reported at its own file and line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from greenpatch.cli import main
from greenpatch.verify.results import build_results

DATA = Path(__file__).parents[1] / "data"


def greenpatch(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "greenpatch", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, env={**os.environ, **(env or {})})


def assert_one_line_error(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("greenpatch: error: ")
    for word in words:
        assert word in lines[0]


# --- argparse ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["repair", "--candidates", "0", "."], ["--candidates", "at least 1"]),
    (["frobnicate"], ["frobnicate"]),
    (["index"], ["path"]),
    (["model"], ["ACTION"]),
    (["index", ".", "--no-such-option"], ["--no-such-option"]),
])
def test_an_argument_mistake_is_one_line_on_stderr_and_exit_2(capsys, argv, words):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("greenpatch: error: ") and "usage:" not in lines[0]
    assert all(word in lines[0] for word in words)
    assert captured.out == ""


def test_no_command_is_one_line_that_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit:
        main([])
    assert exit.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("greenpatch: error: choose a command: serve, doctor") and "repair" in line


def test_the_one_line_says_where_to_get_help(capsys):
    with pytest.raises(SystemExit):
        main(["repair", "--rounds", "x", "."])
    assert "greenpatch repair --help" in capsys.readouterr().err


def test_help_still_prints_the_usage_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["repair", "--help"])
    assert exit.value.code == 0
    assert "usage:" in capsys.readouterr().out


# --- the models folder ---------------------------------------------------------------------------------------


def test_a_models_folder_that_is_a_file_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    a_file = tmp_path / "models"
    a_file.write_text("not a folder")
    for args in (["model", "install", "tiny"], ["model", "list"], ["model", "path", "tiny"]):
        run = greenpatch(*args, env={"GREENPATCH_MODELS_DIR": str(a_file)})
        assert_one_line_error(run, str(a_file), "GREENPATCH_MODELS_DIR", "not a folder")


def test_a_models_folder_that_cannot_be_created_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    inside_a_file = a_file / "models"  # no one can create this, root included
    run = greenpatch("model", "install", "tiny", env={"GREENPATCH_MODELS_DIR": str(inside_a_file)})
    assert_one_line_error(run, str(inside_a_file), "GREENPATCH_MODELS_DIR")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_models_folder_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir(mode=0o555)
    run = greenpatch("model", "install", "tiny", env={"GREENPATCH_MODELS_DIR": str(folder)})
    assert_one_line_error(run, str(folder), "GREENPATCH_MODELS_DIR")


# --- a module that does not parse ----------------------------------------------------------------------------

PYTEST_SYNTAX_ERROR = """\
/venv/lib/python3.11/site-packages/_pytest/python.py:528: in importtestmodule
    mod = import_path(
/venv/lib/python3.11/site-packages/_pytest/assertion/rewrite.py:185: in exec_module
    exec(co, module.__dict__)
tests/test_calc.py:1: in <module>
    from calc import add
E     File "calc.py", line 1
E       def add(a, b)
E                    ^
E   SyntaxError: expected ':'"""


def test_a_collection_error_from_a_syntax_error_names_the_module_and_line() -> None:
    records = [{"event": "start"},
               {"event": "collect-error", "nodeid": "tests/test_calc.py", "message": PYTEST_SYNTAX_ERROR}]
    (result,), _ = build_results(records, Path("/sandbox/src"), "")
    assert result.message.splitlines()[0] == "calc.py:1: SyntaxError: expected ':'"
    assert "importtestmodule" not in result.message


def test_other_collection_errors_keep_pytests_text() -> None:
    message = "tests/test_calc.py:1: in <module>\n    import nothing\nE   ModuleNotFoundError: No module named 'nothing'"
    records = [{"event": "collect-error", "nodeid": "tests/test_calc.py", "message": message}]
    (result,), _ = build_results(records, Path("/sandbox/src"), "")
    assert result.message == message


@pytest.mark.slow
def test_greenpatch_test_reports_a_syntax_error_at_the_modules_line(tmp_path: Path) -> None:
    project = tmp_path / "buggy_syntax"
    shutil.copytree(DATA / "buggy_syntax", project)
    run = greenpatch("test", str(project), "--all", timeout=300)
    assert "calc.py:1: SyntaxError: expected ':'" in run.stdout
    assert "importtestmodule" not in run.stdout + run.stderr
