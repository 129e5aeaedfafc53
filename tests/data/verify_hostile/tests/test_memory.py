def test_allocates_far_too_much():
    hog = bytearray(16 * 1024 * 1024 * 1024)
    assert len(hog) > 0
