import json
import subprocess
import sys

import pytest
from greenpatch.cli import build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "doctor", "index", "test", "model", "complete", "repair", "bench"):
        assert command in out


def test_a_missing_folder_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["index", "/no/such/folder"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/no/such/folder: no such directory" in err[0]
    assert "Traceback" not in "\n".join(err)


def test_index_prints_symbols_and_a_summary(tmp_path):
    (tmp_path / "m.py").write_text("def hello():\n    pass\n")
    out = subprocess.run(
        [sys.executable, "-m", "greenpatch", "index", str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "function hello" in out
    assert out.strip().splitlines()[-1].startswith("1 files, 1 symbols, 0 syntax errors")


def test_every_subcommand_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert all(action.help for action in sub._choices_actions)


def test_the_completion_benchmark_writes_a_report_with_typing_and_new_line_latency(tmp_path):
    report = tmp_path / "bench.json"
    assert main(["bench", "complete", "--model", "fake", "--tasks", "0", "--keystrokes", "8", "-o", str(report)]) == 0
    latency = json.loads(report.read_text())["latency"]["fake"]
    assert latency["keystrokes"] == 8 and latency["p50"] is not None
    assert latency["new_place"] >= 1, "the first request at each line is reported on its own"


def test_the_quality_benchmark_can_put_the_cursor_after_the_indentation(tmp_path):
    from greenpatch.bench.humaneval import _eval_dir
    from greenpatch.errors import UsageError

    try:
        _eval_dir()
    except UsageError:
        pytest.skip("the evaluation data (../shared/eval) is not beside this clone")
    report = tmp_path / "bench.json"
    assert main(["bench", "complete", "--model", "fake", "--tasks", "2", "--keystrokes", "0", "--indented",
                 "-o", str(report)]) == 0
    quality = json.loads(report.read_text())["quality"]
    assert quality["tasks"] == 2 and len(quality["results"]) == 2
