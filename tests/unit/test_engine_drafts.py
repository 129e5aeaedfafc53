"""Drafts for speculative decoding: which earlier tokens are proposed, and how long a draft may be."""

from __future__ import annotations

from greenpatch.engine.drafts import MAX_DRAFT, DraftLength, DraftSource


def test_a_draft_is_what_followed_the_same_tokens_in_a_recent_output() -> None:
    drafts = DraftSource()
    drafts.remember([5, 6, 7, 8, 9, 10])
    assert drafts.propose([1, 6, 7], limit=8) == [8, 9, 10]
    assert drafts.propose([1, 6, 7], limit=2) == [8, 9]


def test_one_matching_token_is_not_enough_to_draft() -> None:
    drafts = DraftSource()
    drafts.remember([5, 6, 7, 8])
    assert drafts.propose([6], limit=8) == []
    assert drafts.propose([1, 6], limit=8) == []


def test_the_longest_match_wins_and_then_the_newest_output() -> None:
    drafts = DraftSource()
    drafts.remember([1, 2, 3, 40, 41])  # older: matches three tokens
    drafts.remember([9, 2, 3, 50, 51])  # newer: matches two
    assert drafts.propose([1, 2, 3], limit=2) == [40, 41]
    assert drafts.propose([7, 2, 3], limit=2) == [50, 51]


def test_only_a_few_outputs_are_kept() -> None:
    drafts = DraftSource(history=2)
    for n in range(3):
        drafts.remember([100 + n, 1, 2, 3])
    assert drafts.propose([100, 1], limit=4) == []
    assert drafts.propose([102, 1], limit=4) == [2, 3]


def test_the_draft_length_grows_after_a_whole_draft_is_taken_and_shrinks_to_what_was_taken() -> None:
    length = DraftLength(start=4)
    length.taken(drafted=4, accepted=4)
    assert length.value == 8
    length.taken(drafted=8, accepted=2)
    assert length.value == 3
    length.taken(drafted=3, accepted=0)
    assert length.value == 1
    for _ in range(10):
        length.taken(drafted=length.value, accepted=length.value)
    assert length.value == MAX_DRAFT
