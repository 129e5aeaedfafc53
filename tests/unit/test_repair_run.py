"""A repair run's edges with real pytest in the sandbox: the time limit and cancel keep what was verified and leave
no model job running, files that are not Python 3 are not repair targets, and progress says where the run is."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.cli import main
from greenpatch.config import RepairSettings, VerifySettings
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled
from greenpatch.repair import RepairPipeline
from greenpatch.verify import Verifier

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(DATA / name, target)
        return target

    return copy


@pytest.fixture
def verifier_for(tmp_path: Path) -> Iterator[Callable[[Path], Verifier]]:
    made: list[Verifier] = []

    def make(root: Path) -> Verifier:
        # a run gets the product's limit and a repair 600 s, not 60 s and 120 s: these repairs end when their
        # candidates do, and a busy machine takes several times longer over them (one run: 38 s at load 28)
        verifier = Verifier(root, timeout=VerifySettings().run_timeout, state_dir=tmp_path / f"state-{len(made)}")
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        verifier.close()


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the verifier's state goes here


def _pipeline(root: Path, verifier: Verifier, engine: Any = None, **settings: Any) -> RepairPipeline:
    return RepairPipeline(root, verifier, engine, RepairSettings(**{"max_seconds": 600.0, **settings}))


# --- the time limit and cancel ------------------------------------------------------------------------------


def test_no_model_job_outlives_a_repair_that_hit_its_time_limit(workspace, verifier_for) -> None:
    root = workspace("buggy_breaks_other")  # no mutation passes: the run waits on the model until the limit
    worker = EngineWorker(lambda: FakeEngine(delay=600))  # generations that only a cancel ends
    try:
        report = _pipeline(root, verifier_for(root), worker, max_seconds=4).repair()
        began = time.monotonic()
        assert worker.close(timeout=30), "a model job was still running after the repair returned"
        assert time.monotonic() - began < 5
    finally:
        worker.close()
    assert report.timed_out and "stopped at the time limit" in report.notes
    assert [f.nodeid for f in report.unfixed] == ["tests/test_shop.py::test_discount_from_one_hundred"]


def test_a_fix_verified_before_the_time_limit_is_kept_and_the_report_says_it_timed_out(
    workspace, verifier_for
) -> None:
    root = workspace("buggy_offbyone")  # a mutation passes at once; the model's fill is still running
    verifier = verifier_for(root)
    baseline = verifier.baseline()  # outside the limit: on a loaded machine it alone can take seconds
    worker = EngineWorker(lambda: FakeEngine(delay=600))
    try:
        # time for a run or two like the baseline (the passing mutation is among the first), not a fixed 20 s
        limit = 10 + 2 * baseline.seconds
        report = _pipeline(root, verifier, worker, max_seconds=limit).repair(baseline=baseline)
    finally:
        assert worker.close(timeout=30)
    assert report.timed_out
    assert report.fixes and report.fixes[0].verified and "range(n + 1)" in report.fixes[0].new_text
    assert report.unfixed == []


def test_a_cancel_keeps_the_fixes_verified_before_it(workspace, verifier_for) -> None:
    root = workspace("buggy_weak_tests")  # several mutations pass: the run goes on verifying after the first
    cancel = CancelToken()

    def progress(message: str, percent: int | None = None) -> None:
        if re.search(r"\b[1-9]\d* verified", message):
            cancel.cancel()

    pipeline = _pipeline(root, verifier_for(root))
    with pytest.raises(Cancelled):
        pipeline.repair(cancel=cancel, progress=progress)
    report = pipeline.report
    assert report.fixes and all(f.verified for f in report.fixes)
    assert [f.nodeid for f in report.failures] and report.unfixed == []


def test_repair_at_its_time_limit_prints_json_that_says_so_and_exits_3(
    workspace, private_cache, capsys
) -> None:
    root = workspace("buggy_offbyone")
    # the baseline alone outlasts the 1 s limit, which bounds every test run: nothing is known, nothing verified,
    # and "nothing failing" (exit 0) would be a lie
    (root / "tests" / "conftest.py").write_text("import time\n\n\ndef pytest_sessionstart(session):\n"
                                                "    time.sleep(1.5)\n")
    code = main(["repair", str(root), "--model", "none", "--json", "--timeout", "1"])
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["exit_code"] == 3
    assert data["timed_out"] is True and data["fixes"] == []
    assert "time limit" in data["error"] or "timed out" in data["error"]


# --- what is a repair target ---------------------------------------------------------------------------------


def test_files_that_do_not_parse_and_that_no_test_imports_are_not_repair_targets(workspace, verifier_for) -> None:
    root = workspace("buggy_offbyone")
    template = root / "template" / "{{cookiecutter.project}}" / "app.py"
    template.parent.mkdir(parents=True)
    template.write_text("{% if cookiecutter.cli %}\nimport {{cookiecutter.module}}\n{% endif %}\n")
    (root / "examples").mkdir()
    (root / "examples" / "hello.py").write_text('print "hello"\n')  # Python 2
    # a collection error elsewhere (not the environment's: those are never targets) makes the pipeline look for
    # files that do not parse
    (root / "tests" / "test_online.py").write_text("raise RuntimeError('this test module is broken')\n")
    report = _pipeline(root, verifier_for(root)).repair()
    touched = {f.path for f in report.fixes} | {f.path for f in report.failures}
    assert not any(p and p.startswith(("template/", "examples/")) for p in touched), touched
    assert any("not repaired" in n and "examples/hello.py" in n and "app.py" in n for n in report.notes), report.notes
    assert report.candidates_tried == 0  # no syntax "fix" of a template was tried either


def test_a_module_that_a_test_imports_and_that_does_not_parse_is_still_repaired(workspace, verifier_for) -> None:
    root = workspace("buggy_syntax")
    (root / "examples").mkdir()
    (root / "examples" / "hello.py").write_text('print "hello"\n')
    report = _pipeline(root, verifier_for(root)).repair()
    assert [f.path for f in report.fixes] == ["calc.py"]
    assert report.fixes[0].new_text.startswith("def add(a, b):\n")


# --- progress ------------------------------------------------------------------------------------------------


def test_progress_names_the_phase_the_function_the_candidates_and_the_time_left(workspace, verifier_for) -> None:
    root = workspace("buggy_offbyone")
    seen: list[str] = []
    _pipeline(root, verifier_for(root)).repair(progress=lambda message, percent=None: seen.append(message))
    phases = [m.split(" — ")[0] for m in seen]
    assert phases[:2] == ["baseline tests", "localizing"]
    assert "verifying counting.py:total_upto" in phases
    verifying = next(m for m in seen if m.startswith("verifying"))
    assert re.search(r"candidates 1-?\d*/\d+", verifying) and re.search(r"\d+s left$", verifying), verifying
    assert any("1 verified of" in m for m in seen), seen


def test_the_report_says_where_the_time_went_on_the_runs_clock_and_the_models(workspace, verifier_for) -> None:
    root = workspace("buggy_offbyone")  # a mutation passes; the model's first fill is waited for all the same
    worker = EngineWorker(lambda: FakeEngine(delay=0.2, text="return sum(range(n + 1))"))
    try:
        report = _pipeline(root, verifier_for(root), worker).repair()
    finally:
        worker.close()
    spent = report.timing
    assert set(spent) == {"tests", "model_wait", "prompt", "generation", "other"}
    assert spent["tests"] > 0 and spent["generation"] >= 0.2
    # the run's own clock adds up; the model's time overlaps the tests'
    assert spent["tests"] + spent["model_wait"] + spent["other"] == pytest.approx(report.seconds, abs=0.05)
    assert report.model_tokens["generated"] > 0
    assert json.loads(json.dumps(report.to_dict()))["timing"] == spent


def test_the_report_says_where_it_looked_and_which_candidates_it_made_and_tried(workspace, verifier_for) -> None:
    from greenpatch.bench.real import miss_cause
    from greenpatch.bench.slips import Slip
    from greenpatch.repair.candidates import digest

    root = workspace("buggy_offbyone")
    report = _pipeline(root, verifier_for(root), None).repair()
    fix = report.fixes[0]
    (search,) = report.search
    assert search["suspects"][0]["path"] == fix.path and search["suspects"][0]["score"] > 0
    made = {c["key"]: c for c in search["candidates"]}
    assert made[digest(fix.new_text)]["tried"], "the fix is among the candidates tried"
    assert len(made) == len(search["candidates"]) > 1, "each program once"
    line = search["suspects"][0]["line"]
    slip = Slip(fix.path, "f", "operator", line, "", "")
    assert miss_cause(slip, fix.new_text, [search]) == "right candidate failed"
    assert miss_cause(slip, "x = 1\n", [search]) == "no candidate right"
    assert miss_cause(Slip(fix.path, "f", "operator", 999, "", ""), "x = 1\n", [search]) == "not localized"
    assert miss_cause(slip, "", [{"candidates": [{"key": digest(""), "tried": False}]}]) == (
        "right candidate not verified in time")


def test_repair_prints_no_progress_when_stderr_is_not_a_terminal(workspace, private_cache, capsys) -> None:
    root = workspace("buggy_offbyone")
    main(["repair", str(root), "--model", "none"])
    err = capsys.readouterr().err
    assert "verifying" not in err and "baseline tests" not in err


def test_repair_verbose_prints_one_line_per_phase_and_where_the_time_went_when_stderr_is_not_a_terminal(
    workspace, private_cache, capsys
) -> None:
    root = workspace("buggy_offbyone")
    main(["repair", str(root), "--model", "none", "--verbose"])
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("greenpatch: [")]
    phases = [line.split("] ", 1)[1].split(" — ")[0] for line in lines]
    assert phases[:3] == ["baseline tests", "localizing", "verifying counting.py:total_upto"]
    assert len(phases) == len(set(phases)), lines
    assert re.match(r"greenpatch: time: [\d.]+s: tests [\d.]+s, waiting for the model 0\.0s, other [\d.]+s$", err[-1]), err


def test_repair_on_a_terminal_redraws_one_live_line_with_the_time_left(workspace, tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys
    import threading

    root = workspace("buggy_offbyone")
    main_fd, terminal = pty.openpty()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "server"), os.environ.get("PYTHONPATH", "")])}
    chunks: list[bytes] = []

    def read() -> None:  # all along: a full terminal buffer would block the writer
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the last writer closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    done = subprocess.run([sys.executable, "-m", "greenpatch", "repair", str(root), "--model", "none"],
                          stdout=subprocess.PIPE, stderr=terminal, env=env, timeout=300, check=False)
    os.close(terminal)
    reader.join(30)
    os.close(main_fd)
    text = b"".join(chunks).decode()
    assert done.returncode == 1
    assert "\r\x1b[Kgreenpatch: [" in text and "baseline tests — " in text and "s left" in text
    assert "verifying counting.py:total_upto — candidates 1-" in text


def test_ctrl_c_stops_the_repair_and_still_prints_json_that_says_so(workspace, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    root = workspace("buggy_weak_tests")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "server"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "greenpatch", "repair", str(root), "--model", "none", "--json", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the phase lines --verbose prints on a pipe
            if "] verifying " in line:
                process.send_signal(signal.SIGINT)
                break
        out, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 130
    data = json.loads(out)
    assert data["interrupted"] is True and data["exit_code"] == 130
    assert data["failures"], "every failure is listed even when interrupted"
    assert all(fix["verified"] for fix in data["fixes"])
