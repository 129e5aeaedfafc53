"""textDocument/inlineCompletion (LSP 3.18): thin handler over completion.CompletionService."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from greenpatch.cancel import CancelToken
from greenpatch.errors import GreenpatchError
from greenpatch.protocol.convert import lsp_position, lsp_status_state, str_column
from greenpatch.protocol.engines import drop_engines, engine_worker
from greenpatch.workspace.documents import Document

if TYPE_CHECKING:
    from greenpatch.completion.ahead import Place
    from greenpatch.completion.service import CompletionService, Suggestion
    from greenpatch.protocol.server import GreenpatchServer

# The server command an item carries (LSP 3.18 InlineCompletionItem.command): the client runs it after inserting the
# item, with the suggestion's id (and, from a client that reports it, how many characters it took).
ACCEPTED_COMMAND = "greenpatch.accepted"
# `greenpatch stats` for this workspace, as text (the VS Code status bar menu shows it)
STATS_COMMAND = "greenpatch.suggestionStats"
# client -> server, optional: the cursor rests at {uri, version, position} (the VS Code extension sends it, debounced);
# the server prepares the suggestion there while the engine is idle (completion/ahead.py)
CURSOR_NOTIFICATION = "greenpatch/cursor"
# server -> client: {uri, position, preparing}: a suggestion's prompt is being prepared there (true) or no more
PREPARING_NOTIFICATION = "greenpatch/preparing"


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
        service.on_preparing(lambda place, busy: _preparing(ls, place, busy))
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


def on_changed(ls: GreenpatchServer, document: Document, at: tuple[int, int] | None = None) -> None:
    """A new version; `at`: (line, Python column) where the last change ended, whose place the service may
    prepare ahead (the first edit at a new place: the completion request comes after the client's debounce)."""
    service = ls.services.completion
    if service is not None:
        service.notify_change(document.uri, document.version)
        if at is not None:
            service.prepare_at(document.uri, document.path, document.text, document.version, *at, "edit")


def on_opened(ls: GreenpatchServer, document: Document) -> None:
    """Prepare the end of the file ahead (where a client that does not say where its cursor is will likely type):
    only once completions are in use, since the first use loads the model."""
    service = ls.services.completion
    if service is not None:
        lines = document.lines
        last = len(lines) - 1 if lines else 0
        while last > 0 and not lines[last].strip():
            last -= 1  # the end of the code, not the blank lines after it
        col = len(lines[last]) if lines else 0
        service.prepare_at(document.uri, document.path, document.text, document.version, last, col, "open")


def _preparing(ls: GreenpatchServer, place: Place, busy: bool) -> None:
    document = ls.documents.get(place.uri)
    position = lsp_position(document.lines if document is not None else [], place.line, place.col)
    ls.protocol.notify(PREPARING_NOTIFICATION, {"uri": place.uri, "preparing": busy,
                                                "position": {"line": position.line, "character": position.character}})


def cursor_at(raw: Any) -> tuple[str, int | None, int, int] | None:
    """(uri, version or None, line, UTF-16 character) of a greenpatch/cursor notification; None when malformed."""
    def field(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    uri, version, position = field(raw, "uri"), field(raw, "version"), field(raw, "position")
    line, character = field(position, "line"), field(position, "character")
    if not isinstance(uri, str) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                           for x in (line, character)):
        return None
    return uri, version if isinstance(version, int) and not isinstance(version, bool) else None, line, character


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

    @server.feature(CURSOR_NOTIFICATION)
    def cursor(ls: GreenpatchServer, params: Any) -> None:
        found = cursor_at(params)
        document = ls.documents.get(found[0]) if found is not None else None
        if found is None or document is None or not ls.settings.completions.enabled:
            return
        _, version, line, character = found
        if (version is not None and version != document.version) or line >= len(document.lines):
            return  # the cursor of another version: a didChange is on its way
        col = str_column(document.lines, types.Position(line=line, character=character))
        _service(ls).prepare_at(document.uri, document.path, document.text, document.version, line, col, "cursor")

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
