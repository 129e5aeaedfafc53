"""Conversions between LSP types and greenpatch's domain objects. Small pure `lsp_*` functions, no logic."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from greenpatch.workspace.documents import byte_to_utf16_col
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
