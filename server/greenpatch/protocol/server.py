"""The language server and the state its features share (documents, index, engines, repairs).

Its own module, below the feature modules (protocol/*) that take it as their first argument: app.py builds it and
registers the features, so the features never import app.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcException, JsonRpcInternalError
from pygls.lsp.server import LanguageServer

from greenpatch import __version__
from greenpatch.config import Settings, read_settings
from greenpatch.protocol.rpc import GreenpatchProtocol
from greenpatch.protocol.services import Services
from greenpatch.workspace.documents import Document
from greenpatch.workspace.index import ScanStats, WorkspaceIndex
from greenpatch.workspace.watcher import WorkspaceWatcher

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "greenpatch/status"
INDEX_NOTIFICATION = "greenpatch/indexUpdated"


class GreenpatchServer(LanguageServer):
    """The language server plus the state its features share (documents, index, engines, repairs)."""

    protocol: GreenpatchProtocol

    def __init__(self) -> None:
        super().__init__("greenpatch", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=GreenpatchProtocol)
        self.settings = Settings()
        self.root: Path | None = None
        self.documents: dict[str, Document] = {}
        self.index: WorkspaceIndex | None = None
        self.watcher: WorkspaceWatcher | None = None
        self.index_ready: asyncio.Future[ScanStats] | None = None  # the first full scan
        self.diagnostics: dict[str, dict[str, list[types.Diagnostic]]] = {}  # uri -> source kind -> diagnostics
        self.debounce: dict[str, asyncio.Task[None]] = {}
        self.services = Services()  # built on first use: completion, engine workers, verifier; the repairs
        self.settings_hooks: list[Callable[[GreenpatchServer], None]] = []  # called after every settings change
        self.event_loop: asyncio.AbstractEventLoop | None = None  # the one serving the client (from initialize)
        self._said_once: set[str] = set()
        self._lock = threading.Lock()

    # -- settings ------------------------------------------------------------------------------------------

    def apply_settings(self, data: Any) -> None:
        # a bad value takes its default and the rest still applies: rejecting the whole payload would also drop
        # the client's `trusted: false` and run the workspace's code (settings fail closed, config.py)
        read = read_settings(data, self.settings)
        self.settings = read.settings
        for problem in read.problems:
            # one pop-up per setting ("setting verify.memoryMb"), whatever values follow; each one is logged
            self.say_once(problem.message.split(":", 1)[0], str(problem), types.MessageType.Error)
        level = getattr(logging, self.settings.log_level.upper(), None)
        if isinstance(level, int):
            logging.getLogger("greenpatch").setLevel(level)
        for hook in self.settings_hooks:
            hook(self)

    # -- messages to the client ----------------------------------------------------------------------------

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def say(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show a message to the user and log it."""
        self.log(message, kind)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"greenpatch: {message}"))

    def say_once(self, key: str, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        with self._lock:
            if key in self._said_once:
                self.log(message, kind)
                return
            self._said_once.add(key)
        self.say(message, kind)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' hook for errors outside a request's response. Its default shows a pop-up for each one (4,855 in a
        fuzzing run); here they go to the log, with at most one pop-up per kind of error."""
        if source is JsonRpcException and isinstance(error, ValueError):
            # raised by json.loads in pygls' read loop: bytes that are not JSON (or not UTF-8)
            log.warning("a message from the client is not JSON: %s", error)
            self.protocol.refuse(None, types.ErrorCodes.ParseError, f"not JSON: {error}")
            return
        if source is FeatureRequestError:
            return  # the request's error response carries it, and pygls logged it
        log.error("server error (%s): %r", getattr(source, "__name__", source), error)
        if source is JsonRpcInternalError:
            return  # sending to the client failed: telling the client would fail again
        self.say_once(f"server-error:{getattr(source, '__name__', source)}:{type(error).__name__}",
                      f"internal error, see the log: {error!r}", types.MessageType.Error)

    def status(self, state: str, message: str = "", **extra: Any) -> None:
        """Tell the client what greenpatch is doing (VS Code shows it in the status bar)."""
        self.protocol.notify(STATUS_NOTIFICATION, {"state": state, "message": message, **extra})

    def notify_threadsafe(self, func: Callable[..., object], *args: Any) -> None:
        """Run a notification-sending call on the event loop from a worker thread."""
        loop = self.event_loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(func, *args)

    def publish(self, uri: str, kind: str, diagnostics: list[types.Diagnostic]) -> None:
        """Replace one kind of diagnostics ("syntax", "tests") for `uri` and publish all kinds together."""
        kinds = self.diagnostics.setdefault(uri, {})
        kinds[kind] = diagnostics
        document = self.documents.get(uri)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version if document else None,
                diagnostics=[d for items in kinds.values() for d in items],
            )
        )

    # -- workspace -----------------------------------------------------------------------------------------

    def open_workspace(self, root: Path) -> None:
        self.root = root
        self.index = WorkspaceIndex(root)
        self.watcher = WorkspaceWatcher(root, self._files_changed)
        self.watcher.start()

    def _files_changed(self, paths: set[Path]) -> None:
        index = self.index
        if index is None:
            return
        open_paths = {d.path for d in list(self.documents.values()) if d.path}
        changed = [p for p in paths if p not in open_paths]  # the editor owns open documents
        for path in changed:
            index.update_file(path)
        if changed:
            self.notify_threadsafe(
                self.protocol.notify, INDEX_NOTIFICATION, {"files": sorted(str(p) for p in changed)}
            )

    def shutdown_services(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.services.close()
