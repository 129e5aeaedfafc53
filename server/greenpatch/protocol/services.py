"""The services the features share, each built on first use (a model, a sandbox, a completion cache): typed
fields, so that a reader and mypy can follow what a handler gets."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from greenpatch.cancel import CancelToken
    from greenpatch.completion.service import CompletionService
    from greenpatch.engine.worker import EngineWorker
    from greenpatch.repair.types import Fix
    from greenpatch.verify.verifier import Verifier

log = logging.getLogger(__name__)


@dataclass
class RepairState:
    """The running repair and the last result of one document (protocol/repair.py)."""

    cancel: CancelToken | None = None
    version: int | None = None
    fixes: list[Fix] = field(default_factory=list)  # best first
    diagnostics: list[types.Diagnostic] = field(default_factory=list)


@dataclass
class Services:
    repairs: dict[str, RepairState] = field(default_factory=dict)  # by document URI: the running and last repair
    completion: CompletionService | None = None
    verifier: Verifier | None = None
    engines: dict[str, EngineWorker] = field(default_factory=dict)  # by model name, shared by completion and repair

    def close(self) -> None:
        """Stop what uses a model before the models: running repairs, completion's work ahead and the sandboxes,
        then the engine workers. A close that fails is logged and the others still run: shutting down never hangs
        on one of them."""
        for state in self.repairs.values():
            if state.cancel is not None:
                state.cancel.cancel()
        self.repairs.clear()
        closing: list[CompletionService | Verifier | EngineWorker] = [
            service for service in (self.completion, self.verifier) if service is not None
        ]
        closing += self.engines.values()
        self.completion = self.verifier = None
        self.engines.clear()
        for service in closing:
            try:
                service.close()
            except Exception:  # shutting down: report, never hang
                log.exception("closing %s failed", service)
