from calc.text import money, shout


def test_money():
    assert money(1234.5) == "$1,234.50"


def test_shout():
    assert shout("hi") == "HI!"
