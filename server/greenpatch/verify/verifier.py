"""Verifier: run a workspace's tests on candidate edits in sandboxed copies, choosing only the affected tests.

Safety, in one place (details in sandbox.py and process.py):
* nothing runs unless the workspace is trusted (`trusted=False`: every method that would run code raises
  errors.UntrustedWorkspace before anything starts; `select` and `line_coverage` only read files);
* the tests run in a copy (hardlink farm of a private pristine copy); candidate files are written there as new
  files; HOME, TMPDIR and the working directory are inside the copy;
* one process tree per run, in its own session, under rlimits, a pids cgroup or watchdog, a wall-clock timeout,
  no network (namespaces) where the OS allows; everything is killed and removed after the run, on cancel and on
  close()/interpreter exit.

One run's pytest attempts are in pytest_run.py, runs kept for reuse in runcache.py.

Cancellation returns a TestRun whose `cancelled` is true (it does not raise, see cancel.py); the process tree is
gone when it returns.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from greenpatch.cancel import CANCELLED, CancelToken, LinkedToken
from greenpatch.errors import UntrustedWorkspace, UsageError, VerifyError
from greenpatch.resources import user_cache_dir, workspace_key
from greenpatch.verify import process
from greenpatch.verify.causes import FLAKY
from greenpatch.verify.covmap import CoverageMap, content_hash, from_coverage_data
from greenpatch.verify.pytest_args import TestFiles, narrow, split_args
from greenpatch.verify.pytest_run import TIMED_OUT, run_pytest
from greenpatch.verify.python import Interpreter, probe, resolve_python
from greenpatch.verify.runcache import RunCache, run_key
from greenpatch.verify.sandbox import (
    Pristine,
    make_sandbox,
    make_work_dir,
    remove_tree,
    skip_dir,
    source_files,
)
from greenpatch.verify.select import Selection, importers, select
from greenpatch.verify.types import Changes, TestRun
from greenpatch.verify.zygote import Zygote, warm_enabled

PLUGIN_DIR = Path(__file__).parent / "pytest_plugin"
RECHECK_LIMIT = 100  # failing tests run a second time after a baseline, to tell flaky ones


def default_state_dir(root: Path) -> Path:
    return user_cache_dir() / "verify" / workspace_key(root)


class Verifier:
    """Runs a workspace's tests in sandboxes. Thread-safe; `run_many` verifies candidates in parallel."""

    def __init__(
        self, root: Path, *, python: str = "", timeout: float = 60.0, memory_mb: int = 2048, parallel: int = 2,
        trusted: bool = True, state_dir: Path | None = None, warm: bool | None = None, test_timeout: float = 0.0,
        deadline: float | None = None, pytest_args: list[str] | None = None,
    ) -> None:
        """timeout: wall clock of one run; test_timeout: of one test within it (0: none); deadline: a
        time.monotonic() no run of this verifier outlives; pytest_args: the user's pytest arguments (options for
        every run, files and node ids as the scope of what runs)."""
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise UsageError(f"{root}: not a folder")
        self.python = resolve_python(self.root, python)
        self.timeout = timeout
        self.test_timeout = max(0.0, test_timeout)
        self.deadline = deadline
        self.pytest_args = list(pytest_args or [])
        self.pytest_options, self.scope = split_args(self.pytest_args)
        self.is_test_file = TestFiles(self.root)
        self.flaky: set[str] = set()  # node ids that failed, then passed when run again
        self.memory_mb = memory_mb
        self.parallel = max(1, parallel)
        self.trusted = trusted
        self.state_dir = Path(state_dir) if state_dir else default_state_dir(self.root)
        self.map_path = self.state_dir / "coverage-map.json"
        self._map = CoverageMap.load(self.map_path)
        self._lock = threading.Lock()
        self._closing = CancelToken()
        self._active = 0
        self._idle = threading.Condition(self._lock)
        self._work: Path | None = None
        self._pristine: Pristine | None = None
        self._cache = RunCache(self.state_dir)
        self._sources: dict[str, tuple[int, int, str]] = {}
        self.sessions: list[int] = []  # session ids of every test process tree started (all killed when runs end)
        self.warm = warm_enabled(warm)  # fork runs from a warm zygote (see zygote.py); None: GREENPATCH_VERIFY_WARM
        self._zygote: Zygote | None = None
        self.warm_runs = 0  # runs that went through the zygote (the others started cold)
        self._compiling: dict[str, int] = {}  # pristine file -> pid of the zygote asked to byte-compile it
        atexit.register(self.close)

    # --- public API ------------------------------------------------------------------------------------------

    def baseline(
        self, *, changes: Changes | None = None, cancel: CancelToken | None = None, deadline: float | None = None,
    ) -> TestRun:
        """Run the whole suite (the user's scope) with per-test coverage contexts and rebuild the test -> lines map
        from it; failing tests are run again once to tell flaky ones (cause "flaky")."""
        self._require_trust()
        changes = self._check(changes or {})
        run = self._execute(changes, list(self.scope), "all", coverage=True, stop=False, cancel=cancel,
                            deadline=deadline)
        return self._recheck(run, changes, cancel, deadline)

    def refresh(self, *, cancel: CancelToken | None = None, deadline: float | None = None) -> TestRun:
        """Bring the coverage map up to date incrementally: re-measure only the tests that can see the files
        changed since it was built (the whole suite when there is no map yet)."""
        self._require_trust()
        if self._map is None:
            return self.baseline(cancel=cancel, deadline=deadline)
        sources = self._read_sources(all_files=True)
        stale = {rel for rel in set(sources) | set(self._map.hashes)
                 if self._map.hashes.get(rel) != (content_hash(sources[rel]) if rel in sources else None)}
        if not stale:
            return TestRun(level="coverage")
        py_sources = {rel: text for rel, text in sources.items() if rel.endswith(".py")}
        tests = self._test_files(py_sources)
        targets: set[str] = set()
        for rel in stale:
            if self.is_test_file(rel) and rel in sources:
                targets.add(rel)
            elif rel.endswith(".py"):
                targets |= {t for t, files in self._map.tests.items() if rel in files}
                targets |= {u for u in importers(rel, py_sources) if u in tests}
            elif rel in sources:
                return self.baseline(cancel=cancel, deadline=deadline)
        targets = {t for t in targets if t.split("::", 1)[0] in sources}
        whole = {t for t in targets if "::" not in t}
        targets = {t for t in targets if t in whole or t.split("::", 1)[0] not in whole}
        return self._execute({}, sorted(targets), "coverage", coverage=True, stop=False, cancel=cancel,
                             incremental=True, deadline=deadline)

    def run(
        self, changes: Changes | None = None, *, tests: list[str] | None = None, stop_at_first_failure: bool = False,
        cancel: CancelToken | None = None, deadline: float | None = None, recheck: bool = False,
    ) -> TestRun:
        """Run the tests affected by `changes` (path -> full new content, applied in the sandbox only), or the
        given node ids / test files (level "given"). An empty selection at level "all" runs the whole suite (the
        user's scope). No run outlives `deadline` (time.monotonic()). recheck: run failing tests again once to
        tell flaky ones; tests found flaky before are marked so in every run."""
        self._require_trust()
        changes = self._check(changes or {})
        if tests is not None:
            selection = Selection(list(tests), "given")
        elif changes:
            selection = self.select(changes)
            if selection.level != "all" and self.scope:
                selection.tests = narrow(selection.tests, self.scope)
                if not selection.tests:
                    selection = Selection([], "all", selection.reasons)
        else:
            selection = Selection([], "all")
        targets = selection.tests if selection.level != "all" else list(self.scope)
        run = self._execute(changes, targets, selection.level, coverage=False, stop=stop_at_first_failure,
                            cancel=cancel, deadline=deadline)
        return self._recheck(run, changes, cancel, deadline) if recheck else run

    def run_many(
        self, candidates: list[Changes], *, tests: list[str] | None = None, stop_at_first_failure: bool = True,
        cancel: CancelToken | None = None, deadline: float | None = None,
    ) -> list[TestRun]:
        """Verify candidates in parallel (up to `parallel` at once); results in the order of `candidates`."""
        self._require_trust()
        if not candidates:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(candidates))) as pool:
            futures = [pool.submit(self.run, c, tests=tests, stop_at_first_failure=stop_at_first_failure,
                                   cancel=cancel, deadline=deadline) for c in candidates]
            return [f.result() for f in futures]

    def select(self, changes: Changes, *, against_map: bool = False) -> Selection:
        """Which tests `changes` can affect, and at which level (see greenpatch.verify.select). against_map:
        compare with the sources as measured for the coverage map, not the workspace (for edits already saved)."""
        changes = self._check(changes)
        sources = self._read_sources()
        return select(changes, sources=sources, cmap=self._map, test_files=self._test_files(sources),
                      against_map=against_map, is_test=self.is_test_file)

    def line_coverage(self) -> dict[str, dict[str, set[int]]]:
        """Test node id -> {workspace-relative path: executed 1-based lines}, from the last baseline."""
        return self._map.line_coverage() if self._map else {}

    @property
    def coverage_map(self) -> CoverageMap | None:
        return self._map

    def close(self) -> None:
        """Kill every running test process tree and remove every sandbox. Safe to call twice."""
        self._closing.cancel()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=30)
            work, self._work, self._pristine = self._work, None, None
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()
        if work is not None:
            remove_tree(work)
        atexit.unregister(self.close)

    def __enter__(self) -> Verifier:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------------------

    def _require_trust(self) -> None:
        if not self.trusted:
            raise UntrustedWorkspace()
        if self._closing.is_set():
            raise VerifyError("this verifier was closed")

    def _check(self, changes: Changes) -> Changes:
        clean: Changes = {}
        for rel, content in changes.items():
            path = PurePosixPath(rel.replace(os.sep, "/"))
            if path.is_absolute():
                try:
                    path = PurePosixPath(Path(rel).resolve().relative_to(self.root).as_posix())
                except ValueError:
                    raise UsageError(f"{rel}: not inside the workspace {self.root}") from None
            if not path.parts or ".." in path.parts or any(skip_dir(self.root / p) for p in path.parents
                                                           if str(p) != "."):
                raise UsageError(f"{rel}: not a source file of the workspace")
            clean[path.as_posix()] = content
        return clean

    def _read_sources(self, all_files: bool = False) -> dict[str, str]:
        out: dict[str, str] = {}
        for rel, st in source_files(self.root).items():
            if not all_files and not rel.endswith(".py"):
                continue
            known = self._sources.get(rel)
            if known and known[:2] == (st.st_size, st.st_mtime_ns):
                out[rel] = known[2]
                continue
            try:
                text = (self.root / rel).read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            self._sources[rel] = (st.st_size, st.st_mtime_ns, text)
            out[rel] = text
        return out

    def _test_files(self, sources: dict[str, str]) -> list[str]:
        """The test files a run of the whole suite collects (the project's python_files and testpaths): a file
        the project never runs (outside testpaths) is no test of a candidate."""
        return sorted(rel for rel in sources if self.is_test_file(rel) and self.is_test_file.in_testpaths(rel))

    def _prepare(self) -> Pristine:
        if self._pristine is None:
            self._work = make_work_dir()
            self._pristine = Pristine(self.root, self._work)
        self._pristine.sync()
        return self._pristine

    def _execute(
        self, changes: Changes, targets: list[str], level: str, *, coverage: bool, stop: bool,
        cancel: CancelToken | None, incremental: bool = False, deadline: float | None = None,
    ) -> TestRun:
        token = LinkedToken(cancel, self._closing)  # the caller's cancel or this verifier's close()
        if token.is_set():
            return TestRun(level=level, selected=list(targets), error=CANCELLED)
        # the run's wall clock, never past the caller's deadline nor this verifier's
        ends = min(d for d in (time.monotonic() + self.timeout, deadline, self.deadline) if d is not None)
        with self._lock:
            if self._closing.is_set():
                return TestRun(level=level, selected=list(targets), error=CANCELLED)
            pristine = self._prepare()
            fingerprint = pristine.fingerprint()
            key = run_key(changes, targets, stop, fingerprint, self.python, self.test_timeout, self.pytest_options)
            cached = self._cache.get(key) if not coverage else None
            if cached is not None:
                return self._mark_flaky(cached)
            if ends <= time.monotonic():
                return TestRun(level=level, selected=list(targets), timed_out=True)
            assert self._work is not None
            box = make_sandbox(pristine, self._work, changes)
            hashes = {rel: content_hash((pristine.path / rel).read_bytes()) for rel in pristine.files()
                      if rel not in changes} if coverage else {}
            self._active += 1
        try:
            hashes.update({rel: content_hash(text) for rel, text in changes.items()} if coverage else {})
            run = run_pytest(
                box, targets, level, python=self.python, options=self.pytest_options, stop=stop,
                test_timeout=self.test_timeout, memory_mb=self.memory_mb, cancel=token, ends=ends,
                pristine=self._pristine, environment=lambda results: self._environment(box, results, coverage),
                zygote=self._get_zygote, on_attempt=self._attempt_ended)
            # a run started again after a hang measured only part of the suite in each process: no map from it
            if coverage and run.error == "" and not run.timed_out and not run.restarts:
                snapshot = {rel: (box.src / rel).read_text(encoding="utf-8", errors="replace")
                            for rel in hashes if rel.endswith(".py") and (box.src / rel).exists()}
                measured = from_coverage_data(box.out / "coverage", box.src, hashes, snapshot)
                measured.seconds = run.seconds
                with self._lock:
                    if incremental and self._map is not None:
                        replaced = {t for t in self._map.tests
                                    if t in targets or t.split("::", 1)[0] in targets}
                        self._map.merge(measured, replaced)
                        self._map.hashes = hashes
                        self._map.snapshot = snapshot
                    else:
                        self._map = measured
                    if not self.pytest_args:  # a map of part of the suite serves this verifier only
                        self._map.save(self.map_path)
        finally:
            remove_tree(box.path)
            with self._idle:
                if self._pristine is not None:
                    self._pristine.repair()
                self._active -= 1
                self._idle.notify_all()
        if not coverage and not run.error and not run.timed_out and not run.restarts and not any(
                r.message.startswith(TIMED_OUT) for r in run.results):  # a time limit depends on the load
            with self._lock:
                self._cache.put(key, run)
        return self._mark_flaky(run)

    def _mark_flaky(self, run: TestRun) -> TestRun:
        for result in run.results:
            if result.nodeid in self.flaky and result.outcome in ("failed", "error") and not result.cause:
                result.cause = FLAKY
        return run

    def _recheck(self, run: TestRun, changes: Changes, cancel: CancelToken | None, deadline: float | None) -> TestRun:
        """Run the failing tests of `run` once more, alone; those that pass now are flaky (cause "flaky", and
        remembered for every later run). A test that ran out of time is not run again: that costs its limit."""
        again = [r.nodeid for r in run.failed if "::" in r.nodeid and not r.message.startswith(TIMED_OUT)]
        if not again or run.error or len(again) > RECHECK_LIMIT:
            return run
        second = self._execute(changes, again, "given", coverage=False, stop=False, cancel=cancel,
                               deadline=deadline)
        if second.error:
            return run
        passed = {r.nodeid for r in second.results if r.outcome == "passed"}
        with self._lock:
            self.flaky |= passed
        return self._mark_flaky(run)

    def _attempt_ended(self, outcome: process.Outcome, records: list[dict[str, object]]) -> None:
        self.sessions += [*outcome.abandoned, outcome.session]
        self.warm_runs += outcome.warm
        if outcome.warm:
            self._compile_imported(records)

    def _get_zygote(self) -> Zygote | None:
        if not self.warm:
            return None
        with self._lock:
            if self._zygote is None and not self._closing.is_set():
                # the zygote's own environment: what the interpreter reads at start-up is the same as in a run
                env = self._base_environment(home="/nonexistent", tmp=tempfile.gettempdir())
                self._zygote = Zygote(self.python, env, PLUGIN_DIR)
            return self._zygote

    def _compile_imported(self, records: list[dict[str, object]]) -> None:
        """Have the zygote byte-compile the project files this run imported, for the runs after it."""
        imported = next((r.get("files") for r in records if r.get("event") == "imported"), None)
        zygote = self._zygote
        if not isinstance(imported, list) or zygote is None or not zygote.alive:
            return
        with self._lock:
            pristine = self._pristine
            if pristine is None:
                return
            known, done = set(pristine.files()), pristine.compiled()
            wanted = [rel for rel in imported if isinstance(rel, str) and rel in known and rel not in done
                      and self._compiling.get(rel) != zygote.pid]
            if not wanted:
                return
            self._compiling.update(dict.fromkeys(wanted, zygote.pid))
            rewrite = not any("enable_assertion_pass_hook" in (pristine.read(name) or "")
                              for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"))
        zygote.compile(pristine.path, wanted, self._record_compiled, rewrite=rewrite)

    def _record_compiled(self, root: Path, pairs: list[list[object]]) -> None:
        with self._lock:
            pristine = self._pristine
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    continue
                self._compiling.pop(pair[0], None)
                if pristine is not None and pristine.path == root and isinstance(pair[1], list):
                    pristine.add_compiled(pair[0], [str(p) for p in pair[1]])

    def _base_environment(self, home: str, tmp: str) -> dict[str, str]:
        return base_environment(self.python, home, tmp)

    def _environment(self, box: object, results_file: Path, coverage: bool) -> dict[str, str]:
        from greenpatch.verify.sandbox import Sandbox

        assert isinstance(box, Sandbox)
        env = self._base_environment(str(box.home), str(box.tmp))
        env["PWD"] = str(box.src)
        env["GREENPATCH_RESULTS"] = str(results_file)
        if process.isolation().network_blocked:
            env["GREENPATCH_NETNS"] = "1"
        if process.isolation().mount_namespace:
            env["GREENPATCH_READONLY"] = os.path.realpath(box.path)
        interpreter = self.interpreter()
        interpreter.check()
        if coverage:
            # lines per test from the project's own coverage.py when it is usable there, else greenpatch's tracer
            # (never a coverage of greenpatch's: it may not even parse on the project's Python)
            env["GREENPATCH_COVERAGE"] = str(box.out / "coverage")  # covmap.from_coverage_data reads it
            env["GREENPATCH_COVERAGE_ENGINE"] = interpreter.engine
        return env

    def interpreter(self) -> Interpreter:
        """What the workspace's interpreter offers the test runs (probed once per interpreter and state of its
        site-packages). Runs that interpreter: UntrustedWorkspace unless the workspace is trusted."""
        self._require_trust()
        return probe(self.python, self._base_environment(home="/nonexistent", tmp=tempfile.gettempdir()))


def base_environment(python: str, home: str, tmp: str) -> dict[str, str]:
    """The environment a sandboxed run of the workspace's code starts with: nothing of greenpatch's own but the
    plugin folder on PYTHONPATH, the interpreter's venv activated."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home, "USERPROFILE": home, "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0",
        "PYTHONPATH": str(PLUGIN_DIR), "PYTHONIOENCODING": "utf-8",
        "NO_COLOR": "1", "COLUMNS": "120", "CI": "1",
    }
    venv = Path(python).parent.parent
    if (venv / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{Path(python).parent}{os.pathsep}{env['PATH']}"
    if os.name == "nt":
        env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", "")
    return env
