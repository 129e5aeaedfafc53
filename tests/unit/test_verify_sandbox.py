"""Hostile tests are contained: killed within the timeout, nothing left running, the workspace untouched."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from greenpatch.verify import Verifier
from greenpatch.verify.process import isolation
from verify_helpers import RUN_LIMIT, checksum, copy_workspace, processes_with, session_gone

pytestmark = pytest.mark.slow


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    return copy_workspace("verify_hostile", tmp_path)


@pytest.fixture(params=[True, False], ids=["warm", "cold"])
def warm(request: pytest.FixtureRequest) -> bool:
    """Every containment test runs both ways: forked from the warm zygote and started cold."""
    return bool(request.param)


@pytest.fixture
def verifier(hostile: Path, tmp_path: Path, warm: bool):
    v = Verifier(hostile, timeout=RUN_LIMIT, memory_mb=1024, state_dir=tmp_path / "state", warm=warm)
    yield v
    v.close()
    assert bool(v.warm_runs) == warm or not v.sessions


def assert_all_gone(verifier: Verifier) -> None:
    assert verifier.sessions
    assert all(session_gone(sid) for sid in verifier.sessions)
    # ours, or escaped to init: another session's fork bomb may be running on this machine
    assert processes_with("987.654", under=os.getpid(), orphans=True) == []


def test_an_infinite_loop_is_killed_at_the_timeout_with_nothing_left(hostile: Path, tmp_path: Path, warm: bool) -> None:
    with Verifier(hostile, timeout=60, state_dir=tmp_path / "s", warm=warm) as v:
        # a timeout of 3 s ran out before pytest had started on a busy machine: it is 3 s more than a quick run takes
        started = time.monotonic()
        assert v.run(tests=["tests/test_victim.py"]).passed
        quick = time.monotonic() - started
        v.timeout = 3 + quick
        started = time.monotonic()
        run = v.run(tests=["tests/test_loop.py"])
        elapsed = time.monotonic() - started
        assert run.timed_out and not run.passed
        assert [(r.nodeid, r.outcome) for r in run.results] == [("tests/test_loop.py::test_spins_forever", "error")]
        assert "timed out" in run.results[0].message
        assert elapsed < v.timeout + 2 + quick, "killed at the timeout"
        assert_all_gone(v)
        assert bool(v.warm_runs) == warm


def test_a_fork_bomb_is_bounded_and_every_child_is_killed(verifier: Verifier) -> None:
    run = verifier.run(tests=["tests/test_forkbomb.py"])
    assert not run.timed_out  # the run did not wait on its sleepers (987 s each)
    assert_all_gone(verifier)


def test_a_memory_hog_fails_with_memory_error_instead_of_taking_the_machine(verifier: Verifier) -> None:
    run = verifier.run(tests=["tests/test_memory.py"])
    assert [r.outcome for r in run.results] == ["failed"]
    assert "MemoryError" in run.results[0].message


def test_writes_outside_the_copy_and_deletions_leave_the_workspace_unchanged(hostile: Path, verifier: Verifier) -> None:
    before = checksum(hostile)
    home_file = Path.home() / "greenpatch-escaped.txt"
    home_existed = home_file.exists()
    run = verifier.run(tests=["tests/test_escape.py", "tests/test_vandal.py"])
    assert [r.outcome for r in run.results] == ["passed", "passed", "passed"], run
    assert checksum(hostile) == before
    assert not (hostile.parent / "greenpatch-escaped.txt").exists()
    assert home_file.exists() == home_existed
    # the vandal wrote through the sandbox's link into the private pristine copy: it is repaired before reuse
    after = verifier.run(tests=["tests/test_victim.py"])
    assert after.passed and after.results


def test_a_socket_reaches_neither_the_host_nor_the_internet(hostile: Path, verifier: Verifier) -> None:
    if not isolation().network_blocked:
        pytest.skip("no network namespace on this machine: the network is not blocked (documented)")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        (hostile / "port.txt").write_text(str(listener.getsockname()[1]))
        run = verifier.run(tests=["tests/test_socket.py"])
        assert run.passed and run.results, run
        with pytest.raises(socket.timeout):
            listener.accept()


def test_close_removes_every_sandbox_and_the_private_copy(verifier: Verifier) -> None:
    verifier.run(tests=["tests/test_victim.py"])
    work = verifier._work
    assert work is not None and [p.name for p in work.iterdir()] == ["pristine"]
    verifier.close()
    assert not work.exists()


def test_without_a_pids_cgroup_the_watchdog_still_bounds_a_fork_bomb(
    hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    from greenpatch.verify import process

    real = process.isolation()
    weaker = process.Isolation(real.prefix, real.network_blocked, real.pid_namespace, real.mount_namespace, "", False)
    monkeypatch.setattr(process, "isolation", lambda: weaker)
    with Verifier(hostile, timeout=RUN_LIMIT, state_dir=tmp_path / "s", warm=warm) as v:
        run = v.run(tests=["tests/test_forkbomb.py"])
        assert not run.timed_out
        assert run.error.startswith("killed: started more than") or run.passed
        assert_all_gone(v)


def test_work_folders_of_dead_greenpatch_processes_are_swept(tmp_path: Path) -> None:
    from greenpatch.verify.sandbox import WORK_PREFIX, sweep_stale

    dead = tmp_path / f"{WORK_PREFIX}4194399-abc"  # above Linux's highest pid: no such process
    (dead / "pristine").mkdir(parents=True)
    alive = tmp_path / f"{WORK_PREFIX}{os.getppid()}-abc"
    alive.mkdir()
    assert sweep_stale(tmp_path) == [dead]
    assert not dead.exists() and alive.exists()


def test_a_test_that_knows_absolute_paths_outside_its_copy_cannot_write_there(
    hostile: Path, tmp_path: Path, outside_tmp: Path, verifier: Verifier
) -> None:
    if not isolation().mount_namespace:
        pytest.skip("no mount namespace here: absolute paths outside the sandbox are writable (documented)")
    outside, outside_in_tmp = outside_tmp / "outside.txt", tmp_path / "outside.txt"
    outside.write_text("mine")
    outside_in_tmp.write_text("mine")
    (hostile / "targets.txt").write_text(f"{hostile / 'victim' / 'core.py'}\n{outside}\n{outside_in_tmp}\n")
    before = checksum(hostile)
    run = verifier.run(tests=["tests/test_escape.py::test_writes_to_a_path_it_was_told_about"])
    # under /tmp (the workspace here, too) a write lands in the run's private overlay and is gone with it
    assert run.results, run
    assert checksum(hostile) == before and outside.read_text() == outside_in_tmp.read_text() == "mine"


@pytest.fixture
def outside_tmp() -> Path:
    """A folder of the host outside /tmp and /var/tmp (a test sees those through a private overlay): where a
    write that escaped the sandbox would stay."""
    base = Path.home() if os.access(Path.home(), os.W_OK) else Path(tempfile.gettempdir())
    folder = Path(tempfile.mkdtemp(prefix=".greenpatch-outside-", dir=base))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_test_cannot_remount_the_file_systems_writable_and_write_the_real_workspace(
    hostile: Path, outside_tmp: Path, verifier: Verifier
) -> None:
    if not isolation().mount_namespace:
        pytest.skip("no mount namespace here: absolute paths outside the sandbox are writable (documented)")
    outside = outside_tmp / "outside.txt"
    outside.write_text("mine")
    (hostile / "targets.txt").write_text(f"{hostile / 'victim' / 'core.py'}\n{outside}\n")
    before = checksum(hostile)
    run = verifier.run(tests=["tests/test_remount.py"])
    assert run.passed and run.results, run
    assert checksum(hostile) == before and outside.read_text() == "mine"


def test_a_test_cannot_read_the_environment_of_processes_outside_its_run(verifier: Verifier) -> None:
    if not isolation().pid_namespace:
        pytest.skip("no pid namespace here: the host's /proc is visible (documented)")
    # /proc/<pid>/environ shows a process's initial environment: a host process started with the secret stands
    # for greenpatch started with an API key in its environment
    host = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                            env={**os.environ, "GREENPATCH_HOSTILE_SECRET": "sk-not-for-tests"})
    try:
        run = verifier.run(tests=["tests/test_proc.py"])
        assert run.passed and run.results, run
    finally:
        assert host.stdin is not None
        host.stdin.close()
        host.wait()


def test_tmp_var_tmp_and_dev_shm_are_private_writable_bounded_and_gone_after_the_run(verifier: Verifier) -> None:
    if not isolation().mount_namespace:
        pytest.skip("no mount namespace here: /tmp is the host's (documented)")
    left = "greenpatch-hostile-left-behind"
    run = verifier.run(tests=["tests/test_devices.py"])
    assert [(r.outcome, r.message) for r in run.results] == [("passed", "")] * 3, run
    assert [f for f in ("/tmp", "/var/tmp", "/dev/shm", "/dev") if Path(f, left).exists()] == []


def test_a_memory_cgroup_bounds_the_whole_process_tree(hostile: Path, tmp_path: Path, warm: bool) -> None:
    if not isolation().memory_cgroup_root:
        pytest.skip("no memory cgroup here (not root, or no writable memory controller): memory is bounded per "
                    "process only, RLIMIT_AS x the process limit (documented)")
    with Verifier(hostile, timeout=RUN_LIMIT, memory_mb=400, state_dir=tmp_path / "s", warm=warm) as v:
        run = v.run(tests=["tests/test_tree_memory.py"])
        assert not run.passed, run
        assert bool(v.warm_runs) == warm
        assert_all_gone(v)


NON_ROOT_DRIVER = """
import json, sys
from pathlib import Path
from greenpatch.verify import Verifier
from greenpatch.verify.process import isolation
ws, state, warm = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
with Verifier(ws, timeout=300, memory_mb=1024, state_dir=state, warm=warm) as v:
    run = v.run(tests=["tests/test_remount.py", "tests/test_proc.py", "tests/test_devices.py"])
    print(json.dumps({"isolation": isolation().describe(), "warm": bool(v.warm_runs),
                      "results": [[r.nodeid, r.outcome, r.message] for r in run.results]}))
"""


def test_as_a_normal_user_the_hostile_tests_are_contained_too(warm: bool) -> None:
    """greenpatch run by an unprivileged user (uid 65534): the namespaces come from a user namespace instead."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become an unprivileged user")
    python = next((p for p in (os.environ.get("GREENPATCH_NONROOT_PYTHON", ""), sys.executable) if p and subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", p, "-c", "import pytest"],
        capture_output=True, check=False, cwd="/").returncode == 0), "")
    if not python:
        pytest.skip("uid 65534 cannot run this interpreter with pytest: set GREENPATCH_NONROOT_PYTHON to one it can")
    base = Path(tempfile.mkdtemp(prefix="greenpatch-nonroot-", dir="/srv" if os.path.isdir("/srv") else None))
    try:
        os.chmod(base, 0o755)
        ws = copy_workspace("verify_hostile", base)
        outside = base / "outside.txt"
        outside.write_text("mine")
        (ws / "targets.txt").write_text(f"{ws / 'victim' / 'core.py'}\n{outside}\n")
        for folder, _, files in os.walk(base):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chown(name, 65534, 65534)
        before = checksum(ws)
        server = Path(__file__).resolve().parents[2] / "server"
        env = {"PATH": os.environ["PATH"], "HOME": str(base), "XDG_CACHE_HOME": str(base / "cache"),
               "PYTHONPATH": str(server), "GREENPATCH_HOSTILE_SECRET": "sk-not-for-tests"}
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", NON_ROOT_DRIVER, str(ws),
             str(base / "state"), "1" if warm else "0"],
            capture_output=True, text=True, env=env, timeout=2 * RUN_LIMIT, check=False, cwd=base)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if not report["isolation"]["read_only_outside_sandbox"]:
            pytest.skip(f"no confinement for uid 65534 with {python} here: {report['isolation']}")
        assert [r[1] for r in report["results"]] == ["passed"] * 5, report
        assert report["warm"] == warm
        assert checksum(ws) == before and outside.read_text() == "mine"
    finally:
        shutil.rmtree(base, ignore_errors=True)
