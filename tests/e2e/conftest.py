"""Start the real server over stdio with pytest-lsp and VS Code's client capabilities."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsp_helpers import SERVER, Notifications, start, workspace_copy
from pytest_lsp import ClientServerConfig, LanguageClient


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A client connected to greenpatch serving a fresh copy of the example project (trusted, fake engine)."""
    root = workspace_copy(tmp_path_factory)
    lsp_client.root = root  # type: ignore[attr-defined]
    lsp_client.notes = Notifications(lsp_client)  # type: ignore[attr-defined]
    lsp_client.init_result = await start(lsp_client, root)  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def untrusted_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A client whose workspace is not trusted (VS Code restricted mode)."""
    root = workspace_copy(tmp_path_factory)
    lsp_client.root = root  # type: ignore[attr-defined]
    lsp_client.notes = Notifications(lsp_client)  # type: ignore[attr-defined]
    lsp_client.init_result = await start(lsp_client, root, {"trusted": False})  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()
