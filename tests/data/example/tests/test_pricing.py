import pytest

from shop.pricing import Item, apply_discount, bulk_discount, order_total


def test_apply_discount_takes_percent_off():
    assert apply_discount(200.0, 25) == 150.0


def test_apply_discount_rejects_bad_percent():
    with pytest.raises(ValueError):
        apply_discount(10.0, 120)


def test_no_bulk_discount_for_few_items():
    assert bulk_discount(1) == 0.0
    assert bulk_discount(9) == 0.0


def test_bulk_discount_starts_at_ten():
    assert bulk_discount(10) == 10.0
    assert bulk_discount(49) == 10.0


def test_big_orders_get_twenty_percent():
    assert bulk_discount(50) == 20.0


def test_order_total_adds_discounted_lines():
    items = [Item("pen", 1.5, 4), Item("paper", 2.0, 10)]
    assert order_total(items) == 6.0 + 18.0
