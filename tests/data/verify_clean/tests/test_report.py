from calc.report import balance


def test_balance():
    assert balance(10, 4) == 6
