"""Use a remote server while it answers; fall back to the local model while it does not; go back when it returns.

A request that fails on the server (down, too slow, rejects the key) is answered by the local engine instead, and
the status callback says so once. From then on requests go straight to the local engine — no waiting on a dead
server — while a probe thread asks the server for its model list, backing off from `probe_interval` to
`max_probe_interval`. The first successful probe switches back and reports it. So no request waits longer than the
remote engine's own timeout before it is answered locally.

`on_status` is called from the engine worker's thread or from the probe thread: it must hand the status over to
the event loop itself (e.g. `loop.call_soon_threadsafe`) and return at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from greenpatch.cancel import CancelToken
from greenpatch.config import Settings
from greenpatch.engine.base import ChatMessage, Engine, EngineBase, FimFormat, Generation
from greenpatch.errors import EngineNotInstalled, GreenpatchError

log = logging.getLogger(__name__)

__all__ = ["EngineStatus", "FallbackEngine", "make_engine"]


@dataclass(frozen=True)
class EngineStatus:
    # "remote": the server answers. "fallback": it does not; the local model answers. "down": neither can.
    state: str
    message: str


class Probed(Engine, Protocol):
    url: str
    timeout: float

    def probe(self, timeout: float = 2.0) -> float: ...


class FallbackEngine(EngineBase):
    """The Engine protocol over a remote primary and an optional local fallback built on first need."""

    def __init__(
        self,
        primary: Probed,
        fallback_factory: Callable[[], Engine] | None,
        on_status: Callable[[EngineStatus], None] | None = None,
        *,
        probe_interval: float = 1.0,
        max_probe_interval: float = 30.0,
    ) -> None:
        self.primary = primary
        self._factory = fallback_factory
        self._on_status = on_status
        self._probe_interval = probe_interval
        self._max_probe_interval = max_probe_interval
        self._lock = threading.Lock()
        self._healthy = True
        self._failures = 0  # consecutive outages without a successful remote request between them
        self._fallback: Engine | None = None
        self._fallback_error: str = ""
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None
        self.status = EngineStatus("remote", f"using the server at {primary.url}")

    # --- the Engine protocol -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.primary.name if self._healthy or self._fallback is None else self._fallback.name

    @property
    def fim(self) -> FimFormat | None:
        return self.primary.fim if self._healthy or self._fallback is None else self._fallback.fim

    def infill(
        self,
        prefix: str,
        suffix: str,
        *,
        context: str = "",
        max_tokens: int = 64,
        stop: list[str] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | None = None,
        code_first: bool = False,
        end_check: bool = False,
    ) -> Generation:
        return self._run(
            lambda e: e.infill(
                prefix,
                suffix,
                context=context,
                max_tokens=max_tokens,
                stop=stop,
                temperature=temperature,
                seed=seed,
                cancel=cancel,
                code_first=code_first,
                end_check=end_check,
            ),
            cancel,
        )

    def prepare(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64,
                cancel: CancelToken | None = None) -> int:
        """Only while the local engine answers: the server keeps its own prompt state."""
        if self._healthy or self._fallback is None:
            return 0
        try:
            return self._fallback.prepare(prefix, suffix, context=context, max_tokens=max_tokens, cancel=cancel)
        except GreenpatchError:
            return 0

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        """The local engine's, while it answers (see prepare)."""
        if self._healthy or self._fallback is None:
            return 0
        try:
            return self._fallback.pending(prefix, suffix, context=context, max_tokens=max_tokens)
        except GreenpatchError:
            return 0

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "",
              cancel: CancelToken | None = None) -> list[float]:
        """Teacher-forced scoring where the engine in use can (the local one); [] otherwise."""
        engine = self.primary if self._healthy or self._fallback is None else self._fallback
        try:
            return list(engine.score(prefix, suffix, middle, context=context, cancel=cancel))
        except GreenpatchError:
            return []

    def chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> Generation:
        return self._run(
            lambda e: e.chat(
                messages, max_tokens=max_tokens, temperature=temperature, seed=seed, cancel=cancel
            ),
            cancel,
        )

    def count_tokens(self, text: str) -> int:
        engine = self.primary if self._healthy or self._fallback is None else self._fallback
        return engine.count_tokens(text)

    def close(self) -> None:
        self._closed.set()
        prober = self._prober
        if prober is not None and prober is not threading.current_thread():
            prober.join(timeout=5.0)
        self.primary.close()
        with self._lock:
            fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.close()

    # --- state ---------------------------------------------------------------------------------------------

    @property
    def using_remote(self) -> bool:
        return self._healthy

    def _run(self, call: Callable[[Engine], Generation], cancel: CancelToken | None) -> Generation:
        if self._healthy:
            try:
                result = call(self.primary)
            except GreenpatchError as exc:
                self._went_down(exc)
            else:
                self._failures = 0
                return result
        if cancel is not None and cancel.is_set():
            return Generation("", stop_reason="cancelled")
        engine = self._local()
        if engine is None:
            raise EngineNotInstalled(
                f"the server at {self.primary.url} is unavailable and there is no local model to fall back to"
                + (f" ({self._fallback_error})" if self._fallback_error else ""),
                "start the server again (greenpatch reconnects by itself) or install a local model",
            )
        return call(engine)

    def _local(self) -> Engine | None:
        with self._lock:
            if self._fallback is None and self._factory is not None and not self._fallback_error:
                try:
                    self._fallback = self._factory()
                except GreenpatchError as exc:
                    self._fallback_error = str(exc)
                    log.warning("no local fallback engine: %s", exc)
            return self._fallback

    def _went_down(self, exc: GreenpatchError) -> None:
        with self._lock:
            if not self._healthy:
                return
            self._healthy = False
            self._failures += 1
            self._fallback_error = ""  # a model installed since the last outage gets its chance
        local = self._local()
        if local is not None:
            status = EngineStatus(
                "fallback", f"{exc}; using the local model ({local.name}) until the server is back"
            )
        else:
            why = f" ({self._fallback_error})" if self._fallback_error else ""
            status = EngineStatus("down", f"{exc}; no local model to fall back to{why}")
        self._report(status)
        self._prober = threading.Thread(
            target=self._probe_until_back, name="greenpatch-remote-probe", daemon=True
        )
        self._prober.start()

    def _probe_until_back(self) -> None:
        interval = min(self._max_probe_interval, self._probe_interval * 2 ** (self._failures - 1))
        while not self._closed.wait(interval):
            try:
                self.primary.probe(timeout=min(2.0, self.primary.timeout))
            except GreenpatchError as exc:
                log.debug("server still unavailable: %s", exc)
                interval = min(self._max_probe_interval, interval * 2)
                continue
            with self._lock:
                self._healthy = True
            self._report(EngineStatus("remote", f"the server at {self.primary.url} is back; using it again"))
            return

    def _report(self, status: EngineStatus) -> None:
        self.status = status
        (log.info if status.state == "remote" else log.warning)("%s", status.message)
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:  # a broken listener must not take the engine down
                log.exception("engine status listener failed")


def make_engine(
    settings: Settings,
    local_factory: Callable[[], Engine] | None,
    on_status: Callable[[EngineStatus], None] | None = None,
    *,
    fim: FimFormat | None = None,
) -> FallbackEngine:
    """The engine for `settings.engine.url`: the server, with `local_factory` (None: no local model) as fallback."""
    from greenpatch.engine.remote import RemoteEngine

    return FallbackEngine(RemoteEngine.from_settings(settings, fim=fim), local_factory, on_status)
