"""One failure a fix can reach (triple), and three no fix of calc.py can: a test that fails only after another
one ran (flaky: it passes when run again alone), a module the environment lacks, a fixture no plugin provides."""

from calc import double, triple

SEEN = []


def test_double():
    SEEN.append(double(1))
    assert double(2) == 4


def test_alone():
    assert SEEN == []


def test_triple():
    assert triple(2) == 6


def test_needs_a_module_the_environment_lacks():
    import greenpatch_nowhere_module  # noqa: F401

    assert double(0) == 0


def test_needs_a_plugin_fixture(mocker):
    assert double(1) == 2
