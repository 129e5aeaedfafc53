"""On-save repair through the real server: the fake engine plus real pytest in the sandbox on the example project."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lsp_helpers import diagnostics_for, edit, open_file
from lsprotocol import types
from pytest_lsp import LanguageClient


def save(client: LanguageClient, uri: str) -> None:
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


def checksum(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


async def quick_fixes(client: LanguageClient, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix]),
        )
    )
    return [a for a in actions or [] if isinstance(a, types.CodeAction)]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_saving_a_buggy_file_offers_a_verified_quick_fix_for_that_version(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    before = checksum(root)
    uri = open_file(client, root / "shop" / "pricing.py")
    save(client, uri)
    params = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lambda p: p.uri == uri and any(d.code == "test-failure" for d in p.diagnostics),
        timeout=180,
    )
    failure = next(d for d in params.diagnostics if d.code == "test-failure")
    assert "test_bulk_discount_starts_at_ten fails" in failure.message
    assert "verified fix available" in failure.message
    assert failure.range.start.line == 25  # `if quantity > 10:`

    actions = await quick_fixes(client, uri, failure)
    assert actions and actions[0].is_preferred
    change = actions[0].edit.document_changes[0]
    assert change.text_document.version == 1
    (text_edit,) = change.edits
    assert text_edit.range.start.line == 25 and "quantity >= 10" in text_edit.new_text
    assert checksum(root) == before, "verification must never write to the workspace"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_an_edit_during_repair_drops_the_stale_result(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    uri = open_file(client, root / "shop" / "pricing.py")
    save(client, uri)
    notes = client.notes  # type: ignore[attr-defined]
    # the same work as the tests above waits for (the baseline, then candidates, in the sandbox): the same 180 s
    verifying = await notes.wait_for("greenpatch/status", lambda p: p.state == "verifying", timeout=180)
    edit(client, uri, 2, 0, 0, 0, "# edited while greenpatch was testing\n")
    # the "ready" that ends this repair, not the one sent at start-up (matching that one ended the wait at once)
    since = [p for _, p in notes.seen].index(verifying)
    await notes.wait_for("greenpatch/status", lambda p: p.state == "ready", timeout=180, after=since)
    seen = notes.seen
    failures = [
        p for m, p in seen
        if m == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS and any(d.code == "test-failure" for d in p.diagnostics)
    ]
    assert failures == []
    symbols = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=26, character=0), end=types.Position(line=26, character=5)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not symbols


@pytest.mark.asyncio
async def test_an_untrusted_workspace_runs_no_tests_on_save(untrusted_client: LanguageClient) -> None:
    client = untrusted_client
    root = client.root  # type: ignore[attr-defined]
    uri = open_file(client, root / "shop" / "pricing.py")
    save(client, uri)
    message = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.WINDOW_SHOW_MESSAGE, lambda p: "not trusted" in p.message
    )
    assert "runs none of its code" in message.message
    assert not [p for m, p in client.notes.seen if m == "greenpatch/status" and p.state == "verifying"]  # type: ignore[attr-defined]
    assert not (root / ".pytest_cache").exists() and not (root / ".coverage").exists()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_repair_file_command_starts_a_repair_on_request(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    uri = open_file(client, root / "shop" / "pricing.py")
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="greenpatch.repairFile", arguments=[uri])
    )
    params = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lambda p: p.uri == uri and any(d.code == "test-failure" for d in p.diagnostics),
        timeout=180,
    )
    assert any("verified fix available" in d.message for d in params.diagnostics)


async def failure_diagnostic(client: LanguageClient, uri: str) -> types.Diagnostic:
    params = await client.notes.wait_for(  # type: ignore[attr-defined]
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lambda p: p.uri == uri and any(d.code == "test-failure" for d in p.diagnostics),
        timeout=180,
    )
    return next(d for d in params.diagnostics if d.code == "test-failure")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_lines_inserted_above_move_the_test_diagnostic_of_the_new_version(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    uri = open_file(client, root / "shop" / "pricing.py")
    save(client, uri)
    assert (await failure_diagnostic(client, uri)).range.start.line == 25
    edit(client, uri, 2, 0, 0, 0, "# a note\n" * 100)
    diagnostics = await diagnostics_for(client, uri, 2)
    moved = [d for d in diagnostics if d.code == "test-failure"]  # one per failing test, all on that line
    assert moved and all(d.range.start.line == d.range.end.line == 125 for d in moved)
    edit(client, uri, 3, 125, 16, 17, ">=")  # the failing line itself changes: what it said no longer holds
    assert [d for d in await diagnostics_for(client, uri, 3) if d.code == "test-failure"] == []


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_quick_fix_on_a_crlf_file_replaces_one_line_and_keeps_crlf(client: LanguageClient) -> None:
    root = client.root  # type: ignore[attr-defined]
    path = root / "shop" / "pricing.py"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    uri = open_file(client, path, text=path.read_bytes().decode())
    save(client, uri)
    failure = await failure_diagnostic(client, uri)
    assert failure.range.start.line == 25 and failure.range.end.character == len("    if quantity > 10:")
    (text_edit,) = (await quick_fixes(client, uri, failure))[0].edit.document_changes[0].edits
    assert (text_edit.range.start.line, text_edit.range.end.line) == (25, 26)
    assert text_edit.new_text == "    if quantity >= 10:\r\n"
