"""Small helpers the e2e tests share: open, edit and await what the server publishes."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities


def open_file(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


def edit(client: LanguageClient, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=start), end=types.Position(line=line, character=end)
                    ),
                    text=text,
                )
            ],
        )
    )


async def diagnostics_for(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    return await client.notes.diagnostics(uri, version)  # type: ignore[attr-defined,no-any-return]


async def reindexed(client: LanguageClient, name: str) -> None:
    await client.notes.wait_for(  # type: ignore[attr-defined]
        "greenpatch/indexUpdated", lambda update: any(f.endswith(name) for f in update.files)
    )


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

    async def wait_for(
        self, method: str, match: Callable[[Any], bool] = lambda _: True, timeout: float = 20, after: int = 0
    ) -> Any:
        """The first matching notification from the `after`th one received on (an index into `seen`)."""

        async def first_match() -> Any:
            start = after
            while True:
                for index in range(start, len(self.seen)):
                    name, params = self.seen[index]
                    if name == method and match(params):
                        return params
                start = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first_match(), timeout)  # asyncio.timeout needs Python 3.11

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
    options = dict(options or {})
    # the suggestion log lives in the user cache: tests keep out of it unless they say otherwise
    options["completions"] = {"record": False, **options.get("completions", {})}
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual_studio_code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={"model": {"completion": "fake", "repair": "fake"}, **options},
        )
    )


async def begin(
    client: LanguageClient, tmp_path_factory: pytest.TempPathFactory, options: dict[str, Any] | None = None
) -> None:
    """Initialize `client` on a fresh copy of the example project; record notifications on `client.notes`."""
    root = workspace_copy(tmp_path_factory)
    client.root = root  # type: ignore[attr-defined]
    client.notes = Notifications(client)  # type: ignore[attr-defined]
    client.init_result = await start(client, root, options)  # type: ignore[attr-defined]
