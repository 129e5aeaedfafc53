"""Looks for a secret in the environment of every process it can see (greenpatch's own test starts a host process
with GREENPATCH_HOSTILE_SECRET set, as greenpatch itself may hold an API key). Passes when none is visible."""

import os


def test_cannot_read_the_environment_of_processes_outside_the_run():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if b"GREENPATCH_HOSTILE_SECRET=" in f.read():
                    found.append(name)
        except OSError:
            pass
    assert found == []
