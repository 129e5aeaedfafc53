"""Per-test time limits, the caller's deadline, the user's pytest arguments and the project's own pytest
configuration, and failures no fix can reach: real pytest runs in the real sandbox."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from greenpatch.cli import main
from greenpatch.config import VerifySettings
from greenpatch.verify import Verifier
from verify_helpers import RUN_LIMIT, copy_workspace

pytestmark = pytest.mark.slow

HANGING = [
    ("tests/test_hangs.py::test_first", "passed"),
    ("tests/test_hangs.py::test_spins", "failed"),
    ("tests/test_hangs.py::test_between_one", "passed"),
    ("tests/test_hangs.py::test_sleeps", "failed"),
    ("tests/test_hangs.py::test_between_two", "passed"),
    ("tests/test_hangs.py::test_ignores_the_alarm", "failed"),
    ("tests/test_hangs.py::test_last", "passed"),
    ("tests/test_hangs.py::test_fails_honestly", "failed"),
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_each_hanging_test_fails_alone_and_every_other_test_is_still_reported(tmp_path: Path, warm: bool) -> None:
    hanging = copy_workspace("verify_hanging", tmp_path)
    with Verifier(hanging, timeout=RUN_LIMIT, test_timeout=2, state_dir=tmp_path / "state", warm=warm) as v:
        run = v.run()
    assert [(r.nodeid, r.outcome) for r in run.results] == HANGING
    assert not run.timed_out and not run.error and not run.passed
    by_id = {r.nodeid: r for r in run.results}
    for name in ("test_spins", "test_sleeps", "test_ignores_the_alarm"):
        assert by_id[f"tests/test_hangs.py::{name}"].message == "timed out after 2 s"
    # the timer stops a Python-level hang where it is: the frame tells repair where the loop is
    assert by_id["tests/test_hangs.py::test_spins"].frames[-1].line in (12, 13)
    # the test that ignored SIGALRM was killed from outside (where it stood is kept from faulthandler's dump),
    # and the run started again after it
    [frame] = by_id["tests/test_hangs.py::test_ignores_the_alarm"].frames
    assert frame.path == "tests/test_hangs.py" and frame.line in (30, 31)  # the loop
    assert run.restarts == 1  # and the run ended before its limit, which waiting on any hang would have reached


def test_greenpatch_test_json_shows_every_test_of_a_workspace_with_hanging_tests(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hanging = copy_workspace("verify_hanging", tmp_path)
    assert main(["test", str(hanging), "--json", "--test-timeout", "2"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(r["nodeid"], r["outcome"]) for r in report["results"]] == HANGING
    assert report["timed_out"] is False


def test_no_run_outlives_the_callers_deadline(tmp_path: Path) -> None:
    hanging = copy_workspace("verify_hanging", tmp_path)
    with Verifier(hanging, timeout=60, test_timeout=30, state_dir=tmp_path / "state") as v:
        started = time.monotonic()
        run = v.run(tests=["tests/test_hangs.py::test_spins"], deadline=started + 3)
        took = time.monotonic() - started
        # not cut early; and ended far sooner than the hang's own limit would have ended it, however busy the machine
        assert run.timed_out and 2.5 < took < (3 + v.test_timeout) / 2
        assert v.run(deadline=time.monotonic() - 1).timed_out  # past already: nothing runs


def test_repair_with_a_timeout_ends_near_it_on_a_workspace_with_a_hanging_test(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hanging = copy_workspace("verify_hanging", tmp_path)
    started = time.monotonic()
    code = main(["repair", str(hanging), "--json", "--model", "none", "--timeout", "10"])
    took = time.monotonic() - started
    capsys.readouterr()
    assert code == 3
    # without the limit the hang would run to its per-test limit: held against that, not a figure close to 10 s
    assert took < (10 + VerifySettings().test_timeout) / 2, f"repair --timeout 10 took {took:.1f} s"


def test_pytest_arguments_choose_what_runs(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hanging = copy_workspace("verify_hanging", tmp_path)
    assert main(["test", str(hanging), "--json", "--", "-k", "between or last"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["nodeid"] for r in report["results"]] == [
        "tests/test_hangs.py::test_between_one", "tests/test_hangs.py::test_between_two",
        "tests/test_hangs.py::test_last"]
    assert main(["test", str(hanging), "--json", "--", str(hanging / "tests/test_hangs.py") + "::test_first"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["nodeid"] for r in report["results"]] == ["tests/test_hangs.py::test_first"]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_projects_own_pytest_configuration_is_honoured(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write(tmp_path / "project", {
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-m \'not slow\'"\n'
                          'markers = ["slow: long"]\n',
        "scripts/test_by_hand.py": "def test_not_collected():\n    assert False\n",
        "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n",
        "tests/test_a.py": "import pytest\n\ndef test_answer(answer):\n    assert answer == 42\n\n"
                           "@pytest.mark.slow\ndef test_slow():\n    assert False\n",
        "backend/pytest.ini": "[pytest]\npython_files = check_*.py\n",
        "backend/check_api.py": "def test_api():\n    assert True\n",
        "backend/test_ignored.py": "def test_ignored():\n    assert False\n",
    })
    assert main(["test", str(project), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["nodeid"] for r in report["results"]] == ["tests/test_a.py::test_answer"]
    # a configuration in a subfolder applies to what runs from there; node ids stay workspace paths
    assert main(["test", str(project), "--json", "--", "backend"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["nodeid"] for r in report["results"]] == ["backend/check_api.py::test_api"]
    with Verifier(project, state_dir=tmp_path / "state") as v:
        assert v.is_test_file("backend/check_api.py") and not v.is_test_file("backend/test_ignored.py")
        selection = v.select({"backend/check_api.py": "def test_api():\n    assert 1\n"})
        assert (selection.level, selection.tests) == ("test-file", ["backend/check_api.py"])


def test_flaky_tests_and_the_environments_failures_are_reported_and_never_repair_targets(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_workspace("verify_unreachable", tmp_path)
    assert main(["test", str(project), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    causes = {r["nodeid"].split("::")[1]: (r["outcome"], r["cause"]) for r in report["results"]}
    assert causes == {
        "test_double": ("passed", ""), "test_alone": ("failed", "flaky"), "test_triple": ("failed", ""),
        "test_needs_a_module_the_environment_lacks": ("failed", "environment"),
        "test_needs_a_plugin_fixture": ("error", "environment"),
    }
    assert report["results"][-1]["message"] == "fixture 'mocker' not found"
    code = main(["repair", str(project), "--json", "--model", "none", "--timeout", f"{RUN_LIMIT:g}"])
    repair = json.loads(capsys.readouterr().out)
    assert [f["nodeid"] for f in repair["failures"]] == ["tests/test_calc.py::test_triple"]
    assert {f["nodeid"].split("::")[1]: f["cause"] for f in repair["unreachable"]} == {
        "test_alone": "flaky", "test_needs_a_module_the_environment_lacks": "environment",
        "test_needs_a_plugin_fixture": "environment"}
    assert code in (1, 3)
    main(["repair", str(project), "--model", "none", "--timeout", f"{RUN_LIMIT:g}"])
    err = capsys.readouterr().err
    assert "not repaired: 3 test(s) fail for reasons a fix cannot reach" in err
    assert "test_alone: flaky" in err


def test_a_test_that_ends_the_test_process_fails_alone_and_the_run_goes_on(tmp_path: Path) -> None:
    project = write(tmp_path / "project", {
        "tests/test_exit.py": "import os\n\ndef test_before():\n    pass\n\ndef test_exits():\n    os._exit(3)\n\n"
                              "def test_after():\n    pass\n",
    })
    with Verifier(project, timeout=RUN_LIMIT, test_timeout=10, state_dir=tmp_path / "state") as v:
        run = v.run()
    assert [(r.nodeid.split("::")[1], r.outcome) for r in run.results] == [
        ("test_before", "passed"), ("test_exits", "error"), ("test_after", "passed")]
    assert run.results[1].message == "the test process ended during this test"
    assert run.restarts == 1 and not run.error
