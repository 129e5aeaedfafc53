"""Verifier runs on real sample workspaces: fixes pass, regressions are caught, results are honest."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.errors import UntrustedWorkspace, VerifyError
from greenpatch.verify import Verifier, resolve_python
from verify_helpers import RUN_LIMIT, checksum, copy_workspace, session_gone

pytestmark = pytest.mark.slow


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    return copy_workspace("verify_failing", tmp_path)


def fixed(root: Path) -> dict[str, str]:
    return {"shapes/area.py": (root / "shapes/area.py").read_text().replace("width + height", "width * height")}


def test_a_candidate_that_fixes_the_failing_test_is_reported_passing_and_a_regression_is_caught(
    failing: Path, tmp_path: Path
) -> None:
    before = checksum(failing)
    broken_square = {"shapes/area.py": fixed(failing)["shapes/area.py"].replace("side * side", "side + side")}
    with Verifier(failing, timeout=RUN_LIMIT, state_dir=tmp_path / "state") as v:
        as_is, fix, regression = v.run_many([{}, fixed(failing), broken_square], stop_at_first_failure=False)
    assert not as_is.passed
    [failure] = as_is.failed
    assert failure.nodeid == "tests/test_area.py::test_rectangle"
    assert "assert 7 == 12" in failure.message
    assert failure.frames[-1].path == "tests/test_area.py" and failure.frames[-1].line == 5
    assert fix.passed and {r.nodeid for r in fix.results} == {
        "tests/test_area.py::test_rectangle", "tests/test_area.py::test_square"}
    assert [r.nodeid for r in regression.failed] == ["tests/test_area.py::test_square"]
    assert regression.failed[0].frames[-1] .path == "tests/test_area.py"
    assert checksum(failing) == before


def test_failure_frames_point_into_workspace_source_files(failing: Path, tmp_path: Path) -> None:
    crash = {"shapes/area.py": "def rectangle(width, height):\n    raise ValueError('boom')\n\n\n"
                                "def square(side):\n    return side * side\n"}
    with Verifier(failing, timeout=RUN_LIMIT, state_dir=tmp_path / "state") as v:
        run = v.run(crash, tests=["tests/test_area.py::test_rectangle"])
    [result] = run.results
    assert run.level == "given" and result.outcome == "failed"
    assert result.message.startswith("ValueError: boom")
    assert [(f.path, f.line, f.function) for f in result.frames] == [
        ("tests/test_area.py", 5, "test_rectangle"), ("shapes/area.py", 2, "rectangle")]


def test_the_same_candidate_is_answered_from_the_cache_until_the_workspace_changes(
    failing: Path, tmp_path: Path
) -> None:
    with Verifier(failing, timeout=RUN_LIMIT, state_dir=tmp_path / "state") as v:
        first = v.run(fixed(failing))
        again = v.run(fixed(failing))
        assert not first.cached and again.cached and again.passed
        assert [r.nodeid for r in again.results] == [r.nodeid for r in first.results]
        (failing / "tests/test_area.py").write_text(
            (failing / "tests/test_area.py").read_text() + "\n\ndef test_more():\n    assert False\n")
        changed = v.run(fixed(failing))
        assert not changed.cached and not changed.passed


def test_cancelling_kills_the_run_quickly_and_reports_cancelled(tmp_path: Path) -> None:
    hostile = copy_workspace("verify_hostile", tmp_path)
    token = CancelToken()
    with Verifier(hostile, timeout=30, state_dir=tmp_path / "state") as v:
        cancelled_at: list[float] = []
        timer = threading.Timer(1.5, lambda: (cancelled_at.append(time.monotonic()), token.cancel()))
        timer.start()
        run = v.run(tests=["tests/test_loop.py"], cancel=token)
        # measured from the cancel (a busy machine runs the timer late), against the timeout it would have waited for
        assert time.monotonic() - cancelled_at[0] < v.timeout / 2
        assert run.cancelled and not run.passed
        assert all(session_gone(sid) for sid in v.sessions)


def test_closing_the_verifier_ends_a_run_in_flight_as_cancelled(tmp_path: Path) -> None:
    hostile = copy_workspace("verify_hostile", tmp_path)
    v = Verifier(hostile, timeout=30, state_dir=tmp_path / "state")
    closed_at: list[float] = []
    timer = threading.Timer(1.5, lambda: (closed_at.append(time.monotonic()), v.close()))
    timer.start()
    run = v.run(tests=["tests/test_loop.py"])  # loops until killed
    timer.join()
    assert run.cancelled and not run.passed
    assert time.monotonic() - closed_at[0] < v.timeout / 2
    assert all(session_gone(sid) for sid in v.sessions)


def test_an_untrusted_workspace_raises_and_runs_nothing(failing: Path, tmp_path: Path) -> None:
    v = Verifier(failing, trusted=False, state_dir=tmp_path / "state")
    for call in (lambda: v.run(), lambda: v.run_many([{}]), lambda: v.baseline(), lambda: v.refresh()):
        with pytest.raises(UntrustedWorkspace):
            call()
    assert v.sessions == [] and v._work is None
    assert v.select(fixed(failing)).level == "imports"  # reading files is fine
    v.close()


def test_the_interpreter_comes_from_setting_then_venv_then_our_own(tmp_path: Path) -> None:
    import sys

    assert resolve_python(tmp_path) == sys.executable
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").symlink_to(sys.executable)
    assert resolve_python(tmp_path) == str(tmp_path / ".venv/bin/python")
    assert resolve_python(tmp_path, sys.executable) == sys.executable
    with pytest.raises(VerifyError, match="does not exist"):
        resolve_python(tmp_path, "/nowhere/python3")


def test_a_missing_pytest_is_a_clear_error(failing: Path, tmp_path: Path) -> None:
    import shutil

    bare = shutil.which("python3", path="/usr/bin:/bin")
    if not bare or bare.startswith(str(Path(__file__).parents[2])):
        pytest.skip("no system python3 without pytest")
    import subprocess

    if subprocess.run([bare, "-c", "import pytest"], capture_output=True, check=False).returncode == 0:
        pytest.skip("the system python3 has pytest")
    with Verifier(failing, python=bare, state_dir=tmp_path / "state") as v:
        run = v.run()
    assert "pytest is not installed" in run.error and not run.passed
