"""Prompt building and post-filters: what the model is asked, and which answers are never shown."""

from __future__ import annotations

import pytest
from greenpatch.completion.filters import passes_gate, post_filter, trim_block
from greenpatch.completion.prompt import build_request
from greenpatch.config import CompletionSettings
from greenpatch.engine.fake import FAKE_FIM

SOURCE = '''def total(items):
    result = 0
    for item in items:
        result += item.price
    return result


def average(items):
    
'''


def _request(text: str, line: int, col: int, **kw: object):
    return build_request(text, line, col, CompletionSettings(), fim=FAKE_FIM, **kw)  # type: ignore[arg-type]


def test_a_cursor_inside_a_line_asks_for_one_line() -> None:
    req = _request(SOURCE, 4, 10)
    assert req.mode == "line" and req.stop == ["\n"]
    assert req.prefix.endswith("    return") and req.suffix.startswith(" result\n")


def test_an_empty_body_after_a_colon_asks_for_a_block() -> None:
    req = _request(SOURCE, 8, 4)
    assert req.mode == "block"
    assert req.max_tokens == CompletionSettings().max_tokens


def test_only_an_empty_line_asks_the_model_for_code_first() -> None:
    assert _request(SOURCE, 8, 4).code_first, "an indented empty line"
    assert _request("x = 1\n\ny = 2\n", 1, 0).code_first, "a blank line at column 0"
    assert not _request(SOURCE, 4, 10).code_first, "text before the cursor"
    assert not _request("x = 1\n    foo()\n", 1, 4).code_first, "text after the cursor"


def test_the_suffix_window_follows_the_setting() -> None:
    text = "x = 1\n" + "\n".join(f"y{i} = {i}" for i in range(20))
    req = build_request(text, 0, 5, CompletionSettings(suffix_lines=2), fim=FAKE_FIM)
    assert req.suffix == "\ny0 = 0\ny1 = 1"


def test_whitespace_only_results_are_dropped() -> None:
    assert post_filter("   \n", _request(SOURCE, 4, 10)) is None


def test_a_single_line_request_keeps_only_the_first_line() -> None:
    req = _request("x = compute(\n", 0, 12)
    assert post_filter("a, b)\nprint(x)\n", req) == "a, b)"


def test_text_the_rest_of_the_line_already_holds_is_cut() -> None:
    req = _request("value = compute()\n", 0, 16)
    assert post_filter("a, b)", req) == "a, b"


def test_a_result_that_repeats_the_next_line_is_dropped() -> None:
    text = "def f(x):\n    \n    return x + 1\n"
    assert post_filter("return x + 1", _request(text, 1, 4)) is None


def test_a_result_that_breaks_the_parse_is_dropped() -> None:
    text = "def f(x):\n    y = \n    return y\n"
    req = _request(text, 1, 8)
    assert post_filter("x * 2", req) == "x * 2"
    assert post_filter("x * (2", req) is None


def test_a_block_stops_where_the_code_leaves_the_cursor_block() -> None:
    prefix = "def f(items):\n    "
    text = "total = 0\n    for i in items:\n        total += i\n    return total\nprint(f([1]))\nx = 2"
    assert trim_block(text, prefix).endswith("return total")


def test_the_gate_withholds_low_confidence_and_shows_what_it_cannot_judge() -> None:
    assert passes_gate(-0.1, -0.35)
    assert not passes_gate(-0.9, -0.35)
    assert passes_gate(None, -0.35)


def test_the_gate_withholds_a_line_after_which_the_model_would_go_on_writing() -> None:
    assert passes_gate(-0.1, -0.35, end_logprob=-0.1)
    assert not passes_gate(-0.1, -0.35, end_logprob=-2.0), "the line does not close the gap to the code below"
    assert passes_gate(-0.1, -99, end_logprob=-2.0), "-99 shows everything"


def test_a_short_statement_also_found_higher_up_is_still_shown() -> None:
    text = "for k in keys:\n    if bad(k):\n        break\n    else:\n        \n"
    req = _request(text, 4, 8, mode="line")
    assert post_filter("break", req) == "break"


def test_echoing_the_line_right_above_is_not_shown() -> None:
    text = "total = 0\ncount = len(items)\n\n"
    req = _request(text, 2, 0, mode="line")
    assert post_filter("count = len(items)", req) is None


def test_a_line_opening_a_block_that_would_have_no_body_is_not_shown() -> None:
    text = "def f(nums):\n    \n    s = 0\n    return s\n"
    req = _request(text, 1, 4, mode="line")
    assert post_filter("if not nums:", req) is None, "the next line is not indented under it: Python rejects it"
    assert post_filter("nums = list(nums)", req) == "nums = list(nums)"
    below = _request("def f(nums):\n    \n        s = 0\n", 1, 4, mode="line")
    assert post_filter("for n in nums:", below) == "for n in nums:", "the next line is its body"
    last = _request("def f(nums):\n    \n\ndef g():\n    pass\n", 1, 4, mode="line")
    assert post_filter("for n in nums:", last) == "for n in nums:", "writing top-down at the end of a block"


def test_a_block_that_ends_by_opening_a_block_with_no_room_for_its_body_loses_that_line() -> None:
    text = "def sign(n):\n    \n    return 1\n"
    req = _request(text, 1, 4)
    assert req.mode == "block"
    assert post_filter("if n < 0:", req) is None
    assert post_filter("n = int(n)\n    if n < 0:", req) == "n = int(n)"


DEPTH = '''def depth(text):
    level = 0
    for c in text:
        if c == "(":
            level += 1
        elif c == ")":
            level -= 1

                groups += 1
    return level
'''


def test_a_line_at_column_0_moves_to_the_level_the_code_below_asks_for() -> None:
    req = _request(DEPTH, 7, 0, mode="line")
    assert post_filter("        if level == 0:", req) == "            if level == 0:", "its body sits two levels deeper"
    below = _request(DEPTH.replace("                groups += 1", "                break"), 7, 0, mode="line")
    assert post_filter("            groups += 1", below) == "                groups += 1", "unexpected indent below it"
    assert post_filter("            if level == 0:", req) == "            if level == 0:", "already right"


def test_a_file_that_indents_by_odd_steps_keeps_the_line() -> None:
    text = "def grade(g):\n    if g > 3:\n           return 'A'\n\n           return 'B'\n"
    req = _request(text, 3, 0, mode="line")
    assert post_filter("    elif g > 2:", req) == "    elif g > 2:", "its body is 7 in, as above: no level to move to"


def test_indentation_the_user_typed_is_not_changed_and_a_line_at_odds_with_it_is_withheld() -> None:
    req = _request(DEPTH.replace("\n\n                groups", "\n        \n                groups"), 7, 8, mode="line")
    assert post_filter("if level == 0:", req) is None


def test_inside_brackets_indentation_is_free() -> None:
    text = "values = [\n    1,\n\n        3,\n]\n"
    req = _request(text, 2, 0, mode="line")
    assert post_filter("    2,", req) == "    2,", "Python accepts the deeper line below: nothing to fit"


def test_tabs_stay_tabs_when_a_line_is_fitted() -> None:
    text = "def f(x):\n\tif x:\n\t\tx -= 1\n\n\t\treturn x\n\treturn 0\n"
    req = _request(text, 3, 0, mode="line")
    assert post_filter("\tx += 1", req) == "\t\tx += 1"


def test_enter_indents_after_a_block_opener_and_dedents_after_a_return() -> None:
    from greenpatch.completion.filters import indent_after_enter

    around = "def f(x):\n  if x:\n    return 1\n"
    assert indent_after_enter("  if x > 1:", around) == "    ", "the file's own step: 2"
    assert indent_after_enter("    return 1", around) == "  "
    assert indent_after_enter("    y = (1,", around) == "    ", "inside brackets: the same"
    assert indent_after_enter("\tfor y in x:", "") == "\t\t"


PAIRS = "def pairs(grid, x):\n    \n    return coords\n"


@pytest.mark.parametrize("line, dropped", [
    ("coords = [(i, j) for i, row in enumerate(grid) for j, x in enumerate(row) if x == x]", True),
    ("coords = [(i, j) for i, row in enumerate(grid) for j, y in enumerate(row) if y == x]", False),
    ("coords = grid[0] <= grid[0]", True),
    ("coords = grid.a is not grid.a", True),
    ("coords = x not in x", True),
    ("coords = 0 <= x <= x", True),
    ("coords = grid[0] < grid[1]", False),
    ("coords = x + grid == grid", False),  # (x + grid) == grid
    ("coords = x != x", False),  # the NaN test
    ("coords = next(grid) == next(grid)", False),  # two values
])
def test_a_line_comparing_something_with_itself_is_not_shown(line: str, dropped: bool) -> None:
    req = _request(PAIRS, 1, 4)
    assert (post_filter(line, req) is None) is dropped
