"""Warm runs forked from the zygote: same results and limits as cold runs, fresh project code in every run, and a
cold fallback whenever the zygote is gone. (Containment through the warm path: test_verify_sandbox.py runs every
hostile test both ways.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from greenpatch.verify import Verifier
from greenpatch.verify.zygote import wait_gone, warm_enabled
from verify_helpers import RUN_LIMIT, checksum, copy_workspace, processes_with, session_gone

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not warm_enabled(True), reason="the warm path needs Linux (fork, namespaces)"),
]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return copy_workspace("verify_clean", tmp_path)


def ops(root: Path, old: str, new: str) -> dict[str, str]:
    return {"calc/ops.py": (root / "calc/ops.py").read_text().replace(old, new)}


def test_each_warm_run_imports_the_project_fresh_from_its_own_sandbox(clean: Path, tmp_path: Path) -> None:
    before = checksum(clean)
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        first = v.run(ops(clean, "return (a + b) * SCALE", "return (a - b) * SCALE"), tests=["tests/test_ops.py"])
        second = v.run(ops(clean, "return a - b", "return a + b"), tests=["tests/test_ops.py"])
        third = v.run(tests=["tests/test_ops.py"])
        assert v.warm_runs == 3
    assert {r.nodeid.split("::")[1] for r in first.failed} == {"test_add", "test_mul_uses_add"}
    assert {r.nodeid.split("::")[1] for r in second.failed} == {"test_sub"}
    assert third.passed and third.results
    assert checksum(clean) == before


def test_a_warm_run_reports_the_same_results_as_a_cold_one(clean: Path, tmp_path: Path) -> None:
    candidate = ops(clean, "return a - b", "return a + b")
    runs = []
    for warm in (True, False):
        with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / f"s-{warm}", warm=warm) as v:
            runs.append(v.run(candidate))
            assert bool(v.warm_runs) == warm
    warm_run, cold_run = runs
    assert [(r.nodeid, r.outcome, r.message, r.frames) for r in warm_run.results] == [
        (r.nodeid, r.outcome, r.message, r.frames) for r in cold_run.results]
    assert warm_run.failed and warm_run.failed[0].frames[-1].path == "tests/test_ops.py"


def test_a_warm_run_sees_the_same_interpreter_state_as_a_cold_one(clean: Path, tmp_path: Path) -> None:
    (clean / "tests/test_env.py").write_text(textwrap.dedent("""
        import os, sys, tempfile
        from pathlib import Path

        ROOT = str(Path(__file__).resolve().parents[2])

        def test_reports_its_interpreter_state():
            seen = (os.getcwd(), sys.path, sorted(os.environ.items()), tempfile.gettempdir(), sys.argv[0],
                    sys.dont_write_bytecode, sys.flags, os.getpgid(0) == os.getpid(),
                    # the zygote confines its children with ctypes; a cold run's launcher execs a fresh interpreter
                    sorted(m for m in sys.modules if m not in ("ctypes", "_ctypes", "ctypes._endian")))
            assert 0, repr(seen).replace(ROOT, "<SANDBOX>")
    """))
    seen = []
    for warm in (True, False):
        with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / f"s-{warm}", warm=warm) as v:
            run = v.run(tests=["tests/test_env.py"])
            assert bool(v.warm_runs) == warm
            seen.append(run.results[0].message)
    assert "<SANDBOX>/src" in seen[0]
    assert seen[0] == seen[1]


def test_when_the_zygote_dies_runs_still_work_and_leave_nothing_behind(clean: Path, tmp_path: Path) -> None:
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        assert v.run(tests=["tests/test_ops.py"]).passed
        zygote = v._zygote
        assert zygote is not None and zygote.pid
        for _ in range(4):  # more deaths than restarts allowed: the later runs go cold
            if zygote.alive:
                os.kill(zygote.pid, signal.SIGKILL)
                assert wait_gone(zygote.pid)
            run = v.run(ops(clean, "SCALE = 1", "SCALE = 2"), tests=["tests/test_ops.py"])
            assert [r.outcome for r in run.results].count("failed") == 2, run
            clean.joinpath("calc/ops.py").write_text(clean.joinpath("calc/ops.py").read_text() + "\n")
        assert zygote.disabled
        assert v.warm_runs >= 1 and len(v.sessions) > v.warm_runs
        assert all(session_gone(sid) for sid in v.sessions)


def test_a_run_whose_zygote_dies_under_it_is_run_again_cold(clean: Path, tmp_path: Path) -> None:
    (clean / "tests/test_slow.py").write_text(SLOW_TEST.format(seconds=1.5))
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        assert v.run(tests=["tests/test_ops.py"]).passed
        zygote, work = v._zygote, v._work
        assert zygote is not None and zygote.pid and work is not None

        def kill_once_the_test_runs() -> None:  # not at a fixed time: on a busy machine the run starts late
            if _wait_for(lambda: any(work.glob(f"run-*/**/{STARTED}")), timeout=120):
                os.kill(zygote.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_the_test_runs)
        killer.start()
        run = v.run(tests=["tests/test_slow.py"])
        killer.join()
        assert run.passed and [r.outcome for r in run.results] == ["passed"], run
        assert v.warm_runs == 1 and len(v.sessions) == 3  # the lost warm attempt, then the cold one
        assert all(session_gone(sid) for sid in v.sessions)


def test_the_zygote_never_imports_the_project(clean: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    init = clean / "calc/__init__.py"
    init.write_text(f"import os\ntry:\n    open(os.path.join({str(marks)!r}, str(os.getpid())), 'w').close()\n"
                    f"except OSError:\n    pass\n" + init.read_text())
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        for _ in range(2):
            assert v.run(tests=["tests/test_ops.py"], stop_at_first_failure=_ == 1).passed
        zygote = v._zygote
        assert zygote is not None and zygote.pid and v.warm_runs == 2
        assert _wait_for(lambda: "calc/__init__.py" in v._pristine.compiled())  # compiled there, never run
        assert not (marks / str(zygote.pid)).exists()


def test_a_zygote_that_stops_answering_is_killed_and_runs_go_cold(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenpatch.verify import zygote as zygote_module

    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        assert v.run(tests=["tests/test_ops.py"]).passed
        zygote = v._zygote
        assert zygote is not None and zygote.pid
        # shortened only now: on a busy machine the first fork can wait longer behind a byte-compilation
        monkeypatch.setattr(zygote_module, "SPAWN_TIMEOUT", 1.0)
        os.kill(zygote.pid, signal.SIGSTOP)  # hung: it would fork the run later, outside any watchdog
        run = v.run(tests=["tests/test_ops.py"], stop_at_first_failure=True)
        assert run.passed and run.results and v.warm_runs == 1
        assert zygote.disabled
        assert wait_gone(zygote.pid, timeout=10)


def test_switched_off_by_the_environment_every_run_is_cold(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENPATCH_VERIFY_WARM", "0")
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s") as v:
        assert v.run(tests=["tests/test_ops.py"]).passed
        assert v.warm_runs == 0 and v._zygote is None


def test_the_zygote_and_its_runs_die_with_greenpatch(clean: Path, tmp_path: Path) -> None:
    (clean / "tests/test_slow.py").write_text(SLOW_TEST.format(seconds=876.5))
    script = textwrap.dedent(f"""
        import sys, threading, time
        from pathlib import Path
        from greenpatch.verify import Verifier

        v = Verifier(Path({str(clean)!r}), state_dir=Path({str(tmp_path / "s")!r}), timeout=600, warm=True)
        v.run(tests=["tests/test_ops.py"])
        threading.Thread(target=v.run, kwargs={{"tests": ["tests/test_slow.py"]}}, daemon=True).start()
        print(v._zygote.pid, v._work, flush=True)
        time.sleep(600)
    """)
    greenpatch = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert greenpatch.stdout is not None
        pid, work = greenpatch.stdout.readline().split()
        zygote_pid = int(pid)
        # killed once the slow test is running (every process of the run set up), not after a fixed wait
        assert _wait_for(lambda: any(Path(work).glob(f"run-*/**/{STARTED}")), timeout=120)
        # forked runs keep the zygote's command line: the zygote, the run and the namespace's first process (only
        # this greenpatch's: other test sessions on the machine have zygotes too)
        family = processes_with("greenpatch_zygote", under=greenpatch.pid)
        assert zygote_pid in family and len(family) >= 2
    finally:
        greenpatch.kill()  # no cleanup runs: only PR_SET_PDEATHSIG and end of file reach the zygote
        greenpatch.wait()
    # the slow test would sleep for 876.5 s: gone well before that means killed, however busy the machine is
    deadline = time.monotonic() + 60
    assert all(wait_gone(pid, timeout=max(0.1, deadline - time.monotonic())) for pid in family)


def test_byte_code_of_imported_files_is_reused_but_never_stands_for_an_edited_file(clean: Path, tmp_path: Path) -> None:
    with Verifier(clean, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=True) as v:
        assert v.run(tests=["tests/test_ops.py"]).passed
        assert _wait_for(lambda: {"calc/ops.py", "tests/test_ops.py"} <= set(v._pristine.compiled()))
        assert any("-pytest-" in pyc for pyc in v._pristine.compiled()["tests/test_ops.py"])
        # the edited source and the edited test are compiled from their new content, not from the pristine pycs
        broken = ops(clean, "return a - b", "return a + b")
        broken["tests/test_ops.py"] = (clean / "tests/test_ops.py").read_text().replace(
            "assert add(2, 3) == 5", "assert add(2, 3) == 6")
        run = v.run(broken, tests=["tests/test_ops.py"])
        assert {r.nodeid.split("::")[1] for r in run.failed} == {"test_add", "test_sub"}
        # a saved edit replaces the pristine copy and drops its pycs
        (clean / "calc/ops.py").write_text(broken["calc/ops.py"])
        run = v.run(tests=["tests/test_ops.py"])
        assert {r.nodeid.split("::")[1] for r in run.failed} == {"test_sub"}


STARTED = "slow-test-started"
# the test says it is running with a file in its copy of the workspace (its working directory): the one writable
# place a test shares with greenpatch (/tmp, TMPDIR and HOME are private to the run)
SLOW_TEST = (f"import os, time\n\ndef test_sleeps():\n"
             f"    open(os.path.join(os.getcwd(), {STARTED!r}), 'w').close()\n    time.sleep({{seconds}})\n")


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Whether `condition` came true within `timeout`: a deadline for events that take milliseconds on a quiet
    machine and that a bug would leave undone for ever, so a busy machine's seconds never decide it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
