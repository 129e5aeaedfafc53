"""textDocument/inlineCompletion (LSP 3.18): thin handler over completion.CompletionService."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from greenpatch.cancel import CancelToken
from greenpatch.errors import GreenpatchError
from greenpatch.protocol.convert import lsp_status_state, str_column
from greenpatch.protocol.engines import drop_engines, engine_worker
from greenpatch.workspace.documents import Document

if TYPE_CHECKING:
    from greenpatch.completion.service import CompletionService, Suggestion
    from greenpatch.protocol.server import GreenpatchServer

# The server command an item carries (LSP 3.18 InlineCompletionItem.command): the client runs it after inserting the
# item, with the suggestion's id (and, from a client that reports it, how many characters it took).
ACCEPTED_COMMAND = "greenpatch.accepted"
# `greenpatch stats` for this workspace, as text (the VS Code status bar menu shows it)
STATS_COMMAND = "greenpatch.suggestionStats"


def _service(ls: GreenpatchServer) -> CompletionService:
    service = ls.services.completion
    if service is None:
        from greenpatch.completion.service import CompletionService

        service = CompletionService(
            engine_worker(ls, ls.settings.model.completion), ls.settings.completions, ls.index, ls.root
        )
        _code_settings(ls, service)
        from greenpatch.completion.feedback import FeedbackLog

        service.feedback = FeedbackLog.for_workspace(ls.root)
        service.feedback.enabled = ls.settings.completions.record
        ls.services.completion = service
    return service


def _code_settings(ls: GreenpatchServer, service: CompletionService) -> None:
    """Whether the docstring examples may run (a trusted workspace), and under which interpreter."""
    from greenpatch.errors import VerifyError
    from greenpatch.verify.python import resolve_python

    service.trusted = ls.settings.trusted
    if not service.trusted:
        return  # an untrusted workspace's interpreter is not even looked for
    try:
        service.python = resolve_python(ls.root, ls.settings.python) if ls.root is not None else service.python
    except VerifyError:
        service.trusted = False  # a configured interpreter that does not exist: run nothing (repair says why)


def on_changed(ls: GreenpatchServer, document: Document) -> None:
    service = ls.services.completion
    if service is not None:
        service.notify_change(document.uri, document.version)


def on_closed(ls: GreenpatchServer, uri: str) -> None:
    service = ls.services.completion
    if service is not None:
        service.forget(uri)
        if service.feedback is not None:
            service.feedback.forget(uri)


def on_settings(ls: GreenpatchServer) -> None:
    service = ls.services.completion
    if service is not None and ls.settings.model.completion not in ls.services.engines:
        ls.services.completion = None  # model changed: rebuilt on next request
        service.close()
    elif service is not None:
        service.update_settings(ls.settings.completions)
        _code_settings(ls, service)
        if service.feedback is not None:
            service.feedback.enabled = ls.settings.completions.record
    drop_engines(ls, {ls.settings.model.completion, ls.settings.model.repair})


def _model(ls: GreenpatchServer) -> str:
    engine = ls.settings.engine
    return (engine.model or engine.url) if engine.url else ls.settings.model.completion


def _command(ls: GreenpatchServer, uri: str, suggestion: Suggestion) -> types.Command | None:
    """Record `suggestion` as shown (and whatever was pending in `uri` as passed over): the command that reports
    its acceptance, or None when nothing is recorded."""
    feedback = _service(ls).feedback
    if feedback is None or not ls.settings.completions.record:
        return None
    kind = "next line" if suggestion.ahead else suggestion.mode
    id_ = feedback.shown(uri, mean_logprob=suggestion.mean_logprob, chars=len(suggestion.text), kind=kind,
                         model=_model(ls), seconds=suggestion.seconds, along=suggestion.along)
    return types.Command(title="accepted", command=ACCEPTED_COMMAND, arguments=[id_])


def register(server: GreenpatchServer) -> None:
    server.settings_hooks.append(on_settings)

    @server.command(ACCEPTED_COMMAND)
    def accepted(server_: LanguageServer, *args: Any) -> None:  # pygls evaluates these hints at run time
        """The client inserted a suggestion: [id] whole, [id, chars] only its first `chars` characters."""
        service = cast("GreenpatchServer", server_).services.completion
        if service is None or service.feedback is None or not args or not isinstance(args[0], str):
            return
        chars = args[1] if len(args) > 1 and isinstance(args[1], int) and not isinstance(args[1], bool) else None
        service.feedback.accepted(args[0], chars)

    @server.command(STATS_COMMAND)
    async def suggestion_stats(server_: LanguageServer, *args: Any) -> dict[str, Any]:
        from greenpatch.completion.stats import render, report

        ls = cast("GreenpatchServer", server_)
        target = ls.settings.completions.accept_target or 0.5
        data = await asyncio.to_thread(report, ls.root, target)  # reads the logs: off the event loop
        return {"text": render(data), "data": data}

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: GreenpatchServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        document = ls.documents.get(params.text_document.uri)
        if document is None or not ls.settings.completions.enabled:
            return None
        version = document.version
        position = params.position
        col = str_column(document.lines, position)
        cancel = CancelToken()
        try:
            suggestion = await _service(ls).complete(
                document.uri, document.path, document.text, version, position.line, col, cancel
            )
        except asyncio.CancelledError:
            cancel.cancel()
            raise
        except GreenpatchError as exc:
            ls.status(lsp_status_state(exc), str(exc))
            ls.say_once(f"completion:{type(exc).__name__}", f"inline completions are off: {exc}")
            return None
        feedback = _service(ls).feedback
        if feedback is not None and suggestion is not None:
            feedback.request(document.uri, suggestion.along)
        if suggestion is None or not suggestion.shown or not suggestion.text or document.version != version:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(
                    insert_text=suggestion.text, range=types.Range(start=position, end=position),
                    command=_command(ls, document.uri, suggestion),
                )
            ]
        )
