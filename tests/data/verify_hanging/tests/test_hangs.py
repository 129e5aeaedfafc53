"""Three tests that never end, each between tests that must still be reported."""

import signal
import time


def test_first():
    assert 1 + 1 == 2


def test_spins():
    while True:
        pass


def test_between_one():
    assert "a".upper() == "A"


def test_sleeps():
    time.sleep(1000)


def test_between_two():
    assert sorted([3, 1, 2]) == [1, 2, 3]


def test_ignores_the_alarm():
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass


def test_last():
    assert len("abc") == 3


def test_fails_honestly():
    assert 2 * 2 == 5
