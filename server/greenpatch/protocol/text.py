"""Document sync, syntax-error diagnostics (debounced per document), documentSymbol and workspace/symbol."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types

from greenpatch.protocol import completion as completion_feature
from greenpatch.protocol import repair as repair_feature
from greenpatch.protocol.convert import (
    lsp_document_symbols,
    lsp_syntax_diagnostics,
    lsp_workspace_symbol,
    uri_to_path,
    utf8_lines,
)
from greenpatch.workspace import syntax
from greenpatch.workspace.documents import Document

if TYPE_CHECKING:
    from greenpatch.protocol.server import GreenpatchServer

SYNTAX_DEBOUNCE_S = 0.25


def _publish_syntax(ls: GreenpatchServer, document: Document) -> None:
    ls.publish(document.uri, "syntax", lsp_syntax_diagnostics(document.text, syntax.syntax_problems(document.tree)))


def _schedule_syntax(ls: GreenpatchServer, document: Document) -> None:
    previous = ls.debounce.pop(document.uri, None)
    if previous is not None:
        previous.cancel()

    async def later() -> None:
        await asyncio.sleep(SYNTAX_DEBOUNCE_S)
        current = ls.documents.get(document.uri)
        if current is document:
            _publish_syntax(ls, document)

    ls.debounce[document.uri] = asyncio.ensure_future(later())


def _reindex(ls: GreenpatchServer, document: Document) -> None:
    if ls.index is not None and document.path is not None and ls.root is not None:
        try:
            document.path.relative_to(ls.root)
        except ValueError:
            return
        ls.index.update_file(document.path, document.text)


def _line_col(text: str, index: int | None) -> tuple[int, int] | None:
    if index is None:
        return None
    return text.count("\n", 0, index), index - (text.rfind("\n", 0, index) + 1)


def register(server: GreenpatchServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GreenpatchServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        document = Document(item.uri, uri_to_path(item.uri), item.text, item.version)
        ls.documents[item.uri] = document
        _publish_syntax(ls, document)
        _reindex(ls, document)
        completion_feature.on_opened(ls, document)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GreenpatchServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = ls.documents.get(uri)
        if document is None:
            return
        edited: int | None = None  # where the last change ends in the new text: the cursor, most likely
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                at = document.offset(start.line, start.character)
                document.apply_change((start.line, start.character), (end.line, end.character), change.text)
                edited = at + len(change.text)
            else:
                document.apply_change(None, None, change.text)
                edited = None
        document.version = params.text_document.version
        completion_feature.on_changed(ls, document, _line_col(document.text, edited))
        repair_feature.on_changed(ls, document, params.content_changes)
        _schedule_syntax(ls, document)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: GreenpatchServer, params: types.DidSaveTextDocumentParams) -> None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return
        _reindex(ls, document)
        repair_feature.on_saved(ls, document)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GreenpatchServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = ls.documents.pop(uri, None)
        task = ls.debounce.pop(uri, None)
        if task is not None:
            task.cancel()
        repair_feature.on_closed(ls, uri)
        completion_feature.on_closed(ls, uri)
        ls.diagnostics.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        if document is not None and document.path is not None and ls.index is not None:
            ls.index.update_file(document.path)  # back to what is on disk

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: GreenpatchServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol] | None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return None
        return lsp_document_symbols(utf8_lines(document.text), syntax.definitions(document.tree))

    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: GreenpatchServer, params: types.WorkspaceSymbolParams
    ) -> list[types.WorkspaceSymbol]:
        if ls.index is None:
            return []
        if ls.index_ready is not None:
            await asyncio.shield(ls.index_ready)  # answer from the whole workspace, not a half-built index
        found = []
        for symbol in ls.index.search(params.query):
            entry = ls.index.entry(symbol.path)
            lines = [line.encode("utf-8") for line in entry.lines] if entry else []
            found.append(lsp_workspace_symbol(symbol, lines))
        return found
