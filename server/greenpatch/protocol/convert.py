"""Conversions between LSP types and greenpatch's domain objects. Small pure `lsp_*` functions, no logic."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from greenpatch.errors import ErrorKind, GreenpatchError
from greenpatch.workspace.documents import byte_to_utf16_col, str_to_utf16_col, utf16_to_str_col
from greenpatch.workspace.files import differing_span, split_lines, with_endings
from greenpatch.workspace.index import Symbol
from greenpatch.workspace.syntax import Definition, SyntaxProblem

SOURCE = "greenpatch"

_SYMBOL_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "constant": types.SymbolKind.Constant,
}


def uri_to_path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


def path_to_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def lsp_status_state(error: GreenpatchError) -> str:
    """The state a `greenpatch/status` notification gives for `error`: "noModel" makes the client offer to
    install a model."""
    return "noModel" if error.kind is ErrorKind.NOT_INSTALLED else "error"


def utf8_lines(text: str) -> list[bytes]:
    """The text's lines as tree-sitter counts them (rows end at b"\n", columns count bytes)."""
    return text.encode("utf-8").split(b"\n")


def str_column(lines: Sequence[str], position: types.Position) -> int:
    """The Python string index on its line of an LSP position (UTF-16 units); past the last line, 0."""
    line_text = lines[position.line] if position.line < len(lines) else ""
    return utf16_to_str_col(line_text, position.character)


def lsp_position(lines: Sequence[str], line: int, col: int) -> types.Position:
    """The LSP position (UTF-16 units) of a Python string index `col` on `line`; past the last line, col as is."""
    line_text = lines[line] if 0 <= line < len(lines) else ""
    return types.Position(line=line, character=str_to_utf16_col(line_text, col) if line_text else col)


def _col(lines: list[bytes], line: int, byte_col: int) -> int:
    return byte_to_utf16_col(lines[line], byte_col) if 0 <= line < len(lines) else byte_col


def lsp_range(lines: list[bytes], line: int, col: int, end_line: int, end_col: int) -> types.Range:
    return types.Range(
        start=types.Position(line=line, character=_col(lines, line, col)),
        end=types.Position(line=end_line, character=_col(lines, end_line, end_col)),
    )


def lsp_syntax_diagnostic(lines: list[bytes], problem: SyntaxProblem) -> types.Diagnostic:
    return types.Diagnostic(
        range=lsp_range(lines, problem.line, problem.col, problem.end_line, problem.end_col),
        message=problem.message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        code="syntax",
    )


def lsp_syntax_diagnostics(text: str, problems: Sequence[SyntaxProblem]) -> list[types.Diagnostic]:
    lines = utf8_lines(text)
    return [lsp_syntax_diagnostic(lines, problem) for problem in problems]


def lsp_symbol_kind(kind: str) -> types.SymbolKind:
    return _SYMBOL_KINDS.get(kind, types.SymbolKind.Variable)


def lsp_document_symbols(lines: list[bytes], definitions: list[Definition]) -> list[types.DocumentSymbol]:
    """Definitions as a tree: methods nest inside their class."""
    result: list[types.DocumentSymbol] = []
    stack: list[tuple[Definition, types.DocumentSymbol]] = []
    for d in definitions:
        end_len = len(lines[d.end_line]) if d.end_line < len(lines) else 0
        symbol = types.DocumentSymbol(
            name=d.name,
            kind=lsp_symbol_kind(d.kind),
            range=lsp_range(lines, d.start_line, 0, d.end_line, end_len),
            selection_range=lsp_range(lines, d.name_line, d.name_col, d.name_line, d.name_col + len(d.name.encode())),
            children=[],
        )
        while stack and stack[-1][0].end_line < d.start_line:
            stack.pop()
        if stack:
            stack[-1][1].children.append(symbol)  # type: ignore[union-attr]
        else:
            result.append(symbol)
        stack.append((d, symbol))
    return result


def lsp_workspace_symbol(symbol: Symbol, lines: list[bytes]) -> types.WorkspaceSymbol:
    return types.WorkspaceSymbol(
        name=symbol.name,
        kind=lsp_symbol_kind(symbol.kind),
        container_name=symbol.container or None,
        location=types.Location(
            uri=path_to_uri(symbol.path),
            range=lsp_range(
                lines, symbol.name_line, symbol.name_col, symbol.name_line, symbol.name_col + len(symbol.name.encode())
            ),
        ),
    )


# --- repair: test-failure diagnostics and quick-fix edits. Columns are UTF-16 code units, as LSP counts them; lines
# end at "\r\n", "\r" or "\n", as LSP splits them.


def _utf16_len(text: str) -> int:
    return str_to_utf16_col(text, len(text))


def lsp_line_range(text: str, line: int) -> types.Range:
    """The code of 0-based `line` (clamped to the text): from its indentation to its end, line break excluded."""
    lines = split_lines(text)
    line = max(0, min(line, len(lines) - 1))
    content = lines[line][0]
    indent = len(content) - len(content.lstrip())
    return types.Range(
        start=types.Position(line=line, character=str_to_utf16_col(content, indent)),
        end=types.Position(line=line, character=_utf16_len(content)),
    )


def lsp_whole_lines(first: int, last: int) -> types.Range:
    """Lines `first` to `last` (0-based) as a range from the start of one to the start of the other."""
    return types.Range(start=types.Position(line=first, character=0), end=types.Position(line=last, character=0))


def lsp_test_failure(text: str, line: int, message: str, version: int) -> types.Diagnostic:
    return types.Diagnostic(
        range=lsp_line_range(text, line),
        message=message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        code="test-failure",
        data={"version": version},
    )


def lsp_minimal_edit(old: str, new: str) -> types.TextEdit:
    """One TextEdit turning the document text `old` into `new`, replacing only the lines that differ. `new` may
    have other line breaks than the editor's text (a fix is made from the file on disk): the lines they share are
    left alone, and the new lines take the document's own line ending, so a CRLF file stays CRLF."""
    old_lines = split_lines(old)
    new_lines = split_lines(with_endings(old, new))
    start, end_old, end_new = differing_span(old_lines, new_lines)
    replacement = "".join(content + ending for content, ending in new_lines[start:end_new])
    last = len(old_lines) - 1
    if end_old <= last:
        end = types.Position(line=end_old, character=0)
    else:  # the change reaches the end of the text: the range ends after its last character
        end = types.Position(line=last, character=_utf16_len(old_lines[last][0]))
    start_pos = types.Position(line=start, character=0) if start <= last else end  # start > last: no change
    return types.TextEdit(range=types.Range(start=start_pos, end=end), new_text=replacement)


def _intact_at(diagnostic: types.Diagnostic, change: types.TextDocumentContentChangePartial) -> int | None:
    """The diagnostic's first line after `change`, or None when the change touches its lines."""
    start, end, text = change.range.start, change.range.end, change.text
    first, last = diagnostic.range.start.line, diagnostic.range.end.line
    breaks = len(split_lines(text)) - 1
    if end.line < first:  # wholly above
        return first + breaks - (end.line - start.line)
    whole_lines = text.endswith(("\n", "\r")) or (not text and start.character == 0)
    if end.line == first and end.character == 0 and whole_lines:
        return start.line + breaks  # whole lines inserted or removed right above: the line itself is intact
    if start.line > last:
        return first
    if start.line == last and start.character >= diagnostic.range.end.character and text.startswith(("\n", "\r")):
        return first  # a line break typed after the code (Enter at its end)
    return None


def lsp_moved_diagnostics(
    diagnostics: Sequence[types.Diagnostic], changes: Sequence[types.TextDocumentContentChangeEvent]
) -> list[types.Diagnostic]:
    """`diagnostics` moved with the text through `changes` (LSP didChange content changes, applied in order):
    lines inserted or removed above move them; an edit of their own lines drops them, since what they said
    was about the code before that edit. A whole-document change drops them all."""
    moved = list(diagnostics)
    for change in changes:
        if not isinstance(change, types.TextDocumentContentChangePartial):
            return []
        kept = []
        for diagnostic in moved:
            line = _intact_at(diagnostic, change)
            if line is None:
                continue
            if line != diagnostic.range.start.line:
                delta = line - diagnostic.range.start.line
                diagnostic = copy.copy(diagnostic)
                diagnostic.range = types.Range(
                    start=types.Position(line=line, character=diagnostic.range.start.character),
                    end=types.Position(
                        line=diagnostic.range.end.line + delta, character=diagnostic.range.end.character
                    ),
                )
            kept.append(diagnostic)
        moved = kept
    return moved
