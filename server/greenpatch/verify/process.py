"""Run one test process under limits, and make sure it and everything it started are gone afterwards.

What is enforced where (checked once per interpreter process by `isolation()`; `greenpatch doctor`-style facts are
in `Isolation.describe()`):

* Process group / session: the child starts with `start_new_session=True`; every kill is `killpg(SIGKILL)`.
* Linux namespaces via util-linux `unshare` when it works here: `--net` (no network: only a private loopback,
  which the confinement brings up, so nothing outside is reachable) and `--pid --fork` (every process the tests start,
  including ones that call setsid() to leave the group, dies with the namespace's first process). As root the
  namespaces are created directly; otherwise inside a user namespace (`-r`). Without `unshare`, the network is NOT
  blocked and only the process group / session is killed.
* `--mount`: a private mount namespace in which, before any code of the project runs (a cold run starts
  pytest_plugin/greenpatch_readonly.py as a launcher that execs the command afterwards; a warm child calls it
  after its fork), greenpatch_readonly.confine() mounts a fresh /proc (pid namespace), a minimal /dev with a
  private /dev/shm, size-bounded private /tmp and /var/tmp (overlays on a tmpfs that also holds TMPDIR), makes
  every other file system read-only except the sandbox folder, then enters a nested user namespace (the mounts
  become locked), drops every capability and sets no_new_privs: a test cannot write to the workspace or anywhere
  else even as root, nor undo any of it.
* Parent death: the child gets PR_SET_PDEATHSIG(SIGKILL) and `unshare --kill-child`, so a greenpatch killed
  without cleanup takes its runs with it; sandbox folders and cgroups of dead greenpatch processes are swept
  by the next Verifier (sandbox.sweep_stale).
* rlimits (set in the child before exec): RLIMIT_CPU (timeout + 5 s), RLIMIT_AS (memory_mb), RLIMIT_FSIZE
  (256 MiB), RLIMIT_CORE 0, RLIMIT_NPROC for non-root users (root ignores it).
* Memory of the whole tree: a memory cgroup (v1 memory.limit_in_bytes / v2 memory.max, no swap) of memory_mb
  when it can be created (root); otherwise only RLIMIT_AS per process, so up to memory_mb x max_procs.
* Process count: a pids cgroup (v1 `/sys/fs/cgroup/pids` or a writable v2 hierarchy) with `pids.max` when it can be
  created (root); otherwise a watchdog thread counts the processes of the session every 100 ms and kills everything
  above the limit. The cgroup also lists every process to kill at the end.
* Wall clock: the watchdog kills the whole tree at the deadline or when the CancelToken is set (checked every 20 ms).
* Output: stdout+stderr go to a file inside the sandbox (bounded by RLIMIT_FSIZE); only the last 16 KiB are kept.
* Warm runs (zygote.py): a `python -m pytest` run may instead be forked from a fork server that has pytest imported;
  the child applies every item above itself (session, cgroup, rlimits, PR_SET_PDEATHSIG, the same namespaces with
  private mount propagation, read-only file systems, output file) before any project code is imported, and the
  watchdog and kill below treat it exactly like a cold run.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greenpatch.verify.zygote import SETUP_FAILED, WarmProcess, Zygote

OUTPUT_TAIL = 16 * 1024
PR_SET_PDEATHSIG = 1

try:  # resolved here, not in the forked child: the child only calls it
    import ctypes

    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):  # not Linux
    _prctl = None
FSIZE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Isolation:
    prefix: tuple[str, ...]  # command prefix (unshare ...) or ()
    network_blocked: bool
    pid_namespace: bool
    mount_namespace: bool  # the plugin makes every file system read-only except the sandbox
    cgroup_root: str  # folder where per-run pids cgroups are made, "" if none
    nproc_rlimit: bool
    memory_cgroup_root: str = ""  # folder where per-run memory cgroups are made, "" if none
    confinement: tuple[str, ...] = ()  # greenpatch_readonly.FEATURES that took effect in a probe run here

    def describe(self) -> dict[str, object]:
        confined = set(self.confinement)
        return {
            "network_blocked": self.network_blocked, "pid_namespace": self.pid_namespace,
            "read_only_outside_sandbox": "read_only" in confined,
            "read_only_locked": "locked_mounts" in confined,
            "fresh_proc": "fresh_proc" in confined, "private_dev": "private_dev" in confined,
            "private_tmp": "private_tmp" in confined,
            "no_capabilities": "no_capabilities" in confined, "no_new_privs": "no_new_privs" in confined,
            "pids_cgroup": bool(self.cgroup_root), "memory_cgroup": bool(self.memory_cgroup_root),
            "nproc_rlimit": self.nproc_rlimit,
            "process_count_watchdog": not self.cgroup_root and not self.nproc_rlimit,
        }


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _cgroup_root(controller: str = "pids") -> str:
    """A cgroup folder (v1 /sys/fs/cgroup/<controller>, or the v2 root with the controller enabled) in which this
    process can make a child cgroup and set its limit; "" if none."""
    limit = {"pids": "pids.max", "memory": "memory.limit_in_bytes"}[controller]
    for candidate in (f"/sys/fs/cgroup/{controller}", "/sys/fs/cgroup"):
        base = Path(candidate)
        if not (base / "cgroup.procs").exists():
            continue
        if candidate == "/sys/fs/cgroup":
            if controller not in _read(base / "cgroup.subtree_control").split():
                continue
            limit = {"pids": "pids.max", "memory": "memory.max"}[controller]
        probe = base / f"greenpatch-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
            try:
                (probe / limit).write_text(str(64 << 20 if controller == "memory" else 64))
                return candidate
            finally:
                probe.rmdir()
        except OSError:
            continue
    return ""


CONFINE_SCRIPT = Path(__file__).parent / "pytest_plugin" / "greenpatch_readonly.py"


def _confinement(prefix: tuple[str, ...]) -> tuple[str, ...]:
    """Which greenpatch_readonly features take effect here: one confined probe run under `prefix`."""
    import json
    import shutil
    import sys
    import tempfile

    keep = os.path.realpath(tempfile.mkdtemp(prefix="greenpatch-probe-"))
    try:
        os.mkdir(os.path.join(keep, "tmp"))
        spec = {"keep": keep, "tmp": os.path.join(keep, "tmp"), "tmp_mb": 16, "shm_mb": 16,
                "proc": "--pid" in prefix, "net": "--net" in prefix}
        done = subprocess.run([*prefix, sys.executable, "-I", "-S", str(CONFINE_SCRIPT), json.dumps(spec), "--probe"],
                              capture_output=True, timeout=10, check=False, cwd=keep)
        features = json.loads(done.stdout.decode() or "{}") if done.returncode == 0 else {}
        return tuple(sorted(name for name, ok in features.items() if ok))
    except (OSError, subprocess.SubprocessError, ValueError):
        return ()
    finally:
        shutil.rmtree(keep, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    root = os.geteuid() == 0
    prefix: tuple[str, ...] = ()
    for flags in (["--mount", "--net", "--pid", "--fork", "--kill-child"], ["--net", "--pid", "--fork", "--kill-child"],
                  ["--net", "--pid", "--fork"], ["--net"]):
        argv = ["unshare", *([] if root else ["--map-root-user"]), *flags]
        if _works([*argv, "true"]):
            prefix = tuple(argv)
            break
    return Isolation(
        prefix=prefix, network_blocked="--net" in prefix, pid_namespace="--pid" in prefix,
        mount_namespace="--mount" in prefix,
        cgroup_root=_cgroup_root() if root else "", nproc_rlimit=not root,
        memory_cgroup_root=_cgroup_root("memory") if root else "",
        confinement=_confinement(prefix) if "--mount" in prefix else (),
    )


@dataclass
class Outcome:
    returncode: int | None = None
    session: int = 0  # session / process group id of the run (for checks that it is gone)
    seconds: float = 0.0
    timed_out: bool = False
    cancelled: bool = False
    killed: str = ""  # why the watchdog killed it ("" if it ended by itself)
    output: str = ""  # last OUTPUT_TAIL bytes of stdout+stderr
    leftovers: list[int] = field(default_factory=list)  # pids that could not be killed (should stay empty)
    warm: bool = False  # forked from the warm zygote rather than started cold
    abandoned: list[int] = field(default_factory=list)  # sessions of warm attempts given up for a cold run


def _session_pids(sid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat_text = _read(Path("/proc", name, "stat"))
        # the command name may hold spaces and parentheses: fields start after the last ')'
        fields = stat_text.rpartition(")")[2].split()
        if len(fields) > 4 and fields[3] == str(sid):  # fields: state ppid pgrp session ...
            pids.append(int(name))
    return pids


def _user_processes() -> int:
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        try:
            count += name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid
        except OSError:
            pass
    return count


def _children(pid: int) -> list[int]:
    return [int(p) for p in _read(Path(f"/proc/{pid}/task/{pid}/children")).split()]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str], output: Path, timeout: float, memory_mb: int,
    max_procs: int = 64, cancel: StopSignal | None = None, zygote: Zygote | None = None,
) -> Outcome:
    """Run `argv` under the limits above. With a `zygote` a `python -m pytest` run is forked from the warm fork
    server instead of started fresh (same limits, see zygote.py); it falls back to a cold start by itself."""
    iso = isolation()
    cgroups = _make_cgroups(iso, max_procs, memory_mb)
    cgroup = cgroups[0] if cgroups and iso.cgroup_root else ""  # the pids cgroup
    nproc = 0
    if iso.nproc_rlimit:
        # without a user namespace RLIMIT_NPROC counts all of this user's processes
        nproc = max_procs + (0 if "--map-root-user" in iso.prefix else _user_processes() + 512)

    def preexec() -> None:  # runs in the child between fork and exec: only async-signal-safe-ish calls
        for group in cgroups:
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        cpu = int(timeout) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_BYTES, FSIZE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if _prctl is not None:
            # if greenpatch dies without cleaning up (SIGKILL), the run dies too; with --kill-child, so does
            # its whole pid namespace
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    started = time.monotonic()
    result = Outcome()
    handle: _Handle | None = None
    spec = confine_spec(iso, env, memory_mb)
    child_env = {k: v for k, v in env.items() if k != "GREENPATCH_READONLY"}
    if zygote is not None and argv[1:3] == ["-m", "pytest"]:
        handle = zygote.spawn({
            "argv": argv[3:], "cwd": str(cwd), "env": child_env, "output": str(output), "cgroup": cgroup,
            "cgroups": cgroups,
            "limits": {"cpu": int(timeout) + 5, "as": memory_mb * 1024 * 1024, "fsize": FSIZE_BYTES, "nproc": nproc},
            "unshare": {"net": iso.network_blocked, "pid": iso.pid_namespace, "mount": iso.mount_namespace,
                        "user": "--map-root-user" in iso.prefix},
            "confine": spec,
        })
        result.warm = handle is not None
    if handle is None:
        import json
        import sys

        # the confinement runs before the command: a workspace module named like one of pytest's imports (found
        # first, in the working directory) must not run before the file systems are read-only and locked
        launcher = [sys.executable, "-I", "-S", str(CONFINE_SCRIPT), json.dumps(spec)] if spec else []
        with open(output, "wb") as out:
            handle = _Cold(subprocess.Popen(
                [*iso.prefix, *launcher, *argv], cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec,  # noqa: PLW1509 - rlimits only
                close_fds=True,
            ))
    sid = result.session = handle.pid
    deadline = started + timeout
    next_count = 0.0
    try:
        while handle.poll() is None:
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                result.cancelled, result.killed = True, "cancelled"
                break
            if now >= deadline:
                result.timed_out, result.killed = True, f"timed out after {timeout:g} s"
                break
            if not cgroup and not nproc and now >= next_count:
                next_count = now + 0.1
                if len(_session_pids(sid)) > max_procs:
                    result.killed = f"started more than {max_procs} processes"
                    break
            handle.wait(min(0.02, max(0.001, deadline - now)))  # returns as soon as the run ends
    finally:
        result.leftovers = _kill_all(handle, sid, cgroups, iso)
        result.returncode = handle.returncode
        result.seconds = time.monotonic() - started
        result.output = _tail(output)
    if result.warm and not result.cancelled and not result.timed_out and zygote is not None:
        lost = isinstance(handle, WarmProcess) and handle.lost
        failed = result.returncode == SETUP_FAILED and "greenpatch zygote: cannot set up" in result.output
        if failed:
            zygote.disable(_last_line(result.output))
        if lost or failed:  # nothing of the tests' doing: run them again the cold way, from a clean slate
            if env.get("GREENPATCH_RESULTS"):
                with open(env["GREENPATCH_RESULTS"], "w"):
                    pass
            cold = run(argv, cwd=cwd, env=env, output=output, timeout=timeout, memory_mb=memory_mb,
                       max_procs=max_procs, cancel=cancel)
            cold.abandoned.append(result.session)
            cold.leftovers += result.leftovers
            return cold
    return result


class StopSignal(Protocol):
    """What the watchdog polls to end a run early: a CancelToken, or a TestWatch (a test overran)."""

    def is_set(self) -> bool: ...


class _Handle(Protocol):
    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float) -> int | None: ...


class _Cold:
    """A `subprocess.Popen` with the `wait(timeout)` of WarmProcess (returns instead of raising)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _kill_all(proc: _Handle, sid: int, cgroups: list[str], iso: Isolation) -> list[int]:
    """Kill the whole tree and reap what we can. Returns pids still alive (empty unless something is badly wrong)."""
    if iso.pid_namespace and proc.poll() is None:
        # Kill the namespace's first process before `unshare`, so `unshare` is still there to reap it and the
        # kernel takes every other process of the namespace down with it.
        for child in _children(proc.pid):
            _kill(child)
        proc.wait(2)
    deadline = time.monotonic() + 5
    while True:
        pids = set(_session_pids(sid))
        for cgroup in cgroups:
            pids.update(int(p) for p in _read(Path(cgroup, "cgroup.procs")).split())
        if proc.poll() is None:
            pids.add(proc.pid)
        try:
            os.killpg(sid, signal.SIGKILL)
        except OSError:
            pass
        for pid in pids:
            _kill(pid)
        proc.wait(0.05)
        alive = [p for p in pids if _alive(p)]
        if not alive or time.monotonic() > deadline:
            break
    for cgroup in cgroups:
        for _ in range(100):
            try:
                os.rmdir(cgroup)
                break
            except OSError:
                time.sleep(0.02)
    return alive


def _make_cgroups(iso: Isolation, max_procs: int, memory_mb: int) -> list[str]:
    """The run's pids cgroup (first) and memory cgroup, those this machine allows: the memory limit is for the
    whole process tree (and what it writes to its tmpfs), without swap."""
    made: list[str] = []
    name = f"greenpatch-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    limit = str(memory_mb * 1024 * 1024)
    for root, files in ((iso.cgroup_root, {"pids.max": str(max_procs)}),
                        (iso.memory_cgroup_root, {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": limit,
                                                  "memory.max": limit, "memory.swap.max": "0"})):
        if not root:
            continue
        sweep_cgroups(root)
        group = os.path.join(root, name)
        if group in made:  # one cgroup v2 folder holds both limits
            group = made[0]
        else:
            try:
                os.mkdir(group)
            except OSError:
                continue
        written = False
        for file, value in files.items():
            if os.path.exists(os.path.join(group, file)):
                try:
                    Path(group, file).write_text(value)
                    written = True
                except OSError:
                    pass
        if not written:
            _rmdir(group)
        elif group not in made:
            made.append(group)
    return made


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def confine_spec(iso: Isolation, env: dict[str, str], memory_mb: int) -> dict[str, object]:
    """What greenpatch_readonly.confine does for a run whose sandbox folder is $GREENPATCH_READONLY; {} if none.
    /tmp (with TMPDIR) gets half the memory limit, /dev/shm an eighth; with a memory cgroup both count toward it."""
    keep = env.get("GREENPATCH_READONLY", "")
    if not keep or not iso.mount_namespace:
        return {}
    tmp = os.path.realpath(env.get("TMPDIR", ""))
    return {
        "keep": keep, "tmp": tmp if tmp.startswith(keep + os.sep) else "",
        "tmp_mb": max(16, memory_mb // 2), "shm_mb": max(8, memory_mb // 8),
        "proc": iso.pid_namespace, "net": iso.network_blocked,
    }


def sweep_cgroups(root: str) -> None:
    """Remove empty per-run cgroups left by greenpatch processes that no longer exist."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "greenpatch" and parts[1].isdigit() and not _alive(int(parts[1])):
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                pass


def _alive(pid: int) -> bool:
    state = _read(Path(f"/proc/{pid}/stat")).rpartition(")")[2].split()[:1]
    return bool(state) and state[0] not in ("Z", "X")


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - OUTPUT_TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
