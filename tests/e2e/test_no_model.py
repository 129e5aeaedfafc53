"""A first start with no model installed: syntax features and verified mutation fixes keep working, and the user
is told once how to install the model."""

from __future__ import annotations

import os
import tempfile

import pytest
import pytest_lsp
from lsp_helpers import SERVER, begin, open_file
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

EMPTY_MODELS = tempfile.mkdtemp(prefix="greenpatch-no-models-")


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER, server_env={**os.environ, "GREENPATCH_MODELS_DIR": EMPTY_MODELS}
))
async def bare_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    await begin(lsp_client, tmp_path_factory, {"model": {"completion": "default", "repair": "default"}})
    yield
    await lsp_client.shutdown_session()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_without_a_model_the_user_is_told_how_to_install_and_repair_still_works(
    bare_client: LanguageClient,
) -> None:
    client = bare_client
    uri = open_file(client, client.root / "shop" / "pricing.py")  # type: ignore[attr-defined]
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=25, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )
    assert not result or not getattr(result, "items", result)
    message = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.WINDOW_SHOW_MESSAGE, lambda p: "greenpatch model install default" in p.message
    )
    assert message.type in (types.MessageType.Warning, types.MessageType.Error)
    status = await client.notes.wait_for(  # type: ignore[attr-defined]
        "greenpatch/status", lambda p: p.state == "noModel"  # the editor offers to install a model
    )
    assert "greenpatch model install default" in status.message

    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    params = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lambda p: p.uri == uri and any(d.code == "test-failure" for d in p.diagnostics),
        timeout=180,
    )
    assert any("verified fix available" in d.message for d in params.diagnostics)
