"""LSP shaping: UTF-16 columns on lines with characters outside the BMP, line endings kept, diagnostics moved with
later edits."""

from __future__ import annotations

from greenpatch.errors import (
    EngineCrashed,
    EngineNotInstalled,
    GreenpatchError,
    ModelError,
    ModelFileMissing,
    ModelNotInstalled,
)
from greenpatch.protocol.convert import (
    lsp_document_symbols,
    lsp_line_range,
    lsp_minimal_edit,
    lsp_moved_diagnostics,
    lsp_status_state,
    lsp_syntax_diagnostics,
    lsp_test_failure,
    lsp_whole_lines,
    str_column,
    utf8_lines,
)
from greenpatch.workspace import syntax
from greenpatch.workspace.documents import Document
from lsprotocol import types

EMOJI = "\U0001f600"  # outside the BMP: one Python character, two UTF-16 code units


def test_a_missing_model_or_llama_cpp_python_makes_the_client_offer_an_install() -> None:
    assert lsp_status_state(ModelNotInstalled("model 'tiny' is not installed", "run it")) == "noModel"
    assert lsp_status_state(EngineNotInstalled("llama-cpp-python is not installed")) == "noModel"


def test_other_errors_are_errors_whatever_their_message_says() -> None:
    # a missing .gguf path is a setting to change: installing a model cannot help
    assert lsp_status_state(ModelFileMissing("model file /m.gguf does not exist", "set greenpatch.model")) == "error"
    assert lsp_status_state(ModelError("cannot load model /m.gguf", "reinstall it")) == "error"
    assert lsp_status_state(EngineCrashed("the model process crashed")) == "error"
    assert lsp_status_state(GreenpatchError("nothing installed works")) == "error"


def apply(text: str, edit: types.TextEdit) -> str:
    """The edit applied the way the editor applies it: through LSP positions (text sync's own conversion)."""
    document = Document("file:///calc.py", None, text, 1)
    start, end = edit.range.start, edit.range.end
    document.apply_change((start.line, start.character), (end.line, end.character), edit.new_text)
    return document.text


def test_a_test_failure_diagnostic_ends_at_the_utf16_end_of_a_line_with_an_emoji() -> None:
    text = f"def f(a, b):\n    return str(a + b)  # {EMOJI}\n"
    line = text.split("\n")[1]
    diagnostic = lsp_test_failure(text, 1, "test_f fails", 3)
    assert diagnostic.range.start == types.Position(line=1, character=4)
    assert diagnostic.range.end == types.Position(line=1, character=len(line) + 1)
    assert diagnostic.code == "test-failure" and diagnostic.data == {"version": 3}


def test_a_syntax_error_after_an_emoji_is_placed_in_utf16_units() -> None:
    text = f"s = f('{EMOJI}', 1 2)\n"
    (diagnostic,) = lsp_syntax_diagnostics(text, syntax.syntax_problems(text))
    # `2` is the 14th character: byte 16 (the emoji takes 4 bytes), UTF-16 unit 14 (it takes 2)
    assert diagnostic.range == types.Range(
        start=types.Position(line=0, character=14), end=types.Position(line=0, character=15)
    )
    assert diagnostic.code == "syntax"


def test_a_syntax_error_on_a_line_after_an_emoji_line_starts_at_its_own_column() -> None:
    text = f"x = '{EMOJI}'\ny = (1 +\n"
    (diagnostic,) = lsp_syntax_diagnostics(text, syntax.syntax_problems(text))
    assert diagnostic.range == types.Range(
        start=types.Position(line=1, character=0), end=types.Position(line=1, character=8)
    )


def test_a_definition_ending_in_an_emoji_ends_at_the_utf16_end_of_its_line() -> None:
    text = f"def f(): return '{EMOJI}'\n\nclass C:\n    def m(self): return '{EMOJI * 2}'\n"
    lines = text.split("\n")
    (f, c) = lsp_document_symbols(utf8_lines(text), syntax.definitions(text))
    assert f.range.end == types.Position(line=0, character=len(lines[0]) + 1)
    assert f.selection_range == types.Range(
        start=types.Position(line=0, character=4), end=types.Position(line=0, character=5)
    )
    assert c.range.end == types.Position(line=3, character=len(lines[3]) + 2)
    (m,) = c.children or []
    assert m.name == "m" and m.selection_range.start == types.Position(line=3, character=8)


def test_a_cursor_after_an_emoji_is_at_the_python_index_after_it() -> None:
    lines = [f"s = '{EMOJI}' + x", ""]
    # UTF-16 unit 7 is after the emoji (units 5 and 6): Python index 6
    assert str_column(lines, types.Position(line=0, character=7)) == 6
    assert lines[0][:str_column(lines, types.Position(line=0, character=9))] == f"s = '{EMOJI}' "
    assert str_column(lines, types.Position(line=0, character=99)) == len(lines[0])
    assert str_column(lines, types.Position(line=5, character=3)) == 0


def test_a_fixs_changed_lines_become_a_range_of_whole_lines() -> None:
    assert lsp_whole_lines(3, 5) == types.Range(
        start=types.Position(line=3, character=0), end=types.Position(line=5, character=0)
    )


def test_a_line_range_excludes_the_crlf_line_break() -> None:
    assert lsp_line_range("a = 1\r\n  b = 2\r\n", 1) == types.Range(
        start=types.Position(line=1, character=2), end=types.Position(line=1, character=7)
    )


def test_a_quick_fix_on_a_last_line_with_an_emoji_gives_the_fixed_text() -> None:
    for old in (
        f"def f(a, b):\n    return str(a - b) + '{EMOJI}'",
        f"def f(a, b):\n    s = '{EMOJI * 2}'; return str(a - b)",
    ):
        new = old.replace("a - b", "a + b")
        edit = lsp_minimal_edit(old, new)
        last = old.split("\n")[1]
        assert edit.range.end == types.Position(line=1, character=len(last) + last.count(EMOJI))
        assert apply(old, edit) == new  # was `str(a + b)b)`: the range ended two UTF-16 units early


def test_a_quick_fix_before_an_emoji_line_replaces_only_its_own_line() -> None:
    old = f"x = '{EMOJI}'\nif a > 1:\n    pass\ny = '{EMOJI}'\n"
    new = f"x = '{EMOJI}'\nif a >= 1:\n    pass\ny = '{EMOJI}'\n"
    edit = lsp_minimal_edit(old, new)
    assert edit.range == types.Range(
        start=types.Position(line=1, character=0), end=types.Position(line=2, character=0)
    )
    assert apply(old, edit) == new


def test_a_quick_fix_on_a_crlf_document_changes_one_line_and_keeps_crlf() -> None:
    old = "def bulk(q):\r\n    if q > 10:\r\n        return 10.0\r\n    return 0.0\r\n"
    fixed_on_disk = old.replace("q > 10", "q >= 10")
    for new in (fixed_on_disk, fixed_on_disk.replace("\r\n", "\n")):  # the fix as on disk, or as "\n" text
        edit = lsp_minimal_edit(old, new)
        assert edit.range == types.Range(
            start=types.Position(line=1, character=0), end=types.Position(line=2, character=0)
        )
        assert edit.new_text == "    if q >= 10:\r\n"
        assert apply(old, edit) == fixed_on_disk


def test_a_quick_fix_adding_a_last_line_keeps_the_old_last_line() -> None:
    old = "a = 1\r\nb = 2"
    edit = lsp_minimal_edit(old, "a = 1\nb = 2\nc = 3")
    assert apply(old, edit) == "a = 1\r\nb = 2\r\nc = 3"


def failure_at(line: int, indent: int = 4, end: int = 20) -> types.Diagnostic:
    return types.Diagnostic(
        range=types.Range(
            start=types.Position(line=line, character=indent), end=types.Position(line=line, character=end)
        ),
        message="test_x fails",
        code="test-failure",
    )


def insert(line: int, character: int, text: str) -> types.TextDocumentContentChangePartial:
    return replace(line, character, line, character, text)


def replace(
    line: int, character: int, end_line: int, end_character: int, text: str
) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=line, character=character),
            end=types.Position(line=end_line, character=end_character),
        ),
        text=text,
    )


def test_a_hundred_lines_inserted_above_move_the_diagnostic_down_by_a_hundred() -> None:
    (moved,) = lsp_moved_diagnostics([failure_at(100)], [insert(0, 0, "# note\n" * 100)])
    assert moved.range.start == types.Position(line=200, character=4)
    assert moved.range.end == types.Position(line=200, character=20)
    assert moved.message == "test_x fails"


def test_lines_inserted_right_above_the_line_or_removed_above_move_it() -> None:
    assert (
        lsp_moved_diagnostics([failure_at(10)], [insert(10, 0, "x = 1\r\ny = 2\r\n")])[0].range.start.line
        == 12
    )
    assert lsp_moved_diagnostics([failure_at(10)], [replace(2, 0, 5, 0, "")])[0].range.start.line == 7
    assert (
        lsp_moved_diagnostics([failure_at(10)], [replace(3, 4, 3, 9, "longer text")])[0].range.start.line
        == 10
    )


def test_an_edit_of_the_diagnostics_own_line_drops_it() -> None:
    assert lsp_moved_diagnostics([failure_at(10)], [replace(10, 7, 10, 8, ">=")]) == []
    assert lsp_moved_diagnostics([failure_at(10)], [replace(9, 3, 10, 2, "")]) == []
    assert lsp_moved_diagnostics([failure_at(10)], [insert(10, 0, "x")]) == []


def test_edits_below_or_enter_at_the_end_of_the_line_leave_it_where_it_is() -> None:
    original = failure_at(10)
    assert lsp_moved_diagnostics([original], [insert(11, 0, "\n\n")]) == [original]
    assert lsp_moved_diagnostics([original], [insert(10, 20, "\n    ")]) == [original]


def test_changes_apply_in_order_and_a_whole_document_change_drops_everything() -> None:
    changes = [insert(0, 0, "a\n"), insert(0, 0, "b\n"), replace(0, 0, 1, 0, "")]
    assert lsp_moved_diagnostics([failure_at(5)], changes)[0].range.start.line == 6
    assert (
        lsp_moved_diagnostics([failure_at(5)], [types.TextDocumentContentChangeWholeDocument(text="x")]) == []
    )
