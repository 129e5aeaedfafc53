"""Make every file system read-only except the sandbox folder, in the private mount namespace greenpatch started
this process in. Shared by the pytest plugin, the zygote (through the plugin) and the doctest examples runner; this
folder alone is on their PYTHONPATH. Standard library only."""

from __future__ import annotations

_MOUNT_FLAGS = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
_SKIP_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "securityfs", "debugfs",
            "tracefs", "pstore", "bpf", "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "autofs"}


def read_only_except(keep: str) -> None:
    """In the private mount namespace greenpatch started us in: make every file system read-only except the
    sandbox folder `keep` (and /dev, /proc, /sys), so a test cannot write outside its copy even as root."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_rdonly, ms_remount, ms_bind, ms_rec = 1, 32, 4096, 16384
    if libc.mount(keep.encode(), keep.encode(), None, ms_bind | ms_rec, None) != 0:
        return  # cannot separate the sandbox: leave everything as it is rather than break the run
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target = fields[4].replace("\\040", " ")
        fstype = fields[fields.index("-") + 1] if "-" in fields else ""
        if fstype in _SKIP_FS or target == keep or target.startswith(keep + "/") or target == "/dev/shm":
            continue
        if target.startswith(("/proc", "/sys", "/dev")):
            continue
        flags = ms_remount | ms_bind | ms_rdonly
        for option in fields[5].split(","):
            flags |= _MOUNT_FLAGS.get(option, 0)
        libc.mount(None, target.encode(), None, flags, None)  # best effort per mount
