"""The real server over stdio: syntax diagnostics, symbols and the index kept fresh from disk."""

from __future__ import annotations

import pytest
from lsp_helpers import diagnostics_for, edit, open_file, reindexed
from lsprotocol import types
from pytest_lsp import LanguageClient


@pytest.mark.asyncio
async def test_a_syntax_error_appears_and_clears_when_fixed(client: LanguageClient) -> None:
    path = client.root / "shop" / "inventory.py"  # type: ignore[attr-defined]
    uri = open_file(client, path)
    assert await diagnostics_for(client, uri, 1) == []

    # "def add(self, name: str, count: int) -> None:" on line 9 (0-based): delete the closing parenthesis
    line = path.read_text().split("\n")[9]
    col = line.index(") ->")
    edit(client, uri, 2, 9, col, col + 1, "")
    broken = await diagnostics_for(client, uri, 2)
    assert broken and broken[0].source == "greenpatch" and "syntax error" in broken[0].message
    assert broken[0].range.start.line == 9

    edit(client, uri, 3, 9, col, col, ")")
    assert await diagnostics_for(client, uri, 3) == []


@pytest.mark.asyncio
async def test_workspace_symbol_finds_a_function_in_a_file_never_opened(client: LanguageClient) -> None:
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="bulk_disc"))
    assert found
    first = found[0]
    assert first.name == "bulk_discount"
    assert first.location.uri.endswith("shop/pricing.py")
    assert first.location.range.start.line == 21


@pytest.mark.asyncio
async def test_document_symbols_nest_methods_inside_their_class(client: LanguageClient) -> None:
    uri = open_file(client, client.root / "shop" / "inventory.py")  # type: ignore[attr-defined]
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert [s.name for s in symbols] == ["Inventory"]
    assert [c.name for c in symbols[0].children] == ["__init__", "add", "take", "count"]
    assert symbols[0].children[1].kind == types.SymbolKind.Method


@pytest.mark.asyncio
async def test_a_file_written_outside_the_editor_is_reindexed(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="restock_all")) == []
    (root / "shop" / "restock.py").write_text("def restock_all(inventory):\n    return inventory\n")
    await reindexed(client, "restock.py")
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="restock_all"))
    assert [s.location.uri for s in found] == [(root / "shop" / "restock.py").as_uri()]


@pytest.mark.asyncio
async def test_binary_and_non_utf8_files_do_not_break_indexing(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    (root / "shop" / "blob.py").write_bytes(b"\x00\x01\x02def hidden(): pass\n")
    (root / "shop" / "latin.py").write_bytes("def caf\xe9(): pass\n".encode("latin-1"))
    (root / "shop" / "later.py").write_text("def written_after_the_bad_ones():\n    pass\n")
    await reindexed(client, "later.py")
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="written_after"))
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="hidden")) == []
    # the server is still answering requests about the rest of the workspace
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="order_total"))


@pytest.mark.asyncio
async def test_a_definition_without_a_name_is_never_published_as_a_symbol(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    broken = root / "shop" / "broken.py"
    broken.write_text('total = 1\n= " unterminated\n')  # tree-sitter recovers an assignment with an empty target
    await reindexed(client, "broken.py")
    uri = open_file(client, broken)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert [s.name for s in symbols] == ["total"] and not symbols[0].children
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query=""))
    assert found and all(s.name for s in found)
