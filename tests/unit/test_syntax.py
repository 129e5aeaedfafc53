from greenpatch.workspace import syntax
from greenpatch.workspace.documents import Document, byte_to_utf16_col, utf16_to_str_col

SOURCE = '''import os
from pkg.mod import helper as h


class Shop:
    def price(self, item):
        return helper(item)


def total(items):
    return sum(x.price for x in items)
'''


def test_definitions_come_from_tags_query_with_methods_told_apart():
    kinds = [(d.name, d.kind, d.start_line, d.end_line) for d in syntax.definitions(SOURCE)]
    assert kinds == [("Shop", "class", 4, 6), ("price", "method", 5, 6), ("total", "function", 9, 10)]


def test_imports_record_their_module():
    imports = [(r.name, r.module) for r in syntax.tags(SOURCE).references if r.kind == "import"]
    assert imports == [("os", ""), ("helper", "pkg.mod")]


def test_enclosing_definition_prefers_the_innermost_function():
    assert syntax.enclosing_definition(SOURCE, 6).name == "price"
    assert syntax.enclosing_definition(SOURCE, 10).name == "total"
    assert syntax.enclosing_definition(SOURCE, 0) is None


def test_syntax_problems_point_at_the_error_and_a_valid_file_has_none():
    assert syntax.syntax_problems(SOURCE) == []
    problems = syntax.syntax_problems("def f(:\n    pass\n")
    assert len(problems) == 1 and problems[0].line == 0
    assert syntax.error_count("x = (1,\n") >= 1


def test_wants_block_only_on_an_empty_body():
    assert syntax.wants_block("def f(x):\n    \n", 1, 4)
    assert not syntax.wants_block("def f(x):\n    return x\n", 1, 4)
    assert not syntax.wants_block("x = 1\n\n", 1, 0)


def test_incremental_edits_give_the_same_tree_as_a_full_parse():
    document = Document("file:///t.py", None, SOURCE, 1)
    document.apply_change((6, 26), (6, 26), " + 1")
    document.apply_change((0, 0), (1, 0), "")
    document.apply_change((2, 0), (2, 0), "# ünïcode 😀 comment\n")
    assert "return helper(item + 1)" in document.text
    assert not document.text.startswith("import os")
    assert document.text.split("\n")[2] == "# ünïcode 😀 comment"
    assert str(document.tree.root_node) == str(syntax.parse(document.text).root_node)


def test_lsp_columns_count_utf16_units():
    line = "a😀b"
    assert utf16_to_str_col(line, 3) == 2  # the emoji is two UTF-16 units
    assert byte_to_utf16_col(line.encode(), len("a😀".encode())) == 3
