from shapes.area import rectangle, square


def test_rectangle():
    assert rectangle(3, 4) == 12


def test_square():
    assert square(3) == 9
