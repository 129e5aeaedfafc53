"""Work ahead through the real server over stdio: the cursor notification and didOpen prepare a place, a request
preempts the preparation (the fake engine's preparation lasts 30 s unless cancelled)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import SERVER, begin, open_file
from pytest_lsp import ClientServerConfig, LanguageClient
from test_completion import inline, scratch

SLOW = {**os.environ, "GREENPATCH_FAKE_PREPARE_SECONDS": "30"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=SLOW))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    await begin(lsp_client, tmp_path_factory)
    yield
    await lsp_client.shutdown_session()


def _field(params: Any, name: str) -> Any:
    return params.get(name) if isinstance(params, dict) else getattr(params, name, None)


def _preparing(uri: str, line: int, busy: bool) -> Any:
    return lambda p: (_field(p, "uri") == uri and _field(_field(p, "position"), "line") == line
                      and _field(p, "preparing") is busy)


@pytest.mark.asyncio
async def test_a_resting_cursor_is_prepared_and_a_request_there_preempts_it(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def add(a, b):\n    return a +\n")
    client.protocol.notify("greenpatch/cursor", {"uri": uri, "version": 1,
                                                 "position": {"line": 1, "character": len("    return a +")}})
    await client.notes.wait_for("greenpatch/preparing", _preparing(uri, 1, True))  # type: ignore[attr-defined]
    started = time.monotonic()
    items = await inline(client, uri, 1, len("    return a +"))
    assert [item.insert_text for item in items] == [" b"]
    assert time.monotonic() - started < 15, "the request did not wait for the 30 s preparation"
    await client.notes.wait_for("greenpatch/preparing", _preparing(uri, 1, False))  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_file_opened_once_completions_are_in_use_is_prepared_at_its_end(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def add(a, b):\n    return a +\n")
    await inline(client, uri, 1, len("    return a +"))
    path = client.root / "shop" / "other.py"  # type: ignore[attr-defined]
    path.write_text("import os\n\n\ndef home():\n    return os\n\n")
    other = open_file(client, path)
    await client.notes.wait_for("greenpatch/preparing", _preparing(other, 4, True))  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_malformed_cursor_notification_is_ignored(client: LanguageClient) -> None:
    uri, _ = scratch(client, "def add(a, b):\n    return a +\n")
    client.protocol.notify("greenpatch/cursor", {"uri": uri, "position": {"line": -1}})
    items = await inline(client, uri, 1, len("    return a +"))
    assert [item.insert_text for item in items] == [" b"], "the server still answers"
