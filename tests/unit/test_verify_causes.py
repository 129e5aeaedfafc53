"""Which failures no fix can reach, and the user's say in what runs: pure functions, no test process."""

from __future__ import annotations

from pathlib import Path

from greenpatch.verify.causes import ENVIRONMENT, environment_cause, workspace_names
from greenpatch.verify.pytest_args import TestFiles, narrow, split_args, workspace_args
from greenpatch.verify.types import Frame
from greenpatch.verify.types import TestResult as Result
from greenpatch.verify.types import TestRun as Run

NAMES = workspace_names(["calc/__init__.py", "calc/ops.py", "src/shapes/area.py", "tests/test_ops.py", "conftest.py"])


def cause(message: str, when: str = "call", frames: list[Frame] | None = None) -> str:
    return environment_cause(message, when, frames or [], NAMES)


def test_a_module_missing_from_the_environment_is_not_the_projects_bug() -> None:
    assert cause("ModuleNotFoundError: No module named 'yaml'") == ENVIRONMENT
    assert cause("E   ModuleNotFoundError: No module named 'requests.adapters'") == ENVIRONMENT
    assert cause("ImportError: cannot import name 'Mapping' from 'collections' (/usr/lib/python3.11/...)") == \
        ENVIRONMENT


def test_a_module_of_the_workspace_or_a_misspelling_of_one_is_a_failure_a_fix_may_reach() -> None:
    assert cause("ModuleNotFoundError: No module named 'calc.missing'") == ""
    assert cause("ModuleNotFoundError: No module named 'shapes'") == ""
    assert cause("ModuleNotFoundError: No module named 'calcc'") == ""  # a typo in the project's own import
    assert cause("ImportError: cannot import name 'area' from 'shapes' (/src/shapes/__init__.py)") == ""


def test_no_network_in_the_sandbox_is_the_environment() -> None:
    assert cause("socket.gaierror: [Errno -3] Temporary failure in name resolution") == ENVIRONMENT
    assert cause("urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>") == ENVIRONMENT
    assert cause("OSError: [Errno 101] Network is unreachable") == ENVIRONMENT
    assert cause("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.example.com', port=443): "
                 "Max retries exceeded") == ENVIRONMENT


def test_a_refused_connection_to_this_machine_is_a_failure_a_fix_may_reach() -> None:
    assert cause("ConnectionRefusedError: [Errno 111] Connection refused") == ""
    assert cause("requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=8000): "
                 "Connection refused") == ""
    assert cause("ConnectionRefusedError: [Errno 111] Connection refused (http://localhost:5000/)") == ""


def test_a_fixture_error_outside_the_projects_code_is_the_environment_and_inside_it_is_not() -> None:
    assert cause("fixture 'mocker' not found", "setup") == ENVIRONMENT
    assert cause("RuntimeError: DATABASE_URL is not set", "setup", [Frame("conftest.py", 7, "db")]) == ENVIRONMENT
    assert cause("ValueError: bad width", "setup",
                 [Frame("conftest.py", 7, "shape"), Frame("src/shapes/area.py", 3, "area")]) == ""
    assert cause("AssertionError: assert 3 == 4", "call", [Frame("tests/test_ops.py", 5, "test_add")]) == ""


def test_only_failures_a_fix_may_reach_are_failed_and_flaky_ones_do_not_fail_a_run() -> None:
    run = Run(results=[
        Result("t.py::a", "passed"), Result("t.py::b", "failed", cause="flaky"),
        Result("t.py::c", "failed", cause="environment"), Result("t.py::d", "failed"),
    ])
    assert [r.nodeid for r in run.failed] == ["t.py::d"]
    assert [r.nodeid for r in run.unreachable] == ["t.py::b", "t.py::c"]
    assert not run.passed
    assert Run(results=run.results[:2]).passed
    assert not Run(results=run.results[:3]).passed  # the environment's failure is still a failure


def test_pytest_arguments_split_into_options_for_every_run_and_the_scope_of_what_runs() -> None:
    options, scope = split_args(["-k", "add and not slow", "tests/test_ops.py", "-m", "fast", "--tb=short",
                                 "tests/test_x.py::test_y", "-x", "-p", "no:randomly"])
    assert options == ["-k", "add and not slow", "-m", "fast", "--tb=short", "-x", "-p", "no:randomly"]
    assert scope == ["tests/test_ops.py", "tests/test_x.py::test_y"]


def test_a_selection_is_narrowed_to_the_users_scope() -> None:
    scope = ["tests/unit", "tests/test_x.py::test_y"]
    assert narrow(["tests/unit/test_a.py::t", "tests/e2e/test_b.py::t", "tests/test_x.py"], scope) == [
        "tests/unit/test_a.py::t", "tests/test_x.py::test_y"]
    assert narrow(["tests/test_x.py::test_y[1]"], scope) == ["tests/test_x.py::test_y[1]"]
    assert narrow(["a.py::t"], []) == ["a.py::t"]


def test_paths_given_from_the_current_folder_become_workspace_paths(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "tests").mkdir(parents=True)
    (root / "tests/test_a.py").write_text("")
    assert workspace_args(root, ["-k", "x", "tests/test_a.py::t", "nothere.py"], cwd=tmp_path / "ws") == [
        "-k", "x", "tests/test_a.py::t", "nothere.py"]
    assert workspace_args(root, ["ws/tests"], cwd=tmp_path) == ["tests"]
    assert workspace_args(root, [str(root / "tests/test_a.py")], cwd=Path("/")) == ["tests/test_a.py"]


def test_test_files_follow_the_projects_python_files_nearest_config_first(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend/pytest.ini").write_text("[pytest]\npython_files = check_*.py\n")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n")
    files = TestFiles(tmp_path)
    assert files("backend/check_api.py") and files("backend/sub/check_db.py")
    assert not files("backend/test_api.py")
    assert files("tests/test_ops.py") and files("ops_test.py") and not files("ops.py")
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\npython_files = ["spec_*.py"]\n')
    files = TestFiles(tmp_path)
    assert files("tests/spec_ops.py") and not files("tests/test_ops.py")
    assert files("backend/check_api.py")


def test_test_files_outside_the_projects_testpaths_are_not_collected(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests integration/*\n")
    files = TestFiles(tmp_path)
    assert files.in_testpaths("tests/test_a.py") and files.in_testpaths("integration/db/test_b.py")
    assert not files.in_testpaths("scripts/test_by_hand.py") and not files.in_testpaths("test_top.py")
    assert TestFiles(tmp_path / "nowhere").in_testpaths("scripts/test_by_hand.py")
