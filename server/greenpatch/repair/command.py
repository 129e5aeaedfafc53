"""`greenpatch repair PATH`: run the tests, repair what fails, print verified diffs (or JSON), apply with --apply.

Exit codes: 0 nothing failing, 1 every failure got a verified fix (with --apply: written, and verified together
with the other fixes written), 3 failing with no verified fix, 2 usage error, 4 --apply could not write (the files
are unchanged). The diff goes to stdout, progress to stderr."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from greenpatch.config import Settings
from greenpatch.errors import GreenpatchError, UsageError, WriteError
from greenpatch.repair import formats
from greenpatch.repair.apply import Plan, plan_fixes, write_plan
from greenpatch.repair.pipeline import RepairPipeline
from greenpatch.repair.types import Failure, RepairReport
from greenpatch.verify.pytest_args import workspace_args

EXIT_CLEAN, EXIT_FIXED, EXIT_USAGE, EXIT_UNFIXED, EXIT_WRITE = 0, 1, 2, 3, WriteError.exit_code


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, message: str, percent: int | None = None) -> None:
        if message == self.last:
            return
        self.last = message
        line = f"greenpatch: [{time.monotonic() - self.started:5.1f}s] {message}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _engine_worker(model: str, settings: Settings) -> tuple[object | None, str]:
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
) -> tuple[RepairReport, Plan, str]:
    from greenpatch.verify import Verifier

    started = time.monotonic()
    # no test run outlives the repair's own time limit (model loading included)
    deadline = started + max(1.0, settings.repair.max_seconds)
    engine, why = _engine_worker(model, settings)
    verifier = Verifier(path, python=settings.python, timeout=settings.verify.run_timeout,
                        memory_mb=settings.verify.memory_mb, parallel=settings.verify.parallel, trusted=True,
                        test_timeout=settings.verify.test_timeout, deadline=deadline, pytest_args=pytest_args)
    try:
        pipeline = RepairPipeline(path, verifier, engine, settings.repair, model_name=model)
        report = pipeline.repair(progress=progress)
        plan = plan_fixes(path, report, verifier, deadline=deadline, progress=progress)
    finally:
        verifier.close()
        if engine is not None:
            engine.close()  # type: ignore[attr-defined]
    if why:
        report.notes.insert(0, why)
    return report, plan, why


def _fixed(report: RepairReport, plan: Plan | None) -> set[str]:
    if plan is None:
        return {nodeid for fix in report.fixes if fix.verified for nodeid in fix.fixes}
    return plan.fixed


def exit_code(report: RepairReport, plan: Plan | None = None) -> int:
    """1 only when every failing test passes with the fixes shown (and written, with --apply) together."""
    if not report.failures:
        environment = any(f.cause == "environment" for f in report.unreachable)
        return EXIT_UNFIXED if report.error or environment else EXIT_CLEAN
    fixed = _fixed(report, plan)
    return EXIT_FIXED if all(f.nodeid in fixed for f in report.failures) else EXIT_UNFIXED


def repair_command(
    path: Path, *, as_json: bool, apply: bool, candidates: int | None, rounds: int | None, model: str | None,
    timeout: float | None, python: str | None, fmt: str = "diff", test_timeout: float | None = None,
    pytest_args: list[str] | None = None,
) -> int:
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
    progress = _Progress()
    try:
        report, plan, why = run_repair(path, settings, model=model, progress=progress,
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
    return code


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
