"""Typed-along reuse: the confidence of what is left of a suggestion after the user typed its start."""

from __future__ import annotations

import pytest
from greenpatch.completion.cache import TypedAlong, mean_after


def test_the_rest_is_judged_by_the_tokens_that_end_after_the_typed_text() -> None:
    logprobs, ends = [-3.0, -1.0, -0.5], [3, 6, 9]
    assert mean_after(logprobs, ends, 0) == pytest.approx(-1.5)
    assert mean_after(logprobs, ends, 3) == pytest.approx(-0.75)
    assert mean_after(logprobs, ends, 4) == pytest.approx(-0.75), "a token typed in part still counts"
    assert mean_after(logprobs, ends, 9) is None
    assert mean_after(logprobs, [3, 6], 0) is None, "offsets that do not match the tokens: unknown"


def test_a_withheld_suggestion_is_kept_only_when_its_rest_can_be_judged() -> None:
    typed = TypedAlong()
    typed.remember("u", "x = ", "\n", "abc def", -1.0, shown=False)
    assert typed.match("u", "x = a", "\n") is None
    typed.remember("u", "x = ", "\n", "abc def", -1.0, shown=False, logprobs=[-2.0, -0.1], token_ends=[3, 7])
    along = typed.match("u", "x = abc", "\n")
    assert along is not None and along.rest == " def" and not along.shown
    assert along.mean_logprob == pytest.approx(-0.1)


def test_a_shown_suggestion_keeps_its_confidence_while_typed_along() -> None:
    typed = TypedAlong()
    typed.remember("u", "x = ", "\n", "abc def", -0.1, logprobs=[-0.01, -0.19], token_ends=[3, 7])
    along = typed.match("u", "x = abc", "\n")
    assert along is not None and along.shown and along.mean_logprob == -0.1
    assert typed.match("u", "x = abd", "\n") is None
    assert typed.match("u", "x = abc", "\nother") is None, "the text after the cursor changed"


def test_a_suggestion_typed_whole_has_nothing_left_to_say() -> None:
    typed = TypedAlong()
    typed.remember("u", "x = ", "\n", "abc def", -0.1)
    along = typed.match("u", "x = abc def", "\n")
    assert along is not None and along.rest == "" and not along.shown


def test_a_dropped_line_stays_dropped_while_typed_along() -> None:
    typed = TypedAlong()
    typed.remember_dropped("u", "x = ", "\nx = abc def", "abc def")
    along = typed.match("u", "x = abc", "\nx = abc def")
    assert along is not None and along.dropped and along.rest == " def" and not along.shown
    assert typed.match("u", "x = abd", "\nx = abc def") is None, "typing something else is a new question"
    off = TypedAlong(keep_withheld=False)
    off.remember_dropped("u", "x = ", "\n", "abc def")
    assert off.match("u", "x = abc", "\n") is None
