"""One pytest run in a sandbox: its command line, the attempts it takes, and the TestRun they add up to.

When a test hangs past its limit (or ends the test process), that test is recorded and pytest is started again
without the tests already run, so every other test still gets its result; the run's error says why a run gave
no usable results (cancelled, killed, pytest did not start, the interpreter died).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from greenpatch.cancel import CANCELLED, CancelToken
from greenpatch.verify import process
from greenpatch.verify.causes import workspace_names
from greenpatch.verify.results import begun, build_results, collected, ended, hang_frames, read_records
from greenpatch.verify.sandbox import Pristine, Sandbox
from greenpatch.verify.types import TestResult, TestRun
from greenpatch.verify.watch import TestWatch
from greenpatch.verify.zygote import Zygote

TIMED_OUT = "timed out after "  # how a test that ran past its own limit is reported (plugin and watch alike)

# What the verifier does after each attempt's process ended: its outcome and the records the plugin wrote.
OnAttempt = Callable[[process.Outcome, list[dict[str, object]]], None]


def run_pytest(
    box: Sandbox, targets: list[str], level: str, *, python: str, options: list[str], stop: bool,
    test_timeout: float, memory_mb: int, cancel: CancelToken, ends: float, pristine: Pristine | None,
    environment: Callable[[Path], dict[str, str]], zygote: Callable[[], Zygote | None], on_attempt: OnAttempt,
) -> TestRun:
    """Run pytest in `box` until `ends` (time.monotonic()), with `options` (the user's) and each attempt's
    environment from `environment(results_file)`; `zygote` gives the warm fork server for each attempt (None: a
    cold start), `on_attempt` is called after each attempt's process ended, `pristine` gives the workspace's file
    names for telling the environment's failures."""
    argv = [python, "-m", "pytest", "-p", "greenpatch_pytest", "-p", "no:cacheprovider",
            "--rootdir", str(box.src), "-q", "--color=no", "-o", "console_output_style=classic",
            # Python's own tracebacks: pytest's styles re-parse each frame's whole source file to show the
            # statement, per failure (python-dateutil with a slip: 532 failures, 105 s; native: 1.5 s). The
            # plugin reads messages and frames from the exception itself. A user's --tb in `options` still wins.
            "--tb=native", *options]
    if stop:
        argv.append("-x")
    if len(targets) > 200:
        args_file = box.out / "targets.txt"
        args_file.write_text("\n".join(targets) + "\n", encoding="utf-8")
        argv.append(f"@{args_file}")
    else:
        argv.extend(targets)
    started_at = time.monotonic()
    results: dict[str, TestResult] = {}
    done: set[str] = set()  # node ids some attempt began
    first_started = False
    attempt = 0
    while True:
        results_file = box.out / ("results.jsonl" if attempt == 0 else f"results.{attempt}.jsonl")
        env = environment(results_file)
        if test_timeout:
            env["GREENPATCH_TEST_TIMEOUT"] = f"{test_timeout:g}"
        if done:
            deselect = box.out / f"deselect.{attempt}.txt"
            deselect.write_text("".join(f"{nodeid}\n" for nodeid in sorted(done)), encoding="utf-8")
            env["GREENPATCH_DESELECT"] = str(deselect)
        watch = TestWatch(cancel, results_file, test_timeout)
        outcome = process.run(argv, cwd=box.src, env=env, output=box.out / "output.log",
                              timeout=max(0.1, ends - time.monotonic()), memory_mb=memory_mb,
                              cancel=watch, zygote=zygote())
        records = read_records(results_file)
        on_attempt(outcome, records)
        hung = watch.overrun if not cancel.is_set() else ""
        if hung:
            outcome.cancelled, outcome.killed = False, f"{TIMED_OUT}{test_timeout:g} s"
        failing = any(r.get("outcome") in ("failed", "error") or r.get("event") == "collect-error" for r in records)
        names = workspace_names(pristine.files()) if failing and pristine is not None else None
        attempt_results, started = build_results(records, box.src, outcome.killed, names,
                                                 killed_outcome="failed" if hung else "error")
        first_started = first_started or started
        if hung:
            stuck = next((r for r in attempt_results if r.nodeid == hung and not r.frames), None)
            if stuck is not None:
                stuck.frames = hang_frames(_read_text(Path(f"{results_file}.hang")), hung, box.src)
        for result in attempt_results:
            results.setdefault(result.nodeid, result)
        began = begun(records)
        done.update(began)
        wanted = collected(records)
        # started again when one test hung past its limit, or ended the test process while it ran (no "end"
        # record, the test never finished), and tests are left and time is too
        cut_short = hung or (not outcome.killed and not any(r.get("event") == "end" for r in records)
                             and bool(set(began) - ended(records)))
        left = [n for n in wanted or [] if n not in done]
        if not (cut_short and left and not stop and not outcome.cancelled and not outcome.timed_out
                and ends - time.monotonic() > 0.5):
            break
        attempt += 1
    run = TestRun(results=list(results.values()), level=level, selected=list(targets),
                  seconds=time.monotonic() - started_at, timed_out=outcome.timed_out, restarts=attempt)
    if outcome.cancelled:
        run.error = CANCELLED
    elif outcome.killed and not outcome.timed_out and not hung:
        run.error = f"killed: {outcome.killed}"
    elif not first_started and outcome.timed_out:
        # on a busy machine pytest can still be starting when the run's time limit ends it: not a start-up error
        run.error = f"the time limit ended the run before its first test ({run.seconds:.1f} s)"
    elif not first_started:
        run.error = _startup_error(outcome.output, python)
    elif outcome.returncode in (2, 3, 4) and not run.results:
        run.error = _last_lines(outcome.output) or f"pytest exited with code {outcome.returncode}"
    elif outcome.returncode not in (0, 1, 2, 5) and not outcome.timed_out and not hung and not attempt:
        # the interpreter died (SIGXCPU, SIGXFSZ, memory): pytest had no chance to report
        run.error = f"the test process ended abnormally (exit {outcome.returncode}): " + _last_lines(
            outcome.output, 3)
    return run


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _last_lines(text: str, count: int = 5) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _startup_error(output: str, python: str) -> str:
    if "No module named pytest" in output:
        return f"pytest is not installed in {python}; install it there or set greenpatch.python"
    return f"pytest did not start with {python}: {_last_lines(output)}"
