"""`greenpatch repair PATH`: run the tests, repair what fails, print verified diffs (or JSON), apply with --apply.

Exit codes: 0 nothing failing, 1 every failure got a verified fix (with --apply: written, and verified together
with the other fixes written), 3 failing with no verified fix (also when the time limit left some failure without
one), 2 usage error, 4 --apply could not write (the files are unchanged), 130 interrupted. At the time limit or on
Ctrl-C what was verified so far is still printed. The diff goes to stdout, progress to stderr: a live line on a
terminal; on a pipe nothing (CI logs stay clean), or one line per phase with --verbose."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from greenpatch.cancel import CancelToken
from greenpatch.config import Settings
from greenpatch.errors import Cancelled, GreenpatchError, UsageError, WriteError
from greenpatch.repair import formats
from greenpatch.repair.apply import Plan, plan_fixes, write_plan
from greenpatch.repair.pipeline import RepairPipeline
from greenpatch.repair.types import Failure, RepairReport
from greenpatch.verify.pytest_args import workspace_args

if TYPE_CHECKING:
    from greenpatch.engine.worker import EngineWorker

EXIT_CLEAN, EXIT_FIXED, EXIT_USAGE, EXIT_UNFIXED, EXIT_WRITE, EXIT_INTERRUPTED = 0, 1, 2, 3, WriteError.exit_code, 130


_LEFT = re.compile(r"\d+s left$")


class _Progress:
    """The pipeline's progress ("phase — what, counts, time left") on stderr: on a terminal one live line, redrawn
    every second (a test run can take minutes: the clock must not look stuck); otherwise nothing, or with `verbose`
    one line when the phase changes; with `quiet` nothing at all."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, seconds: float | None = None) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds if seconds else None
        self.tty = sys.stderr.isatty() and not quiet
        self.lines = verbose and not quiet and not self.tty
        self.last = ""
        self.phase = ""
        self.drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, message: str, percent: int | None = None) -> None:
        if message == self.last:
            return
        self.last = message
        if self.tty:
            self._draw()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="greenpatch-progress", daemon=True)
                self._ticker.start()
        elif self.lines:
            phase = message.split(" — ")[0]
            if phase != self.phase:
                self.phase = phase
                sys.stderr.write(f"greenpatch: [{time.monotonic() - self.started:5.1f}s] {message}\n")
                sys.stderr.flush()

    def _draw(self) -> None:
        now = time.monotonic()
        message = self.last
        if self.deadline is not None:
            message = _LEFT.sub(f"{max(0.0, self.deadline - now):.0f}s left", message)
        line = f"greenpatch: [{now - self.started:5.1f}s] {message}"
        width = shutil.get_terminal_size((100, 24)).columns - 1  # a wrapped line could not be redrawn
        with self._lock:
            if self._stop.is_set():
                return
            sys.stderr.write("\r\033[K" + (line if len(line) <= width else line[: width - 1] + "…"))
            sys.stderr.flush()
            self.drawn = True

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._draw()

    def done(self) -> None:
        with self._lock:
            self._stop.set()
            if self.drawn:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()


class RepairOutcome(NamedTuple):
    report: RepairReport
    plan: Plan  # the verified fixes combined per file (what --apply writes)
    why: str  # why no model ran ("" when one did)
    engine_stopped: bool  # False: the model thread could not be stopped; the process must leave with exit_now


@contextlib.contextmanager
def _interrupt_cancels(cancel: CancelToken) -> Iterator[None]:
    """The first Ctrl-C cancels the repair (it stops at its next check and keeps what was verified); a second one
    interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum: int, frame: object) -> None:
        cancel.cancel()
        print("\ngreenpatch: stopping; press Ctrl-C again to quit at once", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _engine_worker(model: str, settings: Settings) -> tuple[EngineWorker | None, str]:
    """An EngineWorker for `model`, installing it on first use; (None, why) when no model can run."""
    if model == "none":
        return None, "no model (--model none): mutation candidates only"
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        if model != "fake":
            return None, ("llama-cpp-python is not installed, so no model runs: using the model-free mutation "
                          "candidates only (install it with `pip install 'greenpatch[llm]'`)")
    from greenpatch.engine import EngineWorker, load_engine, models

    if model != "fake":
        models.ensure_model(model, settings.model.cache_dir, progress=True)
    return EngineWorker(lambda: load_engine(model, settings)), ""


def run_repair(
    path: Path, settings: Settings, *, model: str, progress: _Progress | None = None,
    pytest_args: list[str] | None = None,
) -> RepairOutcome:
    from greenpatch.verify import Verifier

    started = time.monotonic()
    # no test run outlives the repair's own time limit (model loading included)
    deadline = started + max(1.0, settings.repair.max_seconds)
    engine, why = _engine_worker(model, settings)
    verifier = Verifier(path, python=settings.python, timeout=settings.verify.run_timeout,
                        memory_mb=settings.verify.memory_mb, parallel=settings.verify.parallel, trusted=True,
                        test_timeout=settings.verify.test_timeout, deadline=deadline, pytest_args=pytest_args)
    cancel = CancelToken()
    stopped = True
    plan = Plan()
    try:
        pipeline = RepairPipeline(path, verifier, engine, settings.repair, model_name=model)
        with _interrupt_cancels(cancel):
            try:
                report = pipeline.repair(progress=progress, cancel=cancel)
                plan = plan_fixes(path, report, verifier, deadline=deadline, progress=progress)
            except Cancelled:
                report = pipeline.report
                report.interrupted = True
                report.notes.append("interrupted: the fixes shown were verified before it")
                plan = plan_fixes(path, report, verifier, deadline=0.0)  # one verified fix per file, no new runs
    finally:
        cancel.cancel()  # whatever ended the run, no model job goes on
        verifier.close()
        if engine is not None:
            # Joined, not abandoned: a model thread still decoding when the process exits crashes it (SIGSEGV).
            stopped = engine.close()
    if why:
        report.notes.insert(0, why)
    if not stopped:
        report.notes.append("the model did not stop in time; greenpatch leaves without freeing it")
    return RepairOutcome(report, plan, why, stopped)


def _fixed(report: RepairReport, plan: Plan | None) -> set[str]:
    if plan is None:
        return {nodeid for fix in report.fixes if fix.verified for nodeid in fix.fixes}
    return plan.fixed


def exit_code(report: RepairReport, plan: Plan | None = None) -> int:
    """1 only when every failing test passes with the fixes shown (and written, with --apply) together."""
    if report.interrupted:
        return EXIT_INTERRUPTED
    if not report.failures:
        environment = any(f.cause == "environment" for f in report.unreachable)
        return EXIT_UNFIXED if report.error or environment else EXIT_CLEAN
    fixed = _fixed(report, plan)
    return EXIT_FIXED if all(f.nodeid in fixed for f in report.failures) else EXIT_UNFIXED


def repair_command(
    path: Path, *, as_json: bool, apply: bool, candidates: int | None, rounds: int | None, model: str | None,
    timeout: float | None, python: str | None, fmt: str = "diff", test_timeout: float | None = None,
    pytest_args: list[str] | None = None, quiet: bool = False, verbose: bool = False,
) -> int:
    code, engine_stopped = _repair_command(path, as_json=as_json, apply=apply, candidates=candidates, rounds=rounds,
                                           model=model, timeout=timeout, python=python, fmt=fmt,
                                           test_timeout=test_timeout, pytest_args=pytest_args, quiet=quiet,
                                           verbose=verbose)
    if not engine_stopped:
        from greenpatch.engine.worker import exit_now

        exit_now(code)
    return code


def _repair_command(
    path: Path, *, as_json: bool, apply: bool, candidates: int | None, rounds: int | None, model: str | None,
    timeout: float | None, python: str | None, fmt: str, test_timeout: float | None,
    pytest_args: list[str] | None, quiet: bool, verbose: bool,
) -> tuple[int, bool]:
    path = Path(path).resolve()
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder")
    settings = Settings()
    if python:
        settings.python = python
    if test_timeout:
        settings.verify.test_timeout = test_timeout
    if candidates:
        settings.repair.candidates = candidates
    if rounds:
        settings.repair.rounds = rounds
    settings.repair.max_seconds = timeout or 300.0
    model = model or settings.model.repair
    progress = _Progress(quiet=quiet, verbose=verbose, seconds=settings.repair.max_seconds)
    try:
        report, plan, why, engine_stopped = run_repair(path, settings, model=model, progress=progress,
                                                       pytest_args=workspace_args(path, pytest_args or []))
    finally:
        progress.done()
    if why:
        print(f"greenpatch: {why}", file=sys.stderr)
    applied: list[str] = []
    write_error = ""
    if apply and plan.files:
        try:
            applied = write_plan(path, plan)
        except WriteError as exc:
            write_error = str(exc)
    code = EXIT_WRITE if write_error else exit_code(report, plan)
    if as_json or fmt != "diff":
        data = report.to_dict()
        data["unfixed"] = [f.nodeid for f in report.failures if f.nodeid not in plan.fixed]
        data["notes"] = report.notes + plan.notes
        data["plan"] = plan.to_dict()
        data["applied"] = applied
        if write_error:
            data["write_error"] = write_error
        data["exit_code"] = code
        sys.stdout.write(formats.render("json" if as_json else fmt, data, root=path, cwd=Path.cwd()))
    else:
        _print_report(report, plan, applied, tried_to_apply=apply)
    if write_error:
        print(f"greenpatch: error: {write_error}", file=sys.stderr)
    return code, engine_stopped


def _print_unreachable(unreachable: list[Failure]) -> None:
    if not unreachable:
        return
    err = sys.stderr
    print(f"greenpatch: not repaired: {len(unreachable)} test(s) fail for reasons a fix cannot reach:", file=err)
    for failure in unreachable:
        why = "flaky: failed, then passed when run again" if failure.cause == "flaky" else (
            failure.message.splitlines()[0] if failure.message else failure.cause)
        print(f"greenpatch:   {failure.nodeid}: {why}", file=err)


def _print_report(report: RepairReport, plan: Plan, applied: list[str], *, tried_to_apply: bool = False) -> None:
    err = sys.stderr
    _print_unreachable(report.unreachable)
    if report.error and not report.failures:
        print(f"greenpatch: the tests could not run: {report.error.splitlines()[0]}", file=err)
        return
    if not report.failures and report.tests_run == 0:
        print("greenpatch: no tests found (pytest collected none), so there is nothing to verify a fix against",
              file=err)
        return
    if not report.failures and report.unreachable:
        print("greenpatch: no other test fails; nothing to repair", file=err)
        return
    if not report.failures:
        print(f"greenpatch: all {report.tests_run} tests pass; nothing to repair", file=err)
        return
    for change in plan.files.values():  # what --apply writes, one diff per file; the JSON output lists the others
        for fix in change.fixes:
            sys.stdout.write(f"# {fix.title} [{fix.generator}]\n")
            if fix.note:
                sys.stdout.write(f"# note: {fix.note}\n")
        sys.stdout.write(change.diff)
    for failure in report.failures:
        state = "fixed" if failure.nodeid in plan.fixed else "no verified fix"
        where = f" at {failure.path}:{failure.line}" if failure.path and failure.line else ""
        first = failure.message.splitlines()[0] if failure.message else "failed"
        print(f"greenpatch: {failure.nodeid}: {first}{where} — {state}", file=err)
    notes = report.notes[1:] if report.notes and report.notes[0].startswith(("llama-cpp", "no model")) else report.notes
    for note in notes + plan.notes:
        print(f"greenpatch: {note}", file=err)
    fixed = sum(1 for failure in report.failures if failure.nodeid in plan.fixed)
    summary = (f"greenpatch: {fixed}/{len(report.failures)} failing tests fixed, "
               f"{report.candidates_tried} candidates tried in {report.rounds} round(s), {report.seconds:.1f}s")
    print(summary, file=err)
    if applied:
        print(f"greenpatch: applied the fix to {', '.join(applied)}", file=err)
    elif plan.files and not tried_to_apply:
        print("greenpatch: run again with --apply to write the fix", file=err)


__all__ = ["GreenpatchError", "exit_code", "repair_command", "run_repair"]
