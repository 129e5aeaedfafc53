"""The kinds of candidates real one-hunk fixes are made of (issue 26): call arguments from the callee's signature,
conditions, tolerant lookups, file modes, string and regex literals guided by the assertion, inserted lines and
multi-line holes, and the order they are tried in. Each generator runs on code shaped like real library code."""

from __future__ import annotations

import ast
from pathlib import Path

from greenpatch.engine.fake import FakeEngine
from greenpatch.repair import budget
from greenpatch.repair.budget import Edit, by_likelihood, likelihood
from greenpatch.repair.candidates import replace_lines
from greenpatch.repair.holes import insertion_holes, masked_holes, reads_any, unbound_names
from greenpatch.repair.infill import fill, hole_window, make_hole
from greenpatch.repair.initialize import initialization_edits, missing_attributes
from greenpatch.repair.literals import literal_edits
from greenpatch.repair.signatures import lookup, runtime_signature
from greenpatch.repair.structural import structural_edits
from greenpatch.workspace.index import WorkspaceIndex

CONFIG = '''\
import json
import os


def dump_settings(settings, path, sort_keys=False):
    """Write the settings as JSON."""
    text = json.dumps(settings, indent=2)
    with open(path) as handle:
        handle.write(text)
    return text


def read_value(options, key, default=None):
    if options:
        return options[key]
    return default


def merge(base, extra, overwrite=True):
    result = dict(base)
    for key, value in extra.items():
        if key not in result:
            result[key] = value
    return result


def resolve(name, search_path, strict=False):
    return find_file(name, search_path)


def find_file(name, search_path, *, strict=True, follow_links=False):
    for folder in search_path:
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    return None
'''


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def edits_at(text: str, needle: str, **kwargs: object) -> list[Edit]:
    line = line_of(text, needle)
    return list(structural_edits(text, line, line, lookup(text), **kwargs))  # type: ignore[arg-type]


def new_lines(old: str, new: str) -> list[str]:
    before = set(old.split("\n"))
    return [line for line in new.split("\n") if line not in before]


def test_a_missing_keyword_argument_is_forwarded_from_the_callers_own_parameter() -> None:
    edits = [e for e in edits_at(CONFIG, "return find_file(") if e.kind == budget.CALL_ARGS]
    assert new_lines(CONFIG, edits[0].text) == ["    return find_file(name, search_path, strict=strict)"]
    shown = [new_lines(CONFIG, e.text)[0].strip() for e in edits]
    # the keyword-only flag's default flipped too, and nothing already passed positionally is passed again
    assert "return find_file(name, search_path, follow_links=True)" in shown
    assert not any("name=" in s or "search_path=" in s for s in shown)


def test_a_standard_library_callee_gets_its_keyword_arguments_from_its_real_signature() -> None:
    edits = [e for e in edits_at(CONFIG, "json.dumps(") if e.kind == budget.CALL_ARGS]
    shown = [new_lines(CONFIG, e.text)[0].strip() for e in edits]
    assert shown[0] == "text = json.dumps(settings, indent=2, sort_keys=sort_keys)"
    assert "text = json.dumps(settings, indent=2, ensure_ascii=False)" in shown
    assert "text = json.dumps(settings)" in shown  # an argument dropped
    assert all(ast.parse(e.text) for e in edits)


def test_a_callee_in_another_module_is_found_through_the_workspace_index(tmp_path: Path) -> None:
    (tmp_path / "store.py").write_text("class Store:\n    def save(self, item, *, flush=False):\n        pass\n")
    caller = "def persist(store, item):\n    store.save(item)\n"
    (tmp_path / "app.py").write_text(caller)
    index = WorkspaceIndex(tmp_path)
    index.scan()
    edits = list(structural_edits(caller, 2, 2, lookup(caller, index)))
    assert "    store.save(item, flush=True)" in [new_lines(caller, e.text)[0] for e in edits]


def test_arguments_are_dropped_and_swapped_keeping_the_commas_right() -> None:
    text = "def shift(values, start, stop, step):\n    return list(range(start, stop, step))\n"
    shown = [new_lines(text, e.text)[0].strip() for e in structural_edits(text, 2, 2, lookup(text))
             if e.kind == budget.CALL_ARGS]
    assert "return list(range(start, stop))" in shown
    assert "return list(range(stop, step))" in shown
    assert "return list(range(stop, start, step))" in shown


def test_a_condition_is_made_none_aware_strengthened_and_weakened_with_names_in_scope() -> None:
    edits = [e for e in edits_at(CONFIG, "if options:") if e.kind == budget.CONDITION]
    shown = [new_lines(CONFIG, e.text)[0].strip() for e in edits]
    assert shown[0] == "if options is not None:"
    assert "if options and key:" in shown
    assert "if options or default:" in shown
    assert "if not options:" in shown
    assert all(ast.parse(e.text) for e in edits)


def test_a_boolean_flag_in_scope_ranks_first_among_the_extra_clauses() -> None:
    edits = [e for e in edits_at(CONFIG, "if key not in result:") if e.kind == budget.CONDITION]
    extra = [e for e in edits if "`or " in e.description]
    best = max(extra, key=lambda e: e.weight)
    assert new_lines(CONFIG, best.text) == ["        if key not in result or overwrite:"]


def test_a_lookup_is_made_tolerant_of_a_missing_key_but_a_list_index_is_not() -> None:
    edits = edits_at(CONFIG, "return options[key]")
    tolerant = [e for e in edits if e.kind == budget.LOOKUP]
    assert [new_lines(CONFIG, e.text) for e in tolerant] == [["        return options.get(key)"]]
    text = "def first(items):\n    return items[0]\n"
    assert not [e for e in structural_edits(text, 2, 2) if e.kind == budget.LOOKUP]


def test_a_dereference_gets_a_none_guard_around_its_statement() -> None:
    edits = [e for e in edits_at(CONFIG, "handle.write(text)") if "guarded" in e.description]
    assert new_lines(CONFIG, edits[0].text) == ["        if handle is not None:", "            handle.write(text)"]
    ast.parse(edits[0].text)


def test_a_file_is_opened_in_another_mode() -> None:
    shown = [new_lines(CONFIG, e.text)[0].strip() for e in edits_at(CONFIG, "with open(path)")
             if e.kind == budget.OPEN_MODE]
    assert "with open(path, 'rb') as handle:" in shown[:2] or "with open(path, 'w') as handle:" in shown
    assert "with open(path, 'w') as handle:" in shown
    assert 'with open(path, encoding="utf-8") as handle:' in shown
    text = "def save(p, data):\n    with open(p, \"w\") as f:\n        f.write(data)\n"
    modes = [new_lines(text, e.text)[0].strip() for e in structural_edits(text, 2, 2) if e.kind == budget.OPEN_MODE]
    assert modes[:2] == ['with open(p, "wb") as f:', 'with open(p, "a") as f:']


def test_runtime_signatures_come_from_the_standard_library_only() -> None:
    signature = runtime_signature("json.dumps")
    assert signature is not None and "sort_keys" in [p.name for p in signature.params]
    assert runtime_signature("sorted") is not None
    assert runtime_signature("requests.get") is None  # not imported into greenpatch's process: never


SLUG = '''\
import re

_VERSION = re.compile(r"v(\\d+)\\.(\\d+)")


def slugify(title):
    """Lower case, words joined by dashes."""
    words = re.findall(r"\\w+", title.lower())
    return "-".join(words)


def greeting(name):
    return "Hello %s" % name
'''


def test_a_string_literal_is_edited_the_way_the_expected_value_differs() -> None:
    line = line_of(SLUG, '"-".join')
    edits = list(literal_edits(SLUG, line, line, expected="'my_title'", actual="'my-title'"))
    assert edits[0].kind == budget.LITERAL
    assert new_lines(SLUG, edits[0].text) == ['    return "_".join(words)']
    line = line_of(SLUG, "Hello %s")
    edits = list(literal_edits(SLUG, line, line, expected="Hello, Ann", actual="Hello Ann"))
    assert new_lines(SLUG, edits[0].text) == ['    return "Hello, %s" % name']


def test_a_literal_equal_to_the_actual_value_becomes_the_expected_one() -> None:
    text = "def unit():\n    return 'meter'\n"
    edits = list(literal_edits(text, 2, 2, expected="'metre'", actual="'meter'"))
    assert new_lines(text, edits[0].text) == ["    return 'metre'"]


def test_a_regex_gets_anchors_quantifiers_and_escapes_and_stays_raw() -> None:
    line = line_of(SLUG, "_VERSION = ")
    shown = [new_lines(SLUG, e.text)[0] for e in literal_edits(SLUG, line, line)]
    assert '_VERSION = re.compile(r"^v(\\d+)\\.(\\d+)")' in shown
    assert '_VERSION = re.compile(r"v(\\d+)\\.(\\d+)$")' in shown
    assert '_VERSION = re.compile(r"v(\\d*)\\.(\\d+)")' in shown
    line = line_of(SLUG, "re.findall")
    assert '    words = re.findall(r"[\\w-]+", title.lower())' in [
        new_lines(SLUG, e.text)[0] for e in literal_edits(SLUG, line, line)]


def test_docstrings_and_f_strings_are_left_alone() -> None:
    line = line_of(SLUG, "Lower case, words")
    assert list(literal_edits(SLUG, line, line)) == []
    text = "def f(x):\n    return f'{x}-y'\n"
    assert list(literal_edits(text, 2, 2)) == []


def test_insertion_holes_sit_before_after_and_at_the_start_of_a_block() -> None:
    line = line_of(CONFIG, "for key, value in extra.items():")
    specs = insertion_holes("config.py", CONFIG, line)
    assert [s.where for s in specs] == [f"at the start of the block of line {line}", f"before line {line}",
                                        f"after line {line}", f"before line {line}"]
    block = specs[0].hole
    assert block.first == line + 1 and block.last == line and block.indent == " " * 8 and block.lines == 1
    after = specs[2].hole
    assert after.first == line_of(CONFIG, "return result") and after.indent == "    "
    two = specs[3].hole  # two new lines: a dropped `cache[k] = result = f(x)` written back as two
    assert (two.first, two.last, two.lines) == (line, line - 1, 2) and specs[3].weight < specs[2].weight


def test_a_name_the_failure_says_is_unbound_is_read_on_the_line() -> None:
    messages = ["UnboundLocalError: local variable 'result' referenced before assignment",
                "UnboundLocalError: cannot access local variable 'total' where it is not associated with a value",
                "NameError: name 'helper' is not defined", "AssertionError: assert 1 == 2"]
    assert unbound_names(messages) == {"result", "total", "helper"}
    assert reads_any(MEMOIZE, 8, {"result"}) and not reads_any(MEMOIZE, 6, {"result"})
    assert reads_any("if result:\n    pass\n", 1, {"result"}) and not reads_any("if x:\n    result\n", 1, {"result"})


def test_an_inserted_fill_adds_one_line_and_keeps_every_other_line() -> None:
    line = line_of(CONFIG, "text = json.dumps(")
    spec = insertion_holes("config.py", CONFIG, line)[0]  # before the statement (a simple one: no block)
    engine = FakeEngine(text="settings = dict(settings)")
    filled = fill(engine, spec.hole, "", temperature=0.0, seed=0)
    assert filled is not None
    new_text = replace_lines(CONFIG, spec.hole.first, spec.hole.last, filled[0])
    assert new_text.split("\n")[line - 1] == "    settings = dict(settings)"
    assert new_text.split("\n")[line:] == CONFIG.split("\n")[line - 1:]
    assert engine.calls[0]["stop"] == ["\n"]


MODULE = (
    "import os\n\n\ndef other():\n    return os.sep\n\n\n"
    "def f(a):\n    x = a + 1\n    y = x * 2\n    return y\n\n\n"
    "def last():\n    return 2\n"
)


def test_holes_in_a_window_show_the_function_and_imports_not_the_whole_module() -> None:
    window = hole_window(MODULE, 9, 9)
    specs = [*insertion_holes("m.py", MODULE, 9, window), *masked_holes("m.py", MODULE, 9, window=window)]
    assert [s.where for s in specs] == ["before line 9", "after line 9", "before line 9", "lines 9-10", "lines 9-11"]
    for spec in specs:
        hole = spec.hole
        assert hole.prefix.startswith("import os\n") and "def f(a):\n" in hole.prefix
        assert "def other" not in hole.prefix + hole.suffix and "def last" not in hole.prefix + hole.suffix
        new_text = replace_lines(MODULE, hole.first, hole.last, ["    z = 0"] * hole.lines)
        assert "def other():" in new_text and new_text.endswith("def last():\n    return 2\n")
    before = specs[0].hole
    assert before.prefix.endswith("def f(a):\n") and before.suffix.startswith("\n    x = a + 1\n")


MEMOIZE = (
    "def memoize(func):\n"
    "    cache = {}\n\n"
    "    def memof(*args):\n"
    "        try:\n"
    "            return cache[args]\n"
    "        except KeyError:\n"
    "            return result\n"
    "    return memof\n"
)


def test_a_nested_functions_window_is_its_outermost_function_which_binds_what_it_reads() -> None:
    hole = make_hole("m.py", MEMOIZE, 8, 8, hole_window(MEMOIZE, 8, 8))
    assert hole.prefix.startswith("def memoize(func):\n    cache = {}\n")


PERMS = (
    "class Perms:\n"
    "    class _Bits:\n"
    "        def update(self, obj, value):\n"
    "            obj._integer |= value\n\n"
    "    def __init__(self, user=''):\n"
    "        \"\"\"Permissions.\"\"\"\n"
    "        self._user = ''\n"
    "        self.user = user\n"
)


def test_an_attribute_the_failure_says_is_missing_is_set_first_in_its_classs_init() -> None:
    message = "AttributeError: 'Perms' object has no attribute '_integer'. Did you mean: '_user'?"
    assert missing_attributes([message, message]) == [("Perms", "_integer")]
    edits = list(initialization_edits(PERMS, "Perms", "_integer"))
    first = edits[0]
    assert first.kind == budget.INIT and "`self._integer = 0` at the start of Perms.__init__" == first.description
    assert first.text == PERMS.replace("        self._user = ''\n", "        self._integer = 0\n        self._user = ''\n")
    assert [e.description.split("`")[1] for e in edits] == ["self._integer = 0", "self._integer = None"]
    # not for an attribute the module never assigns (a typo), nor one __init__ sets already
    assert list(initialization_edits(PERMS, "Perms", "_intger")) == []
    assert list(initialization_edits(PERMS, "Perms", "_user")) == []
    assert list(initialization_edits(PERMS, "Other", "_integer")) == []


def test_masked_holes_cover_two_and_three_simple_statements_of_one_block() -> None:
    line = line_of(CONFIG, "candidate = os.path.join")
    assert masked_holes("config.py", CONFIG, line) == []  # the next statement is an `if` block
    text = "def f(a):\n    x = a + 1\n    y = x * 2\n    z = y - 3\n    return z\n"
    specs = masked_holes("m.py", text, 2)
    assert [(s.hole.first, s.hole.last, s.hole.lines) for s in specs] == [(2, 3, 2), (2, 4, 3)]
    assert all(s.kind == budget.INFILL_LINES for s in specs)


def test_candidates_are_tried_by_likelihood_not_in_turn() -> None:
    call_fix = likelihood(budget.CALL_ARGS, 0.8, 1.0)
    lookup_fix = likelihood(budget.LOOKUP, 0.8, 1.0)
    far_mutation = likelihood(budget.MUTATION, 0.1, 1.0)
    order = by_likelihood(["lookup", "far mutation", "call"], [lookup_fix, far_mutation, call_fix])
    assert order == ["call", "lookup", "far mutation"]
    assert by_likelihood("abc", [1.0, 1.0, 1.0], limit=2) == ["a", "b"]  # ties keep their order
