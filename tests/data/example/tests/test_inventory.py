from shop.inventory import Inventory


def test_take_reduces_stock():
    inv = Inventory()
    inv.add("pen", 5)
    assert inv.take("pen", 3)
    assert inv.count("pen") == 2


def test_take_refuses_when_short():
    inv = Inventory()
    inv.add("pen", 1)
    assert not inv.take("pen", 2)
    assert inv.count("pen") == 1
