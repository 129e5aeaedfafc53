"""The local suggestion log through a real client: the command an inline item carries reports its acceptance, the
next request in the document passes an unaccepted one over (the fake engine; the server's user cache is private)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from greenpatch.completion import feedback
from lsp_helpers import begin, edit, open_file
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_completion import inline

CACHE = tempfile.mkdtemp(prefix="greenpatch-feedback-e2e-")  # the server's XDG_CACHE_HOME: never the user's
atexit.register(shutil.rmtree, CACHE, True)
SERVER = [sys.executable, "-m", "greenpatch", "serve"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env={**os.environ, "XDG_CACHE_HOME": CACHE}))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    await begin(lsp_client, tmp_path_factory, {"completions": {"record": True}})
    yield
    await lsp_client.shutdown_session()


def records(client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> list[feedback.Record]:
    monkeypatch.setenv("XDG_CACHE_HOME", CACHE)
    return feedback.read_records([feedback.log_path(client.root)])  # type: ignore[attr-defined]


def scratch(client: LanguageClient) -> str:
    path: Path = client.root / "shop" / "scratch.py"  # type: ignore[attr-defined]
    path.write_text("def add(a, b):\n    return a +\n")
    return open_file(client, path)


@pytest.mark.asyncio
async def test_the_server_offers_the_command_that_reports_an_accepted_suggestion(client: LanguageClient) -> None:
    provider = client.init_result.capabilities.execute_command_provider  # type: ignore[attr-defined]
    assert provider is not None and "greenpatch.accepted" in provider.commands


@pytest.mark.asyncio
async def test_running_the_command_an_item_carries_records_it_as_accepted(
        client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = scratch(client)
    [item] = await inline(client, uri, 1, len("    return a +"))
    assert item.command is not None and item.command.command == "greenpatch.accepted"
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments))
    [record] = records(client, monkeypatch)
    assert (record.id, record.outcome, record.chars, record.kind, record.model) == (
        item.command.arguments[0], "accepted", len(" b"), "line", "fake")


@pytest.mark.asyncio
async def test_a_suggestion_typed_past_is_recorded_as_passed_over(
        client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = scratch(client)
    [item] = await inline(client, uri, 1, len("    return a +"))
    edit(client, uri, 2, 1, len("    return a +"), len("    return a +"), " c")  # not what was suggested
    await inline(client, uri, 1, len("    return a + c"))
    [record] = records(client, monkeypatch)
    assert record.id == item.command.arguments[0] and record.outcome == "passed"  # type: ignore[union-attr,index]


@pytest.mark.asyncio
async def test_a_client_reporting_a_partial_accept_records_the_characters_taken(
        client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = scratch(client)
    [item] = await inline(client, uri, 1, len("    return a +"))
    assert item.command is not None and item.command.arguments
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=[item.command.arguments[0], 1]))
    [record] = records(client, monkeypatch)
    assert (record.outcome, record.accepted_chars) == ("partial", 1)


@pytest.mark.asyncio
async def test_the_statistics_command_summarizes_the_workspace_for_the_editor(
        client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = scratch(client)
    [item] = await inline(client, uri, 1, len("    return a +"))
    assert item.command is not None
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments))
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="greenpatch.suggestionStats"))
    assert "1 shown, 1 with an outcome" in result["text"] and result["data"]["overall"]["accepted"] == 1
