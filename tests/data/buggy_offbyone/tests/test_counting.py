from counting import total_upto


def test_total_upto_three():
    assert total_upto(3) == 6


def test_total_upto_zero():
    assert total_upto(0) == 0
