"""Inline completions through the real server over stdio (the fake engine: deterministic and instant)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsp_helpers import edit, open_file
from lsprotocol import types
from pytest_lsp import LanguageClient


async def inline(client: LanguageClient, uri: str, line: int, character: int) -> list[types.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    )
    return list(result.items) if isinstance(result, types.InlineCompletionList) else list(result or [])


def scratch(client: LanguageClient, text: str) -> tuple[str, Path]:
    path = client.root / "shop" / "scratch.py"  # type: ignore[attr-defined]
    path.write_text(text)
    return open_file(client, path), path


@pytest.mark.asyncio
async def test_the_server_advertises_inline_completions(client: LanguageClient) -> None:
    assert client.init_result.capabilities.inline_completion_provider  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_an_inline_completion_continues_the_line_at_the_cursor(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def add(a, b):\n    return a +\n")
    items = await inline(client, uri, 1, len("    return a +"))
    assert [item.insert_text for item in items] == [" b"]
    assert items[0].range.start == types.Position(line=1, character=len("    return a +"))


@pytest.mark.asyncio
async def test_typing_the_start_of_a_suggestion_keeps_offering_the_rest(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def greet():\n    print(\n")
    first = await inline(client, uri, 1, len("    print("))
    assert [i.insert_text for i in first] == ['"hello")']
    edit(client, uri, 2, 1, len("    print("), len("    print("), '"he')
    rest = await inline(client, uri, 1, len('    print("he'))
    assert [i.insert_text for i in rest] == ['llo")']


@pytest.mark.asyncio
async def test_a_request_overtaken_by_an_edit_returns_nothing(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def add(a, b):\n    return a +\n")
    pending = asyncio.ensure_future(client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=len("    return a +")),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    ))
    await asyncio.sleep(0)  # let the task send the request before the edit goes out (ordering, not timing)
    edit(client, uri, 2, 1, len("    return a +"), len("    return a +"), " ")  # the user kept typing
    result = await pending
    assert result is None or list(result.items if isinstance(result, types.InlineCompletionList) else result) == []
