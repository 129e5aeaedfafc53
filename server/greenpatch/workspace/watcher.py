"""Watch the workspace with watchdog and re-index files changed outside the editor (debounced)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from greenpatch.workspace import scan

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: WorkspaceWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                path = Path(raw if isinstance(raw, str) else raw.decode())
                if scan.is_candidate_file(path) and not any(p in scan.SKIP_DIRS for p in path.parts):
                    self.watcher.touch(path)


class WorkspaceWatcher:
    """Collects changed paths and calls `on_change(paths)` once they have been quiet for `delay` seconds."""

    def __init__(self, root: Path, on_change: Callable[[set[Path]], None], delay: float = 0.3) -> None:
        self.root = root
        self.on_change = on_change
        self.delay = delay
        self._pending: set[Path] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        observer = Observer()
        observer.daemon = True
        observer.schedule(_Handler(self), str(self.root), recursive=True)
        try:
            observer.start()
        except OSError as exc:  # inotify watch limits and the like: keep serving without the watcher
            log.warning("not watching %s for changes: %s", self.root, exc)
            return
        self._observer = observer

    def touch(self, path: Path) -> None:
        with self._lock:
            self._pending.add(path)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            paths, self._pending = self._pending, set()
            self._timer = None
        if paths:
            try:
                self.on_change(paths)
            except Exception:  # a bad file must never kill the watcher thread
                log.exception("re-indexing %d changed files failed", len(paths))

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
