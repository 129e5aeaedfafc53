from shop import discount


def test_discount_from_one_hundred():
    assert discount(100) == 90


def test_no_discount_for_small_orders():
    assert discount(50) == 50


def test_discount_for_big_orders():
    assert discount(200) == 180
