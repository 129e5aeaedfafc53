"""Start the real server over stdio with pytest-lsp and VS Code's client capabilities."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsp_helpers import SERVER, begin
from pytest_lsp import ClientServerConfig, LanguageClient


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A client connected to greenpatch serving a fresh copy of the example project (trusted, fake engine)."""
    await begin(lsp_client, tmp_path_factory)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def untrusted_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A client whose workspace is not trusted (VS Code restricted mode)."""
    await begin(lsp_client, tmp_path_factory, {"trusted": False})
    yield
    await lsp_client.shutdown_session()
