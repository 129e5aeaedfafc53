from stats import spread, total


def test_total_adds_the_values():
    assert total([1, 2, 3]) == 6


def test_total_of_nothing_is_zero():
    assert total([]) == 0


def test_spread_is_the_distance_from_min_to_max():
    assert spread([1, 7, 3]) == 6


def test_spread_of_one_value_is_zero():
    assert spread([4]) == 0
