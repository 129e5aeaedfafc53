from stats import average, spread


def test_average_of_two():
    assert average([1, 2]) == 1.5


def test_average_of_one():
    assert average([5]) == 5


def test_spread():
    assert spread([1, 7, 3]) == 6
