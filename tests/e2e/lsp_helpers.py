"""Small helpers the e2e tests share: open, edit and await what the server publishes."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient


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
