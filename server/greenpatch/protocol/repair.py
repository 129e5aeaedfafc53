"""On-save repair: run the affected tests in the sandbox, repair what fails, publish diagnostics, and offer the
verified fixes as quick-fix code actions for the exact document version they were computed against."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from greenpatch.cancel import CancelToken
from greenpatch.errors import Cancelled, GreenpatchError, UntrustedWorkspace
from greenpatch.protocol.convert import (
    lsp_minimal_edit,
    lsp_moved_diagnostics,
    lsp_test_failure,
    lsp_whole_lines,
    path_to_uri,
)
from greenpatch.protocol.engines import engine_worker
from greenpatch.protocol.services import RepairState
from greenpatch.workspace.documents import Document

if TYPE_CHECKING:
    from greenpatch.protocol.server import GreenpatchServer
    from greenpatch.repair.types import RepairReport
    from greenpatch.verify.verifier import Verifier

log = logging.getLogger(__name__)

REPAIR_COMMAND = "greenpatch.repairFile"


def _states(ls: GreenpatchServer) -> dict[str, RepairState]:
    return ls.services.repairs  # shutdown cancels them before the engines close (Services.close)


def _verifier(ls: GreenpatchServer) -> Verifier:
    verifier = ls.services.verifier
    if verifier is None:
        from greenpatch.verify import Verifier

        assert ls.root is not None
        s = ls.settings
        verifier = Verifier(
            ls.root, python=s.python, timeout=s.verify.run_timeout, memory_mb=s.verify.memory_mb,
            parallel=s.verify.parallel, trusted=s.trusted, test_timeout=s.verify.test_timeout,
        )
        ls.services.verifier = verifier
    return verifier


def on_settings(ls: GreenpatchServer) -> None:
    verifier, ls.services.verifier = ls.services.verifier, None  # rebuilt with the new settings on next use
    if verifier is not None:
        verifier.close()


def on_changed(
    ls: GreenpatchServer, document: Document, changes: Sequence[types.TextDocumentContentChangeEvent] = ()
) -> None:
    """A new edit makes a running repair's result stale: stop it. The last result's diagnostics move with the
    text (dropped where their own line changed); the next publish for this document carries them."""
    state = _states(ls).get(document.uri)
    if state is None:
        return
    if state.cancel is not None:
        state.cancel.cancel()
    if state.diagnostics:
        state.diagnostics = lsp_moved_diagnostics(state.diagnostics, changes)
        # Stored without publishing: the syntax check publishes every kind for the new version right after.
        ls.diagnostics.setdefault(document.uri, {})["tests"] = state.diagnostics


def on_closed(ls: GreenpatchServer, uri: str) -> None:
    state = _states(ls).pop(uri, None)
    if state is not None and state.cancel is not None:
        state.cancel.cancel()


def on_saved(ls: GreenpatchServer, document: Document) -> None:
    if ls.settings.repair.on_save and document.uri.endswith(".py"):
        start_repair(ls, document)


def start_repair(ls: GreenpatchServer, document: Document) -> None:
    if ls.root is None or document.path is None:
        return
    if not ls.settings.trusted:
        ls.say_once("untrusted", str(UntrustedWorkspace()), types.MessageType.Info)
        return
    state = _states(ls).setdefault(document.uri, RepairState())
    if state.cancel is not None:
        state.cancel.cancel()
    state.cancel = CancelToken()
    asyncio.ensure_future(_run(ls, document, document.version, state.cancel))


def _relative(ls: GreenpatchServer, path: Path) -> str | None:
    assert ls.root is not None
    try:
        return path.resolve().relative_to(ls.root).as_posix()
    except ValueError:
        return None


async def _progress(ls: GreenpatchServer) -> str | None:
    if not ls.client_capabilities.window or not ls.client_capabilities.window.work_done_progress:
        return None
    token = f"greenpatch-repair-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
    except Exception:  # noqa: BLE001 - client refused or never answered: work on without a progress bar
        return None
    return token


async def _run(ls: GreenpatchServer, document: Document, version: int, cancel: CancelToken) -> None:
    rel = _relative(ls, document.path) if document.path else None
    if rel is None:
        return
    token = await _progress(ls)
    if token:
        ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title="greenpatch", message=f"testing {rel}", cancellable=True)
        )
        ls.work_done_progress.tokens[token].add_done_callback(lambda _: cancel.cancel())

    def progress(message: str, percent: int | None = None) -> None:
        ls.notify_threadsafe(ls.status, "verifying", message)
        if token:
            ls.notify_threadsafe(
                ls.work_done_progress.report, token,
                types.WorkDoneProgressReport(message=message, percentage=percent, cancellable=True),
            )

    from greenpatch.repair import RepairPipeline

    report = None
    try:
        model = ls.settings.model.repair
        assert ls.root is not None  # a document under the root (`rel`)
        pipeline = RepairPipeline(
            ls.root, _verifier(ls), engine_worker(ls, model), ls.settings.repair, model_name=model
        )
        ls.status("verifying", f"testing {rel}")
        report = await asyncio.to_thread(pipeline.repair, focus=[rel], cancel=cancel, progress=progress)
    except Cancelled:
        pass
    except GreenpatchError as exc:
        ls.say_once(f"repair:{exc}", f"could not test {rel}: {exc}")
    except Exception as exc:  # a bug must not take the server down; it is logged with its traceback
        log.exception("repair of %s failed", rel)
        ls.log(f"repair of {rel} failed: {exc!r}", types.MessageType.Error)
    finally:
        if token:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=_summary(report)))
            ls.work_done_progress.tokens.pop(token, None)
        ls.status("ready", "")
    current = ls.documents.get(document.uri)
    if report is None or cancel.is_set() or current is not document or document.version != version:
        return  # stale: a newer edit or save owns this document now
    _show(ls, document, version, report)


def _summary(report: RepairReport | None) -> str:
    """The progress's last word: what the run found (the same facts as the CLI's summary line)."""
    if report is None:
        return "stopped"
    if not report.failures:
        return "all tests pass" if not report.error else "the tests could not run"
    verified = len({f.path for f in report.fixes if f.verified})
    text = f"{verified} verified fix{'es' if verified != 1 else ''}, {len(report.unfixed)} failing without one"
    return text + (" (stopped at the time limit)" if report.timed_out else "")


def _show(ls: GreenpatchServer, document: Document, version: int, report: RepairReport) -> None:
    rel = _relative(ls, document.path) if document.path else None
    fixes = [f for f in report.fixes if f.path == rel and f.verified]
    state = _states(ls).setdefault(document.uri, RepairState())
    state.version, state.fixes = version, fixes
    diagnostics = []
    for failure in report.failures:
        if failure.path != rel or failure.line is None:
            continue
        short = failure.message.splitlines()[0][:200] if failure.message else "failed"
        test = failure.nodeid.split("::")[-1]
        if fixes:
            best = fixes[0]
            tail = f"verified fix available, {best.tests_passed} tests pass"
            if best.note:
                tail += f" ({best.note})"
        else:
            tail = "no verified fix found"
        message = f"{test} fails: {short} — {tail}"
        diagnostics.append(lsp_test_failure(document.text, failure.line - 1, message, version))
    state.diagnostics = diagnostics
    ls.publish(document.uri, "tests", diagnostics)


def _overlaps(a: types.Range, b: types.Range) -> bool:
    return not (a.end.line < b.start.line or b.end.line < a.start.line)


def register(server: GreenpatchServer) -> None:
    server.settings_hooks.append(on_settings)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=False),
    )
    def code_action(ls: GreenpatchServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        document = ls.documents.get(uri)
        state = _states(ls).get(uri)
        if document is None:
            return None
        actions: list[types.CodeAction] = []
        if state is not None and state.version == document.version:
            related = [d for d in state.diagnostics if _overlaps(d.range, params.range)]
            touched = [
                fix for fix in state.fixes
                if related or _overlaps(lsp_whole_lines(*fix.changed_range), params.range)
            ]
            for number, fix in enumerate(touched):
                edit = lsp_minimal_edit(document.text, fix.new_text)
                actions.append(
                    types.CodeAction(
                        title=fix.title,
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=related or None,
                        is_preferred=number == 0,
                        edit=types.WorkspaceEdit(
                            document_changes=[
                                types.TextDocumentEdit(
                                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                                        uri=uri, version=document.version
                                    ),
                                    edits=[edit],
                                )
                            ]
                        ),
                    )
                )
            if related and not touched:
                actions.append(
                    types.CodeAction(
                        title="Fix with greenpatch (search again)",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=related,
                        command=types.Command(title="Fix with greenpatch", command=REPAIR_COMMAND, arguments=[uri]),
                    )
                )
        return actions

    @server.command(REPAIR_COMMAND)
    def repair_file(server_: LanguageServer, *args: Any) -> None:  # pygls evaluates these hints at run time
        ls = cast("GreenpatchServer", server_)
        uri = args[0] if args else None
        if isinstance(uri, dict):
            uri = uri.get("uri")
        document = ls.documents.get(uri) if isinstance(uri, str) else None
        if document is None:
            ls.say_once(REPAIR_COMMAND, f"{REPAIR_COMMAND}: open the file first (got {uri!r})")
            return
        if not ls.settings.trusted:
            ls.say_once("untrusted", str(UntrustedWorkspace()), types.MessageType.Info)
            return
        start_repair(ls, document)


__all__ = ["REPAIR_COMMAND", "on_changed", "on_closed", "on_saved", "path_to_uri"]
