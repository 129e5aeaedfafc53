"""`greenpatch repair PATH`: run the tests, repair what fails, print verified diffs (or JSON), apply with --apply.

Exit codes: 0 nothing failing, 1 every failure got a verified fix, 3 failing with no verified fix, 2 usage error.
The diff goes to stdout, progress to stderr."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from greenpatch.config import Settings
from greenpatch.errors import GreenpatchError, UsageError
from greenpatch.repair.pipeline import RepairPipeline
from greenpatch.repair.types import Failure, RepairReport
from greenpatch.verify.pytest_args import workspace_args

EXIT_CLEAN, EXIT_FIXED, EXIT_USAGE, EXIT_UNFIXED = 0, 1, 2, 3


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
) -> tuple[RepairReport, str]:
    from greenpatch.verify import Verifier

    # no test run outlives the repair's own time limit (model loading included)
    deadline = time.monotonic() + max(1.0, settings.repair.max_seconds)
    engine, why = _engine_worker(model, settings)
    verifier = Verifier(path, python=settings.python, timeout=settings.verify.run_timeout,
                        memory_mb=settings.verify.memory_mb, parallel=settings.verify.parallel, trusted=True,
                        test_timeout=settings.verify.test_timeout, deadline=deadline, pytest_args=pytest_args)
    try:
        pipeline = RepairPipeline(path, verifier, engine, settings.repair, model_name=model)
        report = pipeline.repair(progress=progress)
    finally:
        verifier.close()
        if engine is not None:
            engine.close()  # type: ignore[attr-defined]
    if why:
        report.notes.insert(0, why)
    return report, why


def exit_code(report: RepairReport) -> int:
    if not report.failures:
        environment = any(f.cause == "environment" for f in report.unreachable)
        return EXIT_UNFIXED if report.error or environment else EXIT_CLEAN
    return EXIT_FIXED if not report.unfixed else EXIT_UNFIXED


def repair_command(
    path: Path, *, as_json: bool, apply: bool, candidates: int | None, rounds: int | None, model: str | None,
    timeout: float | None, python: str | None, test_timeout: float | None = None,
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
        report, why = run_repair(path, settings, model=model, progress=progress,
                                 pytest_args=workspace_args(path, pytest_args or []))
    finally:
        progress.done()
    if why:
        print(f"greenpatch: {why}", file=sys.stderr)
    applied: list[str] = []
    if apply:
        best: dict[str, object] = {}
        for fix in report.fixes:
            if fix.verified and fix.path not in best:
                best[fix.path] = fix
                (path / fix.path).write_text(fix.new_text, encoding="utf-8")
                applied.append(fix.path)
    code = exit_code(report)
    if as_json:
        data = report.to_dict()
        data["applied"] = applied
        data["exit_code"] = code
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return code
    _print_report(report, applied)
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


def _print_report(report: RepairReport, applied: list[str]) -> None:
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
    shown: set[str] = set()
    for fix in report.fixes:
        if not fix.verified or fix.path in shown:
            continue  # the best fix per file; the JSON output lists the others
        shown.add(fix.path)
        sys.stdout.write(f"# {fix.title} [{fix.generator}]\n")
        if fix.note:
            sys.stdout.write(f"# note: {fix.note}\n")
        sys.stdout.write(fix.diff)
    for failure in report.failures:
        state = "fixed" if failure not in report.unfixed else "no verified fix"
        where = f" at {failure.path}:{failure.line}" if failure.path and failure.line else ""
        first = failure.message.splitlines()[0] if failure.message else "failed"
        print(f"greenpatch: {failure.nodeid}: {first}{where} — {state}", file=err)
    for note in report.notes[1:] if report.notes and report.notes[0].startswith(("llama-cpp", "no model")) else report.notes:
        print(f"greenpatch: {note}", file=err)
    summary = (f"greenpatch: {len(report.failures) - len(report.unfixed)}/{len(report.failures)} failing tests fixed, "
               f"{report.candidates_tried} candidates tried in {report.rounds} round(s), {report.seconds:.1f}s")
    print(summary, file=err)
    if applied:
        print(f"greenpatch: applied the fix to {', '.join(applied)}", file=err)
    elif any(f.verified for f in report.fixes):
        print("greenpatch: run again with --apply to write the fix", file=err)


__all__ = ["GreenpatchError", "exit_code", "repair_command", "run_repair"]
