"""Which line suggestions need the body they open (completion/body.py)."""

from __future__ import annotations

import pytest
from greenpatch.completion.body import needs_body
from greenpatch.completion.prompt import build_request
from greenpatch.config import CompletionSettings
from greenpatch.engine.base import Generation
from greenpatch.engine.fake import FAKE_FIM


def _needs(doc: str, line: int, col: int, text: str, stop_reason: str = "stop") -> bool:
    request = build_request(doc, line, col, CompletionSettings(), fim=FAKE_FIM, mode="line")
    return needs_body(Generation(text, [-0.1], stop_reason), request)


@pytest.mark.parametrize(("doc", "line", "col", "text", "expected"), [
    ("def f(xs):\n    t = 1\n    \n", 2, 4, "if not xs:", True),  # the end of the function
    ("def f(xs):\n    t = 1\n    \n\ndef g():\n    pass\n", 2, 4, "for x in xs:", True),  # a definition below
    ("def f(xs):\n    t = 1\n    \n    return t\n", 2, 4, "for x in xs:", False),  # code to connect to below
    ("def f(xs):\n    t = 1\n    \n        return t\n", 2, 4, "if not xs:", False),  # the body is there
    ("def f(xs):\n    t = 1\n    \n", 2, 4, "t += 1", False),  # not an opener
    ("def f(xs):\n    t = 1\n    if \n", 2, 7, "xs:", True),  # typed in part
    ("def f(xs):\n    t = 1\n    if  # why\n", 2, 7, "xs:", False),  # the line goes on after the cursor
    ("def f(xs):\n    t = 1\n    \n", 2, 4, "x = {1:", False),  # a bracket left open
])
def test_a_block_opener_needs_a_body_only_where_the_code_below_has_none(
        doc: str, line: int, col: int, text: str, expected: bool) -> None:
    assert _needs(doc, line, col, text) is expected


def test_a_line_cut_off_by_the_token_limit_is_not_extended() -> None:
    assert not _needs("def f(xs):\n    t = 1\n    \n", 2, 4, "if not xs:", stop_reason="length")
