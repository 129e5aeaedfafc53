from pairs import has_close_pair


def test_far_apart_values_have_no_close_pair():
    assert has_close_pair([1.0, 2.0, 3.0], 0.5) is False
