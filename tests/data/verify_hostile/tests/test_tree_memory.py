"""Three processes of 200 MiB each at once: each stays under a per-process memory limit, together they do not.
Passes only where nothing bounds the whole process tree."""

import subprocess
import sys

HOLD = "b = b'x' * (200 << 20); print('holding', flush=True); sys.stdin.read()"


def test_three_children_hold_200_mib_each_at_the_same_time():
    children = [subprocess.Popen([sys.executable, "-c", "import sys; " + HOLD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for _ in range(3)]
    held = [child.stdout.readline().strip() for child in children]
    for child in children:
        child.stdin.close()
    codes = [child.wait() for child in children]
    assert (held, codes) == (["holding"] * 3, [0, 0, 0])
