import pytest  # noqa: F401 - kept so the line numbers the tests assert stay put

from shop import Cart
from shop.text import label


def test_total_adds_the_region_rate():
    cart = Cart("North")
    cart.add("tea", 10.0)
    assert cart.total() == 11.0


def test_receipt_labels_every_item():
    cart = Cart("south")
    cart.add("green_tea", 3.0)
    assert cart.receipt() == ["Green Tea"]


def test_label_keeps_dashes_inside():
    assert label("earl-grey") == "Earl Grey"


def test_label_is_never_empty():
    assert "mint" == label("--mint--").strip()


class TestLong:
    def test_label_of_a_long_name(self):
        name = "rooibos_" * 12
        assert label(name) == "Rooibos " * 11 + "Rooibo"
