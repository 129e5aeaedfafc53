"""Fork server for warm test runs: greenpatch starts one per (interpreter, workspace) with this folder on PYTHONPATH.

It imports pytest and the greenpatch plugin once (standard library and site-packages only: never a module of the
project, so nothing can go stale between candidates) and then forks one child per run. The child puts itself under
exactly the limits of a cold run before anything of the project is imported: its own session, the run's pids
cgroup, rlimits, PR_SET_PDEATHSIG, the same namespaces `unshare` would create (mount propagation made private first,
then greenpatch_readonly.confine(); no network; a pid namespace whose first process is the run), the
output file as stdout/stderr, the scrubbed environment, and the sandbox as working directory and sys.path[0]. Then
it runs `pytest.console_main()` as `python -m pytest` would.

Protocol (JSON lines on the socket given as argv[1]): greenpatch sends {"op": "run", "id", "argv", "cwd", "env",
"output", "cgroup", "limits", "unshare"}; the zygote answers {"id", "pid"} right after the fork and
{"id", "exit"} when the run's first process is reaped (the exit status as subprocess reports it).
{"op": "compile", "id", "root", "files"} byte-compiles pristine files (never running them) into checked-hash pycs
next to them, between runs, and answers {"id", "compiled": root, "files": [[file, [pyc, ...]], ...]}. End of file on
the socket (greenpatch closed it or died) kills every run and ends the zygote; PR_SET_PDEATHSIG kills the zygote
if greenpatch dies first. A child that cannot set up its limits exits with SETUP_FAILED and says why in its output;
greenpatch then runs that test cold.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import traceback
from typing import Any

SETUP_FAILED = 119
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
MS_REC, MS_PRIVATE = 16384, 1 << 18
MAX_REQUEST = 4 * 1024 * 1024

_libc: Any = None


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setup_child(req: dict[str, Any], zygote_pid: int) -> None:
    """In the forked child, before any project code: session, cgroup, rlimits, parent-death signal, output."""
    os.setsid()
    for cgroup in req.get("cgroups") or ([req["cgroup"]] if req.get("cgroup") else []):
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    limits = req["limits"]
    cpu = int(limits["cpu"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (int(limits["as"]), int(limits["as"])))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["fsize"]), int(limits["fsize"])))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if int(limits.get("nproc") or 0):
        resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["nproc"]), int(limits["nproc"])))
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
    if os.getppid() != zygote_pid:  # the zygote died before the line above: nobody would ever kill us
        os._exit(SETUP_FAILED)
    out = os.open(req["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(null)


def _unshare(spec: dict[str, Any]) -> None:
    flags = (CLONE_NEWNET if spec.get("net") else 0) | (CLONE_NEWPID if spec.get("pid") else 0)
    flags |= (CLONE_NEWNS if spec.get("mount") else 0) | (CLONE_NEWUSER if spec.get("user") else 0)
    if not flags:
        return
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(flags), "unshare")
    if spec.get("user"):  # as `unshare --map-root-user`: root inside, our own user outside
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    if spec.get("mount"):  # as `unshare --mount` does by default: nothing we mount here reaches the host
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


def _relay(pid: int) -> None:
    """Like `unshare --fork`: wait for the namespace's first process and end the same way it did."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # their handlers cannot be set (EINVAL), nor need be
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)


def _run_pytest(req: dict[str, Any]) -> None:
    """In the run's first process: become `python -m pytest ARGS` in the sandbox and never return."""
    import pytest

    # `-p greenpatch_pytest` imports it again, as in a cold run (pytest's assertion rewriter warns about a plugin
    # module that is already imported)
    sys.modules.pop("greenpatch_pytest", None)
    cwd = req["cwd"]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(req["env"])
    sys.path.insert(0, cwd)  # what `python -m` puts first
    sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *req["argv"]]
    if "tempfile" in sys.modules:
        tempfile: Any = sys.modules["tempfile"]  # loaded in the zygote already: reset, not re-imported
        tempfile.tempdir = None  # computed again from this run's TMPDIR
    code: Any = 1
    try:
        code = pytest.console_main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - an uncaught error ends the interpreter with 1, as in a cold run
        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001,S110 - the output file may be full
                pass
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
        code = 1
    os._exit(code & 0xFF)


def _child(req: dict[str, Any], zygote_pid: int, keep_fds: tuple[int, ...]) -> None:
    try:
        for fd in keep_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        _setup_child(req, zygote_pid)
        spec = req.get("unshare") or {}
        _unshare(spec)
        if spec.get("pid"):
            alive_r, alive_w = os.pipe()  # the relay holds the write end: end of file once it is gone
            pid = os.fork()
            if pid:
                os.close(alive_r)
                _relay(pid)
            # the namespace's first process: dies with the relay (`unshare --kill-child`); all others die with it
            os.close(alive_w)
            _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
            # getppid() is 0 here (the parent is outside the namespace): a relay that died before the line above
            # shows as end of file, and nobody would ever kill us
            if select.select([alive_r], [], [], 0)[0]:
                os._exit(SETUP_FAILED)
            os.close(alive_r)
        if req.get("confine"):  # as the cold launcher does, before anything of the project is imported
            import greenpatch_readonly

            greenpatch_readonly.confine(req["confine"])
    except BaseException:  # noqa: BLE001 - report and let greenpatch run this one cold
        try:
            sys.stderr.write("greenpatch zygote: cannot set up the run\n" + traceback.format_exc())
            sys.stderr.flush()
        finally:
            os._exit(SETUP_FAILED)
    try:
        _run_pytest(req)
    except BaseException:  # noqa: BLE001 - as an uncaught error ends a cold interpreter
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(1)


def _rewrite_writer() -> Any:
    """pytest's own writer of rewritten-test pycs, when this pytest validates them by source hash and fixes their
    file names on load (so a pyc made from the pristine copy is right in every sandbox); None otherwise."""
    try:
        import inspect

        from _pytest.assertion import rewrite

        if "source_hash" not in inspect.signature(rewrite._write_pyc_fp).parameters or not hasattr(
                rewrite, "_fix_code_filename"):
            return None
        return rewrite
    except Exception:  # noqa: BLE001 - another pytest: no rewritten pycs, runs rewrite as usual
        return None


def _compile(root: str, rel: str, rewrite: Any) -> list[str]:
    """Byte-compile one pristine file next to itself, as checked-hash pycs (the interpreter and pytest compare the
    source's hash on every load, so a pyc can never stand for other content). Compiling never runs the file. A file
    whose compilation warns gets no pyc: a cold run would show the warning. Returns the pycs written (relative)."""
    import importlib.util
    import py_compile
    import warnings

    parts = rel.split("/")
    if not rel.endswith(".py") or rel.startswith("/") or ".." in parts:
        return []
    path = os.path.join(root, *parts)
    written: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open(path, "rb") as f:
                source = f.read()
            cfile = importlib.util.cache_from_source(path)
            py_compile.compile(path, cfile, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            written.append(cfile)
            name = parts[-1]
            if rewrite is not None and (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"):
                import ast

                tree = ast.parse(source, filename=path)
                rewrite.rewrite_asserts(tree, source, path, None)
                code = compile(tree, path, "exec", dont_inherit=True)
                pyc = os.path.join(os.path.dirname(path), "__pycache__", name[:-3] + rewrite.PYC_TAIL)
                tmp = f"{pyc}.{os.getpid()}"
                try:
                    with open(tmp, "wb") as f:
                        rewrite._write_pyc_fp(f, importlib.util.source_hash(source), code)
                    os.replace(tmp, pyc)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                written.append(pyc)
        except Exception:  # noqa: BLE001,S110 - a file that does not compile is simply not cached
            pass
    if caught:
        for pyc in written:
            try:
                os.unlink(pyc)
            except OSError:
                pass
        return []
    return [os.path.relpath(pyc, root).replace(os.sep, "/") for pyc in written]


# What every run imports while configuring and reporting, besides pytest's built-in plugins: standard library and
# pytest's own dependencies only.
PRELOAD = ("_pytest._argcomplete", "faulthandler", "pdb", "tomllib", "tomli", "packaging.version", "inspect")


def _preload() -> None:
    """Import and prime, once, what each run would otherwise redo: pytest's built-in plugins and the modules they
    import lazily, the entry-point listing, and inspect's file -> module map (failure reports look modules up)."""
    import importlib

    default_plugins: tuple[str, ...]
    try:
        from _pytest.config import default_plugins
    except ImportError:
        default_plugins = ()
    for name in (*(n if "." in n else f"_pytest.{n}" for n in default_plugins), *PRELOAD):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001,S112 - only an optimisation
            continue
    try:
        from importlib import metadata

        metadata.entry_points()  # its per-folder listing cache is kept by the children
    except Exception:  # noqa: BLE001,S110 - only an optimisation
        pass
    try:
        import inspect

        inspect.getmodule(_preload.__code__)  # a code object: functions answer from __module__ at once
    except Exception:  # noqa: BLE001,S110 - only an optimisation
        pass


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def main() -> None:
    global _libc
    import ctypes

    _libc = ctypes.CDLL(None, use_errno=True)
    control = socket.socket(fileno=int(sys.argv[1]))
    parent = int(sys.argv[2])
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")
    if os.getppid() != parent:
        os._exit(1)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of finished runs come back here to be reaped
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # the run puts its sandbox there
    import greenpatch_pytest  # noqa: F401 - imported once here, registered by `-p greenpatch_pytest` in each run
    import pytest

    _preload()
    rewrite = _rewrite_writer()
    import gc

    gc.collect()
    gc.freeze()  # the children's garbage collections (pytest runs two at exit) skip everything imported here
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send(control, {"ready": True, "pid": os.getpid(), "pytest": pytest.__version__})
    me = os.getpid()
    runs: dict[int, int] = {}  # pid -> request id
    buffer = b""
    import select

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in runs:
                code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else (
                    -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
                _send(control, {"id": runs.pop(pid), "exit": code})

    jobs: list[tuple[int, str, list[str], list[list[Any]], Any]] = []  # (id, root, files left, done, rewrite)
    try:
        while True:
            try:  # compile only while nothing else is asked for: a run never waits for more than one file
                watched: list[socket.socket | int] = [control, wake_r]
                readable, _, _ = select.select(watched, [], [], 0 if jobs else None)
            except InterruptedError:
                continue
            if not readable and jobs:
                job_id, root, files, done, job_rewrite = jobs[0]
                rel = files.pop()
                done.append([rel, _compile(root, rel, job_rewrite)])
                if not files:
                    jobs.pop(0)
                    _send(control, {"id": job_id, "compiled": root, "files": done})
                continue
            if wake_r in readable:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
            if control not in readable:
                continue
            data = control.recv(65536)
            if not data:
                break
            buffer += data
            if len(buffer) > MAX_REQUEST:
                break
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                req = json.loads(line)
                if req.get("op") == "compile" and req.get("files"):
                    jobs.append((req["id"], str(req["root"]), [str(f) for f in req["files"]][::-1], [],
                                 rewrite if req.get("rewrite", True) else None))
                if req.get("op") != "run":
                    continue
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    _child(req, me, (control.fileno(), wake_r, wake_w))
                runs[pid] = req["id"]
                _send(control, {"id": req["id"], "pid": pid})
            reap()
    finally:
        for pid in list(runs):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError as exc:
                    if exc.errno not in (errno.ESRCH, errno.EPERM):
                        raise
        os._exit(0)


if __name__ == "__main__":
    main()
