import unittest

from shop.text import label


class LabelTests(unittest.TestCase):
    def test_dashes(self):
        self.assertEqual(label("earl-grey"), "Earl Grey")

    def test_expected_first(self):
        self.assertEqual("Earl Grey", label("earl-grey"))

    def test_long_tuples(self):
        self.assertEqual((label("a_" * 40), 1), ("A-" * 40, 1))
