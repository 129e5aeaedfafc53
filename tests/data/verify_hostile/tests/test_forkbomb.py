"""A bounded fork bomb: up to 300 children, each leaving the process group (setsid) and sleeping for a long time
under a marker the outer test looks for in /proc."""

import os


def test_forks_hundreds_of_sleepers():
    started = 0
    for _ in range(300):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                os.setsid()
                os.execvp("sleep", ["sleep", "987.654"])
            finally:
                os._exit(1)
        started += 1
    assert started >= 0
