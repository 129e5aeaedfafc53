"""Per-test line recording inside the test process: the project's own coverage.py when it is usable there, else
greenpatch's small tracer. Both write the one file the verifier reads (covmap.from_coverage_data):

    {"engine": "...", "tests": {node id: {absolute path: [line, ...]}}}

Only lines executed while a test runs are kept (a test's context), and only in files under the sandbox root.
coverage.py is used when it imports cleanly in this interpreter and has dynamic contexts (5.0+); anything else
(missing, too old, or a version this Python cannot even parse) falls back to the tracer, so greenpatch never puts a
package of its own on the project's path. The tracer uses sys.monitoring on Python 3.12+ (each line reported once
per test, then disabled until the next test) and sys.settrace below (only files under the root get a local trace
function, so other code pays one call per function call). Standard library only; Python 3.8 syntax.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

MIN_COVERAGE = (5, 0)  # Coverage.switch_context and CoverageData.contexts_by_lineno


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def usable_coverage() -> tuple[Any, str]:
    """(the coverage module or None, why not): the project's coverage.py if it can do per-test contexts."""
    try:
        import coverage
    except ImportError:
        return None, "coverage not installed"
    except Exception as exc:  # noqa: BLE001 - e.g. SyntaxError: a coverage made for a newer Python
        return None, f"coverage does not import here: {type(exc).__name__}"
    version = str(getattr(coverage, "__version__", ""))
    if _version_tuple(version) < MIN_COVERAGE or not hasattr(coverage.Coverage, "switch_context"):
        return None, f"coverage {version or '?'} is older than 5.0"
    return coverage, ""


class _Recorder:
    """What every engine shares: the current test, and the test -> file -> lines data."""

    engine = ""

    def __init__(self, root: str, out: str) -> None:
        self.root = os.path.realpath(root).rstrip(os.sep) + os.sep
        self.root_raw = root.rstrip(os.sep) + os.sep
        self.out = out

    def start(self) -> None: ...

    def switch_context(self, nodeid: str) -> None: ...

    def stop(self) -> dict[str, dict[str, Any]]:
        return {}

    def under_root(self, filename: str) -> bool:
        if filename.startswith((self.root, self.root_raw)):
            return True
        if filename.startswith("<") or not os.path.isabs(filename):
            return False
        return os.path.realpath(filename).startswith(self.root)

    def finish(self) -> None:
        tests = self.stop()
        data = {"engine": self.engine,
                "tests": {nodeid: {path: sorted(lines) for path, lines in files.items()}
                          for nodeid, files in tests.items() if nodeid}}
        tmp = f"{self.out}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.out)


class _CoverageRecorder(_Recorder):
    def __init__(self, root: str, out: str, coverage: Any) -> None:
        super().__init__(root, out)
        self.engine = f"coverage {coverage.__version__}"
        # config_file=False: the project's .coveragerc (plugins, branch, omit) must not change what is measured
        self.cov = coverage.Coverage(data_file=out + ".sqlite", source=[root], branch=False, config_file=False,
                                     omit=["*/site-packages/*"])

    def start(self) -> None:
        self.cov.start()

    def switch_context(self, nodeid: str) -> None:
        self.cov.switch_context(nodeid)

    def stop(self) -> dict[str, dict[str, Any]]:
        self.cov.stop()
        data = self.cov.get_data()
        tests: dict[str, dict[str, Any]] = {}
        for path in data.measured_files():
            for line, contexts in data.contexts_by_lineno(path).items():
                for context in contexts:
                    if context:  # "": collection and import time, not a test
                        tests.setdefault(context, {}).setdefault(path, set()).add(line)
        return tests


class _Tracer(_Recorder):
    """sys.settrace: a global function that answers None for code outside the root (no line events there), and
    for code whose every line this test has already recorded (a helper called in a loop, a recursive function)."""

    engine = "greenpatch tracer (settrace)"

    def __init__(self, root: str, out: str) -> None:
        super().__init__(root, out)
        self.tests: dict[str, dict[str, set[int]]] = {}
        self.files: dict[str, set[int]] | None = None  # the running test's
        self.known: dict[str, bool] = {}
        self.done: dict[int, Any] = {}  # id(code) -> code, fully recorded in this test (kept so ids stay unique)
        self.linestarts: dict[int, tuple[Any, frozenset[int]]] = {}
        self.local = self._local  # one bound method, not one per traced frame

    def start(self) -> None:
        threading.settrace(self._global)
        sys.settrace(self._global)

    def switch_context(self, nodeid: str) -> None:
        self.files = self.tests.setdefault(nodeid, {}) if nodeid else None
        self.done = {}

    def stop(self) -> dict[str, dict[str, Any]]:
        sys.settrace(None)
        threading.settrace(None)
        return self.tests

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        if self.files is None:
            return None  # collection and import time are not any test's
        code = frame.f_code
        if id(code) in self.done:
            return None
        filename = code.co_filename
        inside = self.known.get(filename)
        if inside is None:
            inside = self.known[filename] = self.under_root(filename)
        return self.local if inside else None

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        files = self.files
        if files is None:
            return self.local
        if event == "line":
            filename = frame.f_code.co_filename
            lines = files.get(filename)
            if lines is None:
                lines = files[filename] = set()
            lines.add(frame.f_lineno)
        elif event == "return":
            code = frame.f_code
            lines = files.get(code.co_filename)
            if lines is not None and self._lines(code) <= lines:
                self.done[id(code)] = code
        return self.local

    def _lines(self, code: Any) -> frozenset[int]:
        """The lines `code` can report (its own, not its nested functions'); the def line (3.11's RESUME) is no
        statement of the body."""
        known = self.linestarts.get(id(code))
        if known is None or known[0] is not code:
            import dis

            lines = frozenset(line for _, line in dis.findlinestarts(code) if line is not None)
            known = self.linestarts[id(code)] = (code, lines - {code.co_firstlineno})
        return known[1]


class _Monitor(_Recorder):
    """sys.monitoring (3.12+): PY_START turns on LINE events for code under the root; each line event is recorded
    and then disabled until the next test (restart_events), so a loop costs one event per line per test."""

    engine = "greenpatch tracer (sys.monitoring)"

    def __init__(self, root: str, out: str) -> None:
        super().__init__(root, out)
        self.tests: dict[str, dict[str, set[int]]] = {}
        self.files: dict[str, set[int]] | None = None
        self.known: dict[str, bool] = {}
        self.mon: Any = sys.monitoring  # type: ignore[attr-defined, unused-ignore]  # 3.12+
        self.tool = -1

    def start(self) -> None:
        mon = self.mon
        for tool in (3, 4, 2, 1, 0):  # the free ids first; 1 is coverage.py's, 0 debuggers'
            try:
                mon.use_tool_id(tool, "greenpatch")
            except ValueError:
                continue
            self.tool = tool
            break
        else:
            raise RuntimeError("no free sys.monitoring tool id")
        mon.register_callback(self.tool, mon.events.PY_START, self._start)
        mon.register_callback(self.tool, mon.events.LINE, self._line)
        mon.set_events(self.tool, mon.events.PY_START)

    def switch_context(self, nodeid: str) -> None:
        self.files = self.tests.setdefault(nodeid, {}) if nodeid else None
        if self.tool >= 0:
            self.mon.restart_events()

    def stop(self) -> dict[str, dict[str, Any]]:
        if self.tool >= 0:
            mon = self.mon
            mon.set_events(self.tool, 0)
            mon.register_callback(self.tool, mon.events.PY_START, None)
            mon.register_callback(self.tool, mon.events.LINE, None)
            mon.free_tool_id(self.tool)
            self.tool = -1
        return self.tests

    def _start(self, code: Any, offset: int) -> Any:
        filename = code.co_filename
        inside = self.known.get(filename)
        if inside is None:
            inside = self.known[filename] = self.under_root(filename)
        if inside:
            self.mon.set_local_events(self.tool, code, self.mon.events.LINE)
        return self.mon.DISABLE

    def _line(self, code: Any, line: int) -> Any:
        files = self.files
        if files is None:
            return None  # import time: keep the event for the first test that runs this line
        lines = files.get(code.co_filename)
        if lines is None:
            lines = files[code.co_filename] = set()
        lines.add(line)
        return self.mon.DISABLE


def recorder(root: str, out: str, engine: str = "") -> tuple[_Recorder, str]:
    """The recorder for this interpreter and why coverage.py is not it ("" when it is). `engine`: "tracer" skips
    coverage.py (the verifier's probe found it unusable; importing it again here could only fail the same way)."""
    why = "coverage not wanted"
    if engine != "tracer":
        coverage, why = usable_coverage()
        if coverage is not None:
            return _CoverageRecorder(root, out, coverage), ""
    if sys.version_info >= (3, 12):
        return _Monitor(root, out), why
    return _Tracer(root, out), why
