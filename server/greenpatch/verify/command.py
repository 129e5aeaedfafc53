"""`greenpatch test PATH [--changed FILE...] [--all] [--json] [-- PYTEST_ARGS...]`: run the affected (or all) tests
in a sandbox; failing tests are run again once to tell flaky ones."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from greenpatch.errors import UsageError, VerifyError
from greenpatch.verify.pytest_args import narrow, workspace_args
from greenpatch.verify.select import Selection
from greenpatch.verify.types import TestRun
from greenpatch.verify.verifier import Verifier


def _changed_files(root: Path, changed: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for name in changed:
        given = Path(name).expanduser()
        candidates = [given] if given.is_absolute() else [Path.cwd() / given, root / given]
        path = next((c.resolve() for c in candidates if c.is_file()), None)
        if path is None:
            raise UsageError(f"--changed {name}: no such file")
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            raise UsageError(f"--changed {name}: not inside the workspace {root}") from None
        try:
            changes[rel] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--changed {name}: cannot read it ({exc})") from None
    return changes


def test_command(
    path: Path, *, changed: list[str], as_json: bool, timeout: float, python: str | None, all_tests: bool,
    test_timeout: float = 30.0, pytest_args: list[str] | None = None,
) -> int:
    """Exit 0 when every test that ran passed (flaky ones aside), 1 when some failed or the run timed out, 2 for
    usage errors. pytest_args: the user's (files, node ids, -k, -m, ...), passed through to pytest."""
    root = path.resolve()
    changes = _changed_files(root, changed)  # validate before running anything
    args = workspace_args(root, pytest_args or [])
    built_map = False
    with Verifier(root, python=python or "", timeout=timeout, trusted=True, test_timeout=test_timeout,
                  pytest_args=args) as verifier:
        selection = Selection([], "all")
        if changes and not all_tests and verifier.coverage_map is not None:
            selection = verifier.select(changes, against_map=True)
            tests = narrow(selection.tests, verifier.scope)  # within the user's own choice, if any
            run = verifier.run(tests=tests or None, recheck=True)
            run.level = selection.level if tests or not selection.tests else "all"
        elif verifier.coverage_map is None and not verifier.pytest_args:
            run = verifier.baseline()  # the whole suite anyway: measure coverage so --changed can select next time
            built_map = True
        else:
            run = verifier.run(recheck=True)  # the whole suite, or what the pytest arguments choose
        python_used = verifier.python
    if run.error and not run.results and not run.cancelled:
        raise VerifyError(run.error)
    if as_json:
        data = {
            "workspace": str(root), "python": python_used, "level": run.level, "selected": run.selected,
            "reasons": selection.reasons, "built_coverage_map": built_map, "seconds": round(run.seconds, 3),
            "timed_out": run.timed_out, "error": run.error, "passed": run.passed, "cached": run.cached,
            "restarts": run.restarts,
            "results": [asdict(r) for r in run.results],
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_human(root, python_used, run, selection, built_map)
    return 0 if run.passed else 1


def _print_human(root: Path, python: str, run: TestRun, selection: Selection, built_map: bool) -> None:
    out = sys.stdout
    out.write(f"workspace: {root}\npython:    {python}\n")
    what = "whole suite" if run.level == "all" else f"{len(run.selected)} test(s) or file(s)"
    out.write(f"selection: {run.level} ({what})\n")
    for rel, reason in selection.reasons.items():
        out.write(f"  {rel}: {reason}\n")
    if built_map:
        out.write("  coverage map built from this run; next time --changed selects affected tests\n")
    for result in run.results:
        cause = f" [{result.cause}: no fix can reach it]" if result.cause else ""
        out.write(f"{result.outcome.upper():8} {result.nodeid} ({result.duration * 1000:.0f} ms){cause}\n")
        if result.outcome in ("failed", "error"):
            for line in result.message.splitlines()[:6]:
                out.write(f"         | {line}\n")
            for frame in result.frames[-3:]:
                out.write(f"         at {frame.path}:{frame.line} in {frame.function}\n")
    counts: dict[str, int] = {}
    for result in run.results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no tests ran"
    out.write(f"{len(run.results)} test(s): {summary} in {run.seconds:.2f} s\n")
    if run.restarts:
        out.write(f"started again {run.restarts} time(s) after a test hung or ended the test process\n")
    if run.timed_out:
        out.write("the run timed out and was killed\n")
    if run.error:
        out.write(f"error: {run.error}\n")
