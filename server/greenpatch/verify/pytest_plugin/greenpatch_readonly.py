"""Confine a test run to its sandbox, in the private mount (and pid, network) namespace greenpatch started it in,
before any code of the project runs. Shared by the cold launcher (this file run as a script: it confines itself and
then execs the real command), the zygote's children and the doctest examples runner; this folder alone is on their
PYTHONPATH. Standard library only, Python 3.8 syntax: it runs under the project's interpreter.

`confine()` in order:
1. a fresh /proc for the run's pid namespace (a test sees its own processes only, never greenpatch's environment);
2. a minimal /dev (null, zero, full, random, urandom, tty, fd links, a private pts) with a private, size-bounded
   tmpfs on /dev/shm;
3. a size-bounded tmpfs for the run's tmp and home folders and for writes to /tmp and /var/tmp (gone with the
   run);
4. every other file system read-only except the sandbox folder (/proc and /sys included);
5. the loopback interface up in the private network namespace (needs CAP_NET_ADMIN, so before step 6);
6. a nested user and mount namespace: the mounts above become locked (they cannot be remounted writable or
   unmounted from it), then every capability is dropped (effective, permitted, inheritable, ambient, bounding; root
   gains none back on exec) and no_new_privs is set (no setuid binary can give them back).
Each step is best effort where the machine does not allow it; `confine` returns which ones took effect.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: the launcher runs before every cold test run and skips importing it
if TYPE_CHECKING:
    import ctypes
    from typing import Any

_MOUNT_FLAGS = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
# SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE and their locks: uid 0 gets no
# capabilities from exec and nothing can turn that off again
SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
FEATURES = ("fresh_proc", "private_dev", "private_tmp", "read_only", "locked_mounts", "no_capabilities",
            "no_new_privs")

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> bool:
    args = [None if s is None else s.encode() for s in (source, target, fstype)]
    return int(_lib().mount(*args, flags, None if data is None else data.encode())) == 0


def read_only_except(keep: str, writable: tuple[str, ...] = ()) -> bool:
    """In the private mount namespace greenpatch started us in: make every file system read-only except the
    sandbox folder `keep` and the `writable` mount points, so a test cannot write outside its copy even as root.
    Device nodes stay usable on a read-only mount. False when the sandbox could not be separated (then nothing
    is changed rather than break the run)."""
    if not _is_mount(keep) and not _mount(keep, keep, None, MS_BIND | MS_REC):
        return False
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target = fields[4].replace("\\040", " ")
        if target == keep or target.startswith(keep + "/") or target in writable:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in fields[5].split(","):
            flags |= _MOUNT_FLAGS.get(option, 0)
        _mount(None, target, None, flags)  # best effort per mount
    return True


def _is_mount(path: str) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == path for line in f)


def _fresh_proc() -> bool:
    return _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _private_dev(shm_mb: int) -> bool:
    """A new /dev built on /tmp (any empty mount point would do; /tmp gets its own mount next) and moved over
    the old one: only harmless character devices, so no disk or host device is reachable even by uid 0."""
    if not _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k"):
        return False
    ok = True
    for name in DEV_NODES:
        if os.path.exists("/dev/" + name):
            open("/tmp/" + name, "w").close()
            ok = _mount("/dev/" + name, "/tmp/" + name, None, MS_BIND) and ok
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        os.symlink(target, "/tmp/" + name)
    os.mkdir("/tmp/shm")
    os.mkdir("/tmp/pts")
    ok = _mount("tmpfs", "/tmp/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={shm_mb}m") and ok
    _mount("devpts", "/tmp/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    if not _mount("/tmp", "/dev", None, MS_MOVE):
        _lib().umount2(b"/tmp", 2)  # MNT_DETACH: leave /dev as it was
        return False
    return ok


def _private_tmp(keep: str, tmp: str, tmp_mb: int) -> bool:
    """One size-bounded tmpfs holds the run's tmp folder (TMPDIR), its home and the writable layers of overlays on
    /tmp and /var/tmp: a test reads what is there and writes /tmp/x as on the user's machine, and every write is gone with
    the run. The sandbox usually lives under /tmp itself, so it is mounted again on top of the overlay."""
    if not tmp or not _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_mb}m"):
        return False
    fd_keep = os.open(keep, os.O_PATH | os.O_DIRECTORY)
    fd_tmp = os.open(tmp, os.O_PATH | os.O_DIRECTORY)
    try:
        for name in ("box", "tu", "tw", "vu", "vw"):
            os.mkdir(os.path.join(tmp, name), 0o700)
            if name in ("box", "tu", "vu"):
                os.chmod(os.path.join(tmp, name), 0o1777)  # as /tmp itself (mkdir's mode is masked by umask)
        scratch = f"/proc/self/fd/{fd_tmp}"
        ok = True
        for target, upper, work in (("/tmp", "tu", "tw"), ("/var/tmp", "vu", "vw")):
            if os.path.isdir(target) and not os.path.islink(target):
                options = f"lowerdir={target},upperdir={scratch}/{upper},workdir={scratch}/{work}"
                ok = (_mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, options + ",userxattr")
                      or _mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, options)) and ok
        if not _mount(f"/proc/self/fd/{fd_keep}", keep, None, MS_BIND | MS_REC):
            return False
        home = os.path.join(keep, "home")  # the run's HOME (sandbox.py): in the same bound, off the disk
        if os.path.isdir(home) and not os.path.islink(home):
            os.mkdir(os.path.join(tmp, "home"), 0o700)
            ok = _mount(os.path.join(tmp, "home"), home, None, MS_BIND) and ok
        return _mount(os.path.join(tmp, "box"), tmp, None, MS_BIND) and ok
    finally:
        os.close(fd_keep)
        os.close(fd_tmp)


def _loopback_up() -> None:
    # A fresh network namespace has only `lo`, and it is down; bring it up so tests using localhost servers work.
    try:
        import fcntl
        import socket
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = 0x1 | 0x8 | 0x40  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
            fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags))  # SIOCSIFFLAGS
    except Exception:  # noqa: BLE001,S110 - best effort, never break the user's test run
        pass


def _lock_mounts() -> bool:
    """Enter a nested user namespace (our own uid and gid mapped to themselves) with a new mount namespace: the
    kernel locks every mount copied into a less privileged mount namespace, so read-only stays read-only."""
    uid, gid = os.geteuid(), os.getegid()
    if _lib().unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return False
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        return False
    return True


def _drop_capabilities() -> bool:
    import ctypes

    libc = _lib()
    libc.prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: past the last
            break

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3: all zero
    libc.capset(ctypes.byref(header), data)
    status = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return all(int(status.get(k, "1"), 16) == 0 for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb"))


def confine(spec: dict[str, Any]) -> dict[str, bool]:
    """Everything in the module docstring, as `spec` asks: {"keep", "tmp", "tmp_mb", "shm_mb", "proc", "net"}.
    Returns {feature: took effect} for FEATURES."""
    done = dict.fromkeys(FEATURES, False)
    keep = spec.get("keep") or ""
    here = os.getcwd()
    if keep:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here may reach the host (already so)
        if spec.get("proc") and os.getpid() == 1:  # only the namespace's first process sees the right /proc
            done["fresh_proc"] = _fresh_proc()
        done["private_dev"] = _private_dev(int(spec.get("shm_mb") or 64))
        if not _is_mount(keep):
            _mount(keep, keep, None, MS_BIND | MS_REC)
        done["private_tmp"] = _private_tmp(keep, spec.get("tmp") or "", int(spec.get("tmp_mb") or 256))
        writable = ("/tmp", "/var/tmp", "/dev/shm", "/dev/pts") if done["private_tmp"] else ("/dev/shm", "/dev/pts")
        # /proc stays writable until the nested user namespace's id maps are written
        done["read_only"] = read_only_except(keep, writable + ("/proc",))
    if spec.get("net"):
        _loopback_up()
    if keep:
        done["locked_mounts"] = _lock_mounts()
        # still privileged over the new mount namespace: making a mount read-only is always allowed there
        done["read_only"] = _mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
                                   | MS_NOEXEC) and done["read_only"]
        os.chdir(here)  # the working directory was looked up before the mounts changed: look it up again
    done["no_capabilities"] = _drop_capabilities()
    done["no_new_privs"] = _lib().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    return done


def main(argv: list[str]) -> None:
    """`python -I -S greenpatch_readonly.py SPEC_JSON COMMAND...`: confine this process, then become COMMAND.
    With COMMAND `--probe`, print what took effect as JSON instead (greenpatch doctor)."""
    import json
    import sys

    done = confine(json.loads(argv[1]))
    if argv[2:] == ["--probe"]:
        sys.stdout.write(json.dumps(done) + "\n")
        sys.stdout.flush()
        os._exit(0)
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    import sys

    main(sys.argv)
