"""The greenpatch side of the warm fork server (pytest_plugin/greenpatch_zygote.py).

A test run in a fresh interpreter spends most of a small selection starting Python and importing pytest. A zygote
pays that once per (interpreter, workspace): it imports pytest and the greenpatch plugin (never a project module)
and forks one child per run, which puts itself under the same limits and namespaces as a cold run before it imports
anything of the project from its sandbox (see the zygote module for the list).

Lifetime: started on the first run of a trusted workspace by a keeper thread that lives as long as the zygote
(PR_SET_PDEATHSIG fires when the *thread* that started a process ends, so it must not be a pool worker), in its
own session (no terminal signals). It dies when greenpatch closes the socket (close(), interpreter exit) or dies
(PR_SET_PDEATHSIG, and end of file on the socket); every run it started dies with it. When it cannot start or dies,
runs go cold (a fresh `python -m pytest`), as they do with GREENPATCH_VERIFY_WARM=0.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SETUP_FAILED = 119  # the child could not put itself under the limits (greenpatch_zygote.SETUP_FAILED)
MAX_STARTS = 3
READY_TIMEOUT = 30.0
SPAWN_TIMEOUT = 10.0  # a fork takes milliseconds; the zygote may be finishing one byte-compilation first


def warm_enabled(setting: bool | None = None) -> bool:
    """The warm path is used on Linux unless switched off by the caller or GREENPATCH_VERIFY_WARM=0."""
    if setting is not None:
        return setting and _supported()
    value = os.environ.get("GREENPATCH_VERIFY_WARM", "1").strip().lower()
    return value not in ("0", "false", "no", "off") and _supported()


def _supported() -> bool:
    return os.name == "posix" and hasattr(os, "fork") and os.uname().sysname == "Linux"


class WarmProcess:
    """One run forked by the zygote, with the parts of subprocess.Popen that process.run uses."""

    def __init__(self, zygote: Zygote, run_id: int) -> None:
        self.zygote = zygote
        self.id = run_id
        self.pid = 0
        self.returncode: int | None = None
        self.lost = False  # the zygote died before it could report how the run ended
        self.started = threading.Event()
        self.done = threading.Event()

    def poll(self) -> int | None:
        return self.returncode if self.done.is_set() else None

    def wait(self, timeout: float) -> int | None:
        self.done.wait(timeout)
        return self.poll()


class Zygote:
    """A warm fork server for one interpreter. Thread-safe; `spawn` returns None whenever the warm path cannot be
    used, and the caller then runs cold."""

    def __init__(self, python: str, env: dict[str, str], plugin_dir: Path) -> None:
        self.python = python
        self.env = env
        self.plugin_dir = plugin_dir
        self.pid = 0
        self.disabled = ""  # why the warm path is off for good ("" while it may be used)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ready = threading.Event()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._keeper: threading.Thread | None = None
        self._settled = threading.Event()
        self._runs: dict[int, WarmProcess] = {}
        self._compiles: dict[int, Any] = {}  # compile request id -> callback
        self._next_id = 0
        self._starts = 0
        self._closed = False

    # --- public ----------------------------------------------------------------------------------------------

    def spawn(self, request: dict[str, Any], timeout: float | None = None) -> WarmProcess | None:
        """Ask the zygote to fork a run. None: not available (the caller runs cold)."""
        timeout = SPAWN_TIMEOUT if timeout is None else timeout
        sock = self._ensure()
        if sock is None:
            return None
        with self._lock:
            if self._sock is not sock:  # it ended just now
                return None
            self._next_id += 1
            run = WarmProcess(self, self._next_id)
            self._runs[run.id] = run
        message = (json.dumps({"op": "run", "id": run.id, **request}) + "\n").encode()
        try:
            with self._send_lock:
                sock.sendall(message)
        except OSError:
            self._forget(run.id)
            return None
        if not run.started.wait(timeout):
            # a zygote that does not answer may still fork this run later, outside any watchdog: end it (and
            # with it anything it started) rather than guess
            self._forget(run.id)
            self.disable(f"the zygote did not answer within {timeout:g} s")
            return None
        if run.pid <= 0:
            return None
        return run

    def compile(self, root: Path, files: list[str], done: Any, *, rewrite: bool = True) -> bool:
        """Ask the zygote to byte-compile `files` of the pristine copy `root` between runs; `done(root, pairs)`
        is called from the reader thread with [(file, [pyc, ...]), ...]. False when the zygote is not running."""
        with self._lock:
            sock = self._sock if self._ready.is_set() else None
            if sock is None or not files:
                return False
            self._next_id += 1
            self._compiles[self._next_id] = done
            message = json.dumps({"op": "compile", "id": self._next_id, "root": str(root), "files": files,
                                  "rewrite": rewrite})
        try:
            with self._send_lock:
                sock.sendall((message + "\n").encode())
        except OSError:
            return False
        return True

    def disable(self, reason: str) -> None:
        """Stop using the warm path (the child could not set itself up here); running children are unaffected."""
        log.warning("warm test runs switched off: %s", reason)
        self.disabled = reason or "disabled"
        self._shutdown()

    def close(self) -> None:
        """End the zygote and every run it started. Safe to call twice."""
        self._closed = True
        self._shutdown()
        keeper = self._keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._ready.is_set() and self._sock is not None

    # --- internals -------------------------------------------------------------------------------------------

    def _ensure(self) -> socket.socket | None:
        with self._lock:
            if self._closed or self.disabled:
                return None
            if self._sock is None:
                if self._starts >= MAX_STARTS:
                    self.disabled = f"the zygote ended {self._starts} times"
                    return None
                self._starts += 1
                self._ready.clear()
                self._settled = threading.Event()
                ours, theirs = socket.socketpair()
                self._sock = ours
                self._keeper = threading.Thread(target=self._keep, args=(ours, theirs, self._settled),
                                                name="greenpatch-zygote", daemon=True)
                self._keeper.start()
            sock, settled = self._sock, self._settled
        if not settled.wait(READY_TIMEOUT):
            self.disable(f"the zygote did not start within {READY_TIMEOUT:g} s")
            return None
        if not self._ready.is_set() or self._sock is not sock:
            return None
        return sock

    def _keep(self, ours: socket.socket, theirs: socket.socket, settled: threading.Event) -> None:
        """Start the zygote, read its messages until it ends, then fail whatever was still waiting on it."""
        proc = None
        try:
            code = "import greenpatch_zygote as z; z.main()"
            proc = subprocess.Popen(
                [self.python, "-c", code, str(theirs.fileno()), str(os.getpid())], cwd=self.plugin_dir,
                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), start_new_session=True, close_fds=True,
            )
            self._proc = proc
            theirs.close()
            self._read(ours, settled)
        except OSError as exc:
            log.info("cannot start the test zygote with %s: %s", self.python, exc)
        finally:
            theirs.close()
            with self._lock:
                if self._sock is ours:
                    self._sock = None
                    self._ready.clear()
                lost = [r for r in self._runs.values() if not r.done.is_set()]
                self._runs.clear()
            settled.set()
            for run in lost:
                run.lost = True
                run.returncode = -9
                run.started.set()
                run.done.set()
            ours.close()
            if proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _read(self, sock: socket.socket, settled: threading.Event) -> None:
        buffer = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                self._dispatch(message)
                if self._ready.is_set():
                    settled.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            self.pid = int(message.get("pid") or 0)
            self._ready.set()
            return
        if "compiled" in message:
            with self._lock:
                done = self._compiles.pop(int(message.get("id") or 0), None)
            if done is not None:
                try:
                    done(Path(str(message["compiled"])), message.get("files") or [])
                except Exception:  # a bookkeeping error must not end the reader
                    log.exception("compiled files not recorded")
            return
        with self._lock:
            run = self._runs.get(int(message.get("id") or 0))
        if run is None:
            return
        if "pid" in message:
            run.pid = int(message["pid"])
            run.started.set()
        elif "exit" in message:
            run.returncode = int(message["exit"])
            self._forget(run.id)
            run.started.set()
            run.done.set()

    def _forget(self, run_id: int) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _shutdown(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # end of file for the zygote: it kills its runs and exits
            except OSError:
                pass


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once `pid` no longer exists (or is a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[:1]
        except OSError:
            return True
        if not state or state[0] in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False
