"""Start the real server over stdio with pytest-lsp and VS Code's client capabilities."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

DATA = Path(__file__).parents[1] / "data"
SERVER = [sys.executable, "-m", "greenpatch", "serve"]


class Notifications:
    """Every notification the client received, so a test can await one that matches without racing the
    stream (waiting for "the next one" misses notifications that arrive back to back)."""

    def __init__(self, client: LanguageClient) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        original = client.protocol._handle_notification

        def record(method: str, params: Any) -> None:
            self.seen.append((method, params))
            self._changed.set()
            if method.startswith("greenpatch/"):
                return  # custom notifications have no client handler; recorded is enough
            original(method, params)

        client.protocol._handle_notification = record  # type: ignore[method-assign]

    async def wait_for(self, method: str, match: Callable[[Any], bool] = lambda _: True, timeout: float = 20) -> Any:
        start = 0
        async with asyncio.timeout(timeout):
            while True:
                for index in range(start, len(self.seen)):
                    name, params = self.seen[index]
                    if name == method and match(params):
                        return params
                start = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

    async def diagnostics(self, uri: str, version: int, timeout: float = 20) -> list[types.Diagnostic]:
        params = await self.wait_for(
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lambda p: p.uri == uri and p.version == version, timeout
        )
        return list(params.diagnostics)


def workspace_copy(tmp_path_factory: pytest.TempPathFactory, name: str = "example") -> Path:
    target = tmp_path_factory.mktemp("ws") / name
    shutil.copytree(DATA / name, target, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    return target


async def start(client: LanguageClient, root: Path, options: dict[str, Any] | None = None) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual_studio_code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={"model": {"completion": "fake", "repair": "fake"}, **(options or {})},
        )
    )


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
