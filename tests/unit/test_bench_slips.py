"""The seeded human-slip generator of `greenpatch bench real` (pure: text in, one-line changes out)."""

from __future__ import annotations

import ast

import pytest
from greenpatch.bench.real import pytest_outcome
from greenpatch.bench.slips import KINDS, Slip, SlipError, draw, named_in, parses, slips_in

MODULE = '''\
"""A small module with one of everything a slip can hit."""

import math


def window(items, size):
    """Consecutive runs of `size` items."""
    out = []
    for start in range(len(items) - size + 1):
        chunk = items[start:start + size]
        if not chunk:
            continue
        out.append(tuple(chunk))
    return out


def clamp(value, low, high):
    if value < low:
        return low
    if value >= high:
        return high
    return value


def describe(name, count=0, loud=False):
    label = "item" if count == 1 else "items"
    text = f"{name}: {count} {label}"
    if loud:
        text = text.upper()
    if name is not None and name not in ("", "-"):
        text = text + "!"
    return pow(len(text), 2) - math.floor(count / 2)


def _helper_nobody_tests(x):
    return x + 1
'''


def _changed_lines(before: str, after: str) -> list[int]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if len(old) == len(new):
        return [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
    assert len(old) == len(new) + 1, "a slip changes or deletes exactly one line"
    gone = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), len(new))
    assert old[:gone] + old[gone + 1:] == new, "only that line is gone"
    return [gone]


def test_every_kind_of_slip_is_found_in_a_module_that_has_them() -> None:
    found = {s.kind for s in slips_in("mod.py", MODULE)}
    assert found == set(KINDS)


def test_every_slip_changes_exactly_one_line_and_still_parses() -> None:
    slips = slips_in("mod.py", MODULE)
    assert len(slips) > 30
    for slip in slips:
        after = slip.apply(MODULE)
        assert _changed_lines(MODULE, after) == [slip.line - 1], slip
        assert parses(slip, MODULE), slip
        ast.parse(after)


def test_the_rest_of_the_file_stays_byte_identical_with_crlf_endings_and_no_final_newline() -> None:
    text = MODULE.replace("\n", "\r\n").rstrip("\r\n")
    for slip in slips_in("mod.py", text):
        after = slip.apply(text)
        before_lines, after_lines = text.splitlines(keepends=True), after.splitlines(keepends=True)
        kept = [line for i, line in enumerate(before_lines) if i != slip.line - 1]
        if slip.new is None:
            assert after_lines == kept
        else:
            assert after_lines[: slip.line - 1] + after_lines[slip.line:] == kept
            assert after_lines[slip.line - 1].endswith("\r\n") or slip.line == len(before_lines)


def test_the_slips_are_the_ordinary_human_ones() -> None:
    pairs = {(s.kind, s.old.strip(), None if s.new is None else s.new.strip()) for s in slips_in("mod.py", MODULE)}
    assert ("off-by-one", "if value < low:", "if value <= low:") in pairs
    assert ("off-by-one", "if value >= high:", "if value > high:") in pairs
    assert ("off-by-one", "for start in range(len(items) - size + 1):",
            "for start in range(len(items) - size):") in pairs
    assert ("dropped-not", "if not chunk:", "if chunk:") in pairs
    assert ("dropped-not", "if name is not None and name not in (\"\", \"-\"):",
            "if name is None and name not in (\"\", \"-\"):") in pairs
    assert ("dropped-statement", "text = text.upper()", None) not in pairs, "the only statement of its block"
    assert ("dropped-statement", "out.append(tuple(chunk))", None) in pairs
    assert ("swapped-arguments", "return pow(len(text), 2) - math.floor(count / 2)",
            "return pow(2, len(text)) - math.floor(count / 2)") in pairs
    assert ("wrong-constant", 'label = "item" if count == 1 else "items"',
            'label = "item" if count == 0 else "items"') in pairs
    assert ("wrong-constant", 'label = "item" if count == 1 else "items"',
            'label = "ite" if count == 1 else "items"') in pairs
    assert ("wrong-variable", "return low", "return high") in pairs


def test_a_wrong_variable_is_one_already_bound_in_the_same_function() -> None:
    for slip in slips_in("mod.py", MODULE):
        if slip.kind == "wrong-variable" and slip.function == "window":
            assert slip.new is not None
            assert "math" not in slip.new and "describe" not in slip.new, "never a name from outside the function"
            assert not ("start" in slip.new and "start" not in slip.old and slip.line < 10), "not before it exists"


def test_docstrings_and_f_string_parts_are_never_slipped() -> None:
    for slip in slips_in("mod.py", MODULE):
        assert '"""' not in slip.old
        assert slip.old.strip() != 'text = f"{name}: {count} {label}"' or slip.kind == "dropped-statement"


def test_only_functions_the_tests_name_are_used_when_asked() -> None:
    covered = named_in({"window", "clamp"})
    functions = {s.function for s in slips_in("mod.py", MODULE, covered)}
    assert functions == {"window", "clamp"}


def test_the_order_is_the_same_for_a_seed_and_differs_for_another() -> None:
    slips = slips_in("mod.py", MODULE)
    assert draw(slips, 7) == draw(list(slips), 7)
    assert draw(slips, 7) != draw(slips, 8)
    assert sorted(draw(slips, 7), key=repr) == sorted(slips, key=repr), "a reordering: nothing lost or added"


def test_the_first_slips_drawn_take_kinds_in_turn_and_one_function_at_a_time() -> None:
    order = draw(slips_in("mod.py", MODULE), 3)
    functions = [s.function for s in order[:3]]
    assert len(set(functions)) == 3, "three functions before any twice"
    assert len({s.kind for s in order[:3]}) == 3


def test_a_slip_survives_a_round_trip_through_the_report_and_refuses_a_changed_file() -> None:
    slip = draw(slips_in("mod.py", MODULE), 1)[0]
    assert Slip.from_dict(slip.to_dict()) == slip
    edited = MODULE.replace(slip.old, slip.old + "  # edited")
    with pytest.raises(SlipError):
        slip.apply(edited)


def test_a_file_that_does_not_parse_has_no_slips() -> None:
    assert slips_in("py2.py", "print 'hello'\n") == []


def test_pytest_counts_and_failed_node_ids_come_from_its_short_summary() -> None:
    output = ("..F.\n=== short test summary info ===\nFAILED tests/test_a.py::TestX::test_y[1-2] - assert 1 == 2\n"
              "ERROR tests/test_b.py::test_z\n1 failed, 3 passed, 1 error, 2 skipped in 0.50s\n")
    assert pytest_outcome(output) == (7, ["tests/test_a.py::TestX::test_y[1-2]", "tests/test_b.py::test_z"])
