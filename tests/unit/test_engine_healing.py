"""Token healing: which prompt tokens hold the partial word at the cursor, and which tokens fit it again."""

from __future__ import annotations

from greenpatch.engine.healing import MAX_HEALED_TOKENS, PieceIndex, tokens_to_heal


def test_the_tokens_holding_the_partial_word_are_backed_up_over() -> None:
    assert tokens_to_heal("    retu", [b"   ", b" ret", b"u"]) == 2
    assert tokens_to_heal("x = pa", [b"x", b" =", b" pa"]) == 1


def test_spaces_at_the_end_are_healed_too() -> None:
    assert tokens_to_heal("    return ", [b"   ", b" return", b" "]) == 1
    assert tokens_to_heal("def f():\n        ", [b"        "]) == 1, "the indentation of a new line"


def test_no_healing_after_a_symbol_or_a_line_break() -> None:
    assert tokens_to_heal("f(", [b"f", b"("]) == 0
    assert tokens_to_heal("x = 1\n", [b"x", b" =", b" ", b"1", b"\n"]) == 0
    assert tokens_to_heal("", []) == 0


def test_a_word_longer_than_the_healing_limit_is_left_alone() -> None:
    pieces = [b"a"] * (MAX_HEALED_TOKENS + 2)
    assert tokens_to_heal("a" * len(pieces), pieces) == 0


def test_fitting_tokens_start_the_text_or_contain_all_of_it() -> None:
    pieces = [b"", b"re", b"return", b" ret", b"ret", b"u", b"rn", b"r", b"retu", b"returns"]
    index = PieceIndex(pieces)
    assert sorted(index.fitting(b"retu").tolist()) == [1, 2, 4, 7, 8, 9]
    assert sorted(index.fitting(b" ret").tolist()) == [3]
    assert index.fitting(b"").tolist() == []
    assert index.fitting(b"zz").tolist() == []
