"""pytest plugin that greenpatch loads with `-p greenpatch_pytest` inside the sandbox (this folder alone is put on
PYTHONPATH, so nothing else of greenpatch shadows the project's modules).

It writes one JSON object per line to $GREENPATCH_RESULTS, flushed as it goes, so a run killed by the watchdog still
leaves every finished test and the one that was running. With $GREENPATCH_COVERAGE set it also records the lines
each test runs (the test -> lines map behind affected-test selection; see greenpatch_lines: the project's coverage.py
when usable, else greenpatch's tracer). The project's pytest-cov, if its addopts turn it on, is switched off for
greenpatch's runs: two coverage measurements clash, and its --cov-fail-under is no verdict on a candidate.
Runs under the workspace's interpreter (Python 3.8+, pytest 7.0+): standard library, pytest and (optionally)
coverage only.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import traceback
from typing import Any

import pytest
from greenpatch_lines import recorder as _recorder
from greenpatch_readonly import _loopback_up  # a network namespace's lo is down until brought up
from greenpatch_readonly import read_only_except as _read_only_except  # the zygote calls it by this name

_out: Any = None
_cov: Any = None
_test_limit = 0.0  # seconds one test may take ($GREENPATCH_TEST_TIMEOUT); 0: no per-test limit
_deselect: set[str] = set()  # node ids already run by an earlier attempt of this run ($GREENPATCH_DESELECT)
_hang: Any = None  # file faulthandler writes the stacks of a test still running past its limit to (RESULTS.hang)
_outside: tuple[str, ...] = ()  # folders whose frames are left out of a failure's traceback (_outside_project)
_compared: list[str] | None = None  # the running test's last failed comparison: [op, repr(left), repr(right)]
REPR_CHARS = 1000  # bound on each side of a comparison reported
HANG_AFTER = 0.5  # seconds past the limit: the timer did not end the test, greenpatch is about to kill it


class Timeout(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """Raised inside a test that ran past its limit. An outcome exception like pytest.fail's (not an Exception, so
    `except Exception:` in the test cannot swallow it); pytest reports it as the test's failure (an error when a
    fixture hung) and goes on to the next test."""


_keep = os.environ.pop("GREENPATCH_READONLY", "")
if _keep:
    try:
        _read_only_except(_keep)
    except Exception:  # noqa: BLE001,S110 - best effort, never break the user's test run
        pass


def _emit(record: dict[str, Any]) -> None:
    if _out is not None:
        _out.write(json.dumps(record) + "\n")
        _out.flush()


def _rootpath(config: pytest.Config) -> str:
    # rootpath: pytest 6.1+; rootdir: older ones (newer ones keep it only through the legacypath plugin)
    return str(getattr(config, "rootpath", None) or config.rootdir)  # type: ignore[attr-defined, unused-ignore]


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> Any:
    # Runs before pytest-cov's own (tryfirst) implementation decides from these options whether to start:
    # `--no-cov` as if given on the command line, so `--cov`/`--cov-fail-under` in the project's addopts still parse.
    options = early_config.known_args_namespace
    if getattr(options, "cov_source", None):
        options.no_cov = True
    yield


def pytest_configure(config: pytest.Config) -> None:
    global _out, _cov, _outside
    path = os.environ.pop("GREENPATCH_RESULTS", "")
    if not path or _out is not None:
        return
    _out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole session
    if os.environ.pop("GREENPATCH_NETNS", "") == "1":
        _loopback_up()
    _read_run_limits(config, path)
    _outside = _outside_project(_rootpath(config))
    data_file = os.environ.pop("GREENPATCH_COVERAGE", "")
    engine = os.environ.pop("GREENPATCH_COVERAGE_ENGINE", "")
    if data_file:
        try:
            _cov, _ = _recorder(_rootpath(config), data_file, engine)
            _cov.start()
        except Exception as exc:  # noqa: BLE001 - no map this time; the tests still run and report
            _cov = None
            _emit({"event": "warning", "message": f"line recording did not start: {type(exc).__name__}: {exc}"})
    _emit({"event": "start", "root": _rootpath(config), "python": sys.version.split()[0]})


def _read_run_limits(config: pytest.Config, results: str) -> None:
    global _test_limit, _hang
    try:
        _test_limit = max(0.0, float(os.environ.pop("GREENPATCH_TEST_TIMEOUT", "") or 0))
    except ValueError:
        _test_limit = 0.0
    if not hasattr(signal, "setitimer"):
        _test_limit = 0.0  # no SIGALRM (Windows): greenpatch's watchdog alone ends a test that hangs
    try:  # faulthandler has one timer: the project's own faulthandler_timeout keeps it
        theirs = float(config.getini("faulthandler_timeout") or 0)
    except (ValueError, TypeError):
        theirs = 0.0
    if _test_limit and not theirs:
        try:
            _hang = open(results + ".hang", "w", encoding="utf-8")  # noqa: SIM115 - open for the whole session
        except OSError:
            _hang = None
    path = os.environ.pop("GREENPATCH_DESELECT", "")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                _deselect.update(line.rstrip("\n") for line in f if line.strip())
        except OSError:
            pass


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A run started again after a test hung: the tests an earlier attempt already ran are left out.
    if not _deselect:
        return
    kept = [item for item in items if item.nodeid not in _deselect]
    dropped = [item for item in items if item.nodeid in _deselect]
    if dropped:
        items[:] = kept
        config.hook.pytest_deselected(items=dropped)


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"event": "collected", "nodeids": [item.nodeid for item in session.items]})


def _on_alarm(signum: int, frame: Any) -> None:
    raise Timeout(f"timed out after {_test_limit:g} s")


def _imported_files(root: str) -> list[str]:
    """The project's source files this run imported (greenpatch byte-compiles them for the next runs)."""
    prefix = root.rstrip(os.sep) + os.sep
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(prefix) and path.endswith(".py"):
            found.add(path[len(prefix):].replace(os.sep, "/"))
    return sorted(found)[:5000]


def pytest_unconfigure(config: pytest.Config) -> None:
    global _out, _cov
    if _cov is not None:
        try:
            _cov.finish()
        except Exception as exc:  # noqa: BLE001 - no map this time; the results are still reported
            _emit({"event": "warning", "message": f"line recording failed: {type(exc).__name__}: {exc}"})
        _cov = None
    if _out is not None:
        _emit({"event": "imported", "files": _imported_files(_rootpath(config))})
        _emit({"event": "end"})
        _out.close()
        _out = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    global _compared
    _compared = None
    _emit({"event": "begin", "nodeid": item.nodeid})
    if _cov is not None:
        _cov.switch_context(item.nodeid)
    previous = _start_timer()
    try:
        yield
    finally:
        _stop_timer(previous)
    if _cov is not None:
        _cov.switch_context("")
    _emit({"event": "done", "nodeid": item.nodeid})


def _start_timer() -> Any:
    """Arm the per-test timer (setup, call and teardown together). A test stuck in Python code - a loop, a sleep,
    a socket wait - gets Timeout raised where it is, so its traceback shows where it hung; one the signal cannot
    reach (C code, SIGALRM ignored or taken over) is ended from outside by greenpatch a little later."""
    if not _test_limit:
        return None
    if _hang is not None:
        # for a test the signal cannot stop: where every thread was, written from a C thread of faulthandler's
        # just before greenpatch kills the run (verifier reads it as the test's frames)
        faulthandler.dump_traceback_later(_test_limit + HANG_AFTER, file=_hang)
    try:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, _test_limit)
    except (ValueError, OSError):  # not the main thread
        return None
    return previous


def _stop_timer(previous: Any) -> None:
    if _hang is not None:
        faulthandler.cancel_dump_traceback_later()
    if previous is None:
        return
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    except (ValueError, OSError, TypeError):
        pass


def _outside_project(root: str) -> tuple[str, ...]:
    """Where the interpreter, pytest and installed packages live: frames there say nothing about the bug, and a
    deep traceback through pytest's own calls would push the project's frames out of the bound. A place that holds
    the project itself (an interpreter whose prefix is / or the project's parent) is no such place."""
    inside = os.path.join(os.path.realpath(root), "")
    places = {os.path.dirname(os.path.dirname(pytest.__file__)), sys.prefix, sys.base_prefix, sys.exec_prefix}
    found = (os.path.join(os.path.realpath(p), "") for p in places if p)
    return tuple(p for p in found if not inside.startswith(p))


def _frames(excinfo: Any) -> list[list[Any]]:
    frames: list[list[Any]] = []
    try:
        outside = _outside
        tb = excinfo.value.__traceback__
        for fs in traceback.extract_tb(tb):
            if not os.path.realpath(fs.filename).startswith(outside):
                frames.append([fs.filename, fs.lineno, fs.name])
    except Exception:  # noqa: BLE001,S110 - best effort, never break the user's test run
        pass
    return frames[-30:]


def _repr(value: Any) -> str:
    try:
        from _pytest._io.saferepr import saferepr  # pytest 7.0+; a repr that cannot raise, bounded

        return str(saferepr(value, maxsize=REPR_CHARS))
    except Exception:  # noqa: BLE001 - best effort, never break the user's test run
        try:
            return repr(value)[:REPR_CHARS]
        except Exception:  # noqa: BLE001 - a broken __repr__
            return f"<{type(value).__name__} object>"


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> None:
    # Called by a rewritten `assert` whose comparison failed: the values themselves, where the message has them
    # cut short or as a diff. Returns None, so pytest (or the project's own hook) still writes the explanation.
    global _compared
    _compared = [op, _repr(left), _repr(right)]


def _message(excinfo: Any) -> str:
    try:
        text = excinfo.exconly(tryshort=True)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break reporting
        text = repr(excinfo)
    text = "\n".join(line for line in text.splitlines() if line.strip())
    return text[:2000]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and report.outcome == "failed":
        report.greenpatch_frames = _frames(call.excinfo)
        report.greenpatch_message = _message(call.excinfo)
        if _compared is not None and isinstance(call.excinfo.value, AssertionError):
            report.greenpatch_compared = _compared
        if isinstance(call.excinfo.value, Timeout):
            report.greenpatch_message = str(call.excinfo.value)
        elif type(call.excinfo.value).__name__ == "FixtureLookupError":  # its repr is no message for a person
            report.greenpatch_message = f"fixture '{getattr(call.excinfo.value, 'argname', '?')}' not found"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and report.outcome == "passed":
        return
    if report.when == "call" or report.outcome != "passed":
        outcome: str = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"  # a fixture (setup/teardown) failed, as pytest reports it
        if hasattr(report, "wasxfail"):
            outcome = "skipped" if report.skipped else "passed"
        message = getattr(report, "greenpatch_message", "")
        if not message and report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])[:500]
        elif not message and report.outcome == "failed":
            message = str(report.longreprtext).strip().splitlines()[-1][:2000] if report.longreprtext else ""
        _emit({
            "event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": outcome,
            "duration": report.duration, "message": message,
            "frames": getattr(report, "greenpatch_frames", []),
            "compared": getattr(report, "greenpatch_compared", None),
        })


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit({
            "event": "collect-error", "nodeid": report.nodeid,
            "message": str(report.longreprtext).strip()[-2000:],
        })
