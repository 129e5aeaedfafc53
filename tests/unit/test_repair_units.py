"""Pure parts of the repair pipeline: mutation operators, localization, candidate checks, the CodeT probe."""

from __future__ import annotations

import ast
from pathlib import Path

from greenpatch.repair.candidates import (
    adds_dead_code,
    adds_undefined_name,
    changed_range,
    changed_tokens,
    new_imports_exist,
    normalized,
    undefined_names,
    unified_diff,
)
from greenpatch.repair.localize import SourceMap, localize
from greenpatch.repair.mutate import mutations
from greenpatch.repair.paths import is_test_path
from greenpatch.repair.probe import call_examples, digests, extra_inputs, probe_source
from greenpatch.repair.rewrite import extract_function, splice_function
from greenpatch.verify.types import Frame
from greenpatch.verify.types import TestResult as Result

SOURCE = "def is_adult(age):\n    return age > 18\n\n\ndef total(n):\n    return sum(range(n))\n"


def test_mutations_change_one_token_and_keep_formatting() -> None:
    found = {desc: new for new, desc in mutations(SOURCE, 2, 2)}
    assert "`>` -> `>=`" in found
    assert found["`>` -> `>=`"] == SOURCE.replace("age > 18", "age >= 18")
    assert found["`18` -> `19`"] == SOURCE.replace("18", "19")


def test_relational_operators_get_every_other_operator() -> None:
    text = "def below_zero(balance):\n    return balance == 0\n"
    found = {desc for _, desc in mutations(text, 2, 2)}
    assert {"`==` -> `!=`", "`==` -> `<`", "`==` -> `>`", "`==` -> `<=`", "`==` -> `>=`"} <= found


def test_a_whole_simple_statement_can_be_dropped() -> None:
    text = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n        total += 1\n    return total\n"
    found = {desc: new for new, desc in mutations(text, 5, 5)}
    assert found["drop the statement"] == text.replace("        total += 1\n", "")
    documented = 'def h(x):\n    """Doc."""\n    return x\n'
    assert "drop the statement" not in {desc for _, desc in mutations(documented, 2, 2)}, "never a docstring"
    alone = "def g(x):\n    x += 1\n"  # the only statement of its block: the candidate would not parse
    assert all(desc != "drop the statement" or normalized(new) is None for new, desc in mutations(alone, 2, 2))


def test_mutations_include_off_by_one_on_range_stops() -> None:
    texts = [new for new, _ in mutations(SOURCE, 6, 6)]
    assert SOURCE.replace("range(n)", "range(n + 1)") in texts


def test_a_condition_can_be_negated() -> None:
    text = "def f(key, xs):\n    if callable(key):\n        return 1\n    while a and b:\n        pass\n"
    found = {new for new, desc in mutations(text, 2, 4) if desc == "negate the condition"}
    assert found == {text.replace("if callable", "if not callable"), text.replace("while a and b", "while not (a and b)")}
    negated = "def f(x):\n    if not x:\n        return 1\n"
    assert "negate the condition" not in {desc for _, desc in mutations(negated, 2, 2)}, "`drop not` instead"


def test_a_variable_is_replaced_by_those_assigned_above_it_nearest_first() -> None:
    text = ("def f(pre_lines, n):\n    ret = []\n    for i, item in enumerate(ret):\n        ret.append(item)\n"
            "    return ret\n")
    swaps = [(desc, new.split("\n")[2]) for new, desc in mutations(text, 3, 3) if desc.startswith("`ret` ->")]
    # the loop's own targets are not assigned yet where `ret` is used; nearest above first, then the parameters
    assert swaps == [("`ret` -> `pre_lines`", "    for i, item in enumerate(pre_lines):"),
                     ("`ret` -> `n`", "    for i, item in enumerate(n):")]
    body = {desc for _, desc in mutations(text, 4, 4)}
    assert {"`item` -> `i`", "`ret` -> `item`", "`item` -> `ret`"} <= body
    method = "class A:\n    def f(self, other):\n        return self.x + other.x\n"
    assert not any("self" in desc for _, desc in mutations(method, 3, 3)), "self and cls are never swapped"


def test_every_mutation_parses() -> None:
    text = "def f(xs, k):\n    if not xs or k <= 0:\n        return xs[1:-1]\n    return max(xs) - min(xs) * k\n"
    for new, _ in mutations(text, 2, 4):
        ast.parse(new)


def test_normalized_key_ignores_formatting_and_comments() -> None:
    assert normalized("x = (1 +  2)  # c\n") == normalized("x = 1 + 2\n")
    assert normalized("x = 1 -") is None


def test_a_candidate_that_reads_a_name_nothing_binds_is_told() -> None:
    original = ("def count_primes(n):\n    def is_prime(k):\n        for j in range(2, k):\n"
                "            if k % j == 0:\n                return False\n        return True\n"
                "    return sum(1 for x in range(n) if is_prime(x))\n")
    broken = original.replace("for j in range(2, k):", "if k <= 1:")  # passes a test that never reaches `k % j`
    assert undefined_names(broken) == {"j"} and adds_undefined_name(original, broken)
    assert not adds_undefined_name(original, original.replace("range(2, k)", "range(3, k)"))
    scoped = ("import os\nLIMIT = 1\nclass A:\n    size = LIMIT\n    def f(self):\n        global SEEN\n"
              "        SEEN = 2\n        return [c for c in os.sep] + [__file__, len, self]\n"
              "def g():\n    x = 1\n    def h():\n        nonlocal x\n        return x + SEEN\n    return A, h\n")
    assert undefined_names(scoped) == set()
    assert undefined_names("from m import *\nprint(anything)\n") is None  # anything may be bound by the import


def test_candidates_importing_missing_modules_are_dropped(tmp_path: Path) -> None:
    assert not new_imports_exist("x = 1\n", "import no_such_module_xyz\nx = 1\n", tmp_path)
    assert new_imports_exist("x = 1\n", "import math\nx = 1\n", tmp_path)


def test_changed_range_and_tokens_describe_the_edit() -> None:
    new = SOURCE.replace("age > 18", "age >= 18")
    assert changed_range(SOURCE, new) == (1, 1)
    assert changed_tokens(SOURCE, new) == 1
    assert "-    return age > 18\n+    return age >= 18\n" in unified_diff("a.py", SOURCE, new)


def test_localize_ranks_lines_run_by_failing_tests_above_shared_ones() -> None:
    text = "def f(x):\n    y = x + 1\n    if x > 3:\n        return y * 2\n    return y\n"
    coverage = {"t.py::test_bad": {"m.py": {2, 3, 4}}, "t.py::test_ok": {"m.py": {2, 3, 5}}}
    failing = [Result("t.py::test_bad", "failed", frames=[Frame("t.py", 3, "test_bad")])]
    found = localize(failing, ["t.py::test_ok"], coverage, lambda rel: SourceMap(text), None)
    assert found[0].line == 4 and found[0].function.name == "f"
    assert {s.line for s in found} == {2, 3, 4}


def test_test_files_are_never_suspects() -> None:
    assert is_test_path("tests/test_x.py") and is_test_path("pkg/x_test.py") and is_test_path("conftest.py")
    assert not is_test_path("pkg/core.py")


def test_probe_finds_literal_calls_directly_and_through_check_helpers() -> None:
    direct = "from m import f\n\ndef test_a():\n    assert f(1, 'ab') == 2\n"
    assert call_examples(direct, "f") == ("f", [(1, "ab")])
    helper = "from m import f\n\ndef check(candidate):\n    assert candidate([1, 2]) == 3\n\ndef test_b():\n    check(f)\n"
    assert call_examples(helper, "f") == ("f", [([1, 2],)])


def test_extra_inputs_keep_the_examples_and_their_shapes() -> None:
    inputs = extra_inputs([([1, 2], 3)], count=10)
    assert inputs[0] == ([1, 2], 3)
    assert len(inputs) > 3
    assert all(isinstance(a, list) and isinstance(b, int) for a, b in inputs)


def test_probe_source_reports_a_digest_per_input() -> None:
    src = probe_source("from m import f\n", "f", [(1,), (2,)])
    ast.parse(src)
    assert digests("AssertionError: GREENPATCH-PROBE ab12cd 0f0f0f\nassert False") == ("ab12cd", "0f0f0f")


def test_rewrite_reply_is_spliced_in_with_the_original_indentation() -> None:
    text = "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    reply = "Here:\n```python\ndef f(self):\n    return 3\n```\n"
    new_fn = extract_function(reply, "A.f")
    assert new_fn == "def f(self):\n    return 3"
    assert splice_function(text, 2, 3, new_fn) == text.replace("return 1", "return 3")


def test_a_candidate_that_makes_code_unreachable_is_dead_code_and_an_early_return_already_there_is_not() -> None:
    original = "def normal(region):\n    return region.strip().lower()[:-1]\n"
    inserted = "def normal(region):\n    return region.strip().lower()\n    return region.strip().lower()[:-1]\n"
    replaced = "def normal(region):\n    return region.strip().lower()\n"
    assert adds_dead_code(original, inserted)
    assert not adds_dead_code(original, replaced)
    loop = "for x in xs:\n    if x:\n        continue\n    y(x)\n"
    assert not adds_dead_code(loop, loop.replace("y(x)", "z(x)"))
    assert adds_dead_code(loop, loop.replace("    if x:\n        continue\n", "    continue\n"))


def test_the_last_element_idiom_is_mutated_after_everything_else_on_the_line() -> None:
    text = "def f(a, i):\n    return a[-1] + a[i + 1]\n"
    found = [desc for _, desc in mutations(text, 2, 2)]
    assert found.index("drop the `± 1`") < found.index("drop unary `-`")
    assert found[-3:] == ["drop unary `-`", "`1` -> `2`", "`1` -> `0`"]
    # `i * 1` and `i + 0` are `i`: the plain "drop the `± 1`" stands for them
    assert found.count("`+` -> `*`") == 1 and found.count("`1` -> `0`") == 1
