from textkit.render import format_bullets, format_paragraph
from textkit.wrap import wrap_lines


def test_wrap_cuts_long_words_by_default():
    assert wrap_lines(["abcdefgh"], 3) == ["abc", "def", "gh"]


def test_wrap_cuts_a_long_word_after_a_short_one():
    assert wrap_lines(["ab", "abcdefgh"], 3) == ["ab", "abc", "def", "gh"]


def test_wrap_cuts_every_long_word():
    assert wrap_lines(["a", "bcdef"], 2) == ["a", "bc", "de", "f"]


def test_wrap_cuts_a_long_word_between_short_ones():
    assert wrap_lines(["a", "bcd", "e"], 2) == ["a", "bc", "d", "e"]


def test_wrap_keeps_long_words_when_asked():
    assert wrap_lines(["ab", "abcdefgh"], 3, break_long_words=False) == ["ab", "abcdefgh"]


def test_paragraph_wraps_at_width():
    assert format_paragraph("one two three", width=7) == "one two\nthree"


def test_paragraph_cuts_long_words_by_default():
    assert format_paragraph("abcdefgh", width=3) == "abc\ndef\ngh"


def test_paragraph_keeps_a_long_url_whole_when_asked():
    text = "see https://example.org/a/long/path"
    assert format_paragraph(text, width=10, break_long_words=False) == "see\nhttps://example.org/a/long/path"


def test_bullets_wrap_inside_the_marker():
    assert format_bullets(["one two three"], width=9) == "- one two\n- three"
