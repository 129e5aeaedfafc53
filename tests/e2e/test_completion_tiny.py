"""Inline completions through the real server over stdio with the real llama.cpp engine and the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import SERVER, begin, edit, open_file
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_completion import inline

pytestmark = pytest.mark.model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def tiny_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
                      tiny_model_path: Path):
    await begin(lsp_client, tmp_path_factory, {
        "model": {"completion": str(tiny_model_path), "repair": "fake"},
        # the tiny model is unsure of most things: shown, and whole
        "completions": {"debounceMs": 0, "gateThreshold": -5, "cutLogprob": -99},
    })
    yield
    await lsp_client.shutdown_session()


def scratch(client: LanguageClient, text: str) -> str:
    path = client.root / "shop" / "scratch.py"  # type: ignore[attr-defined]
    path.write_text(text)
    return open_file(client, path)


@pytest.mark.asyncio
async def test_a_half_typed_word_gets_the_rest_of_it_from_the_real_model(tiny_client: LanguageClient) -> None:
    uri = scratch(tiny_client, "def add(a, b):\n    retu\n")
    items = await inline(tiny_client, uri, 1, len("    retu"))
    assert items, "the tiny model completes a trivial function"
    text = items[0].insert_text
    assert isinstance(text, str) and text.startswith("rn "), text
    assert items[0].range.start == types.Position(line=1, character=len("    retu"))

    edit(tiny_client, uri, 2, 1, len("    retu"), len("    retu"), "rn")
    rest = await inline(tiny_client, uri, 1, len("    return"))
    assert [i.insert_text for i in rest] == [text[len("rn"):]], "typing along it keeps offering the rest"
