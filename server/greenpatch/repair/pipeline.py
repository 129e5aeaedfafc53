"""failing tests -> localize -> candidates (mutation, infill, rewrite) -> verify in the sandbox -> rank -> fixes.

The pipeline is the long-lived part (the workspace, its verifier, the model, the settings); each `repair()` is one
RepairRun (repair/run.py), which owns that run's state. Ranking is repair/rank.py, the model's jobs
repair/jobs.py, the model-free candidate sources repair/sources.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from greenpatch.cancel import CancelToken
from greenpatch.config import RepairSettings
from greenpatch.repair.run import Progress, RepairRun
from greenpatch.repair.types import RepairReport
from greenpatch.verify.types import Changes, TestRun

if TYPE_CHECKING:
    from greenpatch.engine.worker import EngineWorker
    from greenpatch.verify.verifier import Verifier


class RepairPipeline:
    def __init__(
        self, root: Path, verifier: Verifier, engine: EngineWorker | None, settings: RepairSettings, *,
        model_name: str = "",
    ) -> None:
        self.root = Path(root).resolve()
        self.verifier = verifier
        self.engine = engine  # an EngineWorker (anything with submit(fn, cancel) -> Future), or None
        self.settings = settings
        self.model_name = model_name
        self._engine_error = ""  # the model failed to load: later runs do not try it again
        self._report = RepairReport()

    def repair(
        self, *, changes: Changes | None = None, focus: list[str] | None = None, baseline: TestRun | None = None,
        cancel: CancelToken | None = None, progress: Progress | None = None,
    ) -> RepairReport:
        run = RepairRun(self.root, self.verifier, self.engine, self.settings, changes=changes, cancel=cancel,
                        progress=progress, engine_error=self._engine_error)
        self._report = run.report
        try:
            return run.execute(focus=focus, baseline=baseline)
        finally:
            self._engine_error = run.jobs.engine_error

    @property
    def report(self) -> RepairReport:
        """The last run's report so far: after a Cancelled, the fixes verified before it and every failure."""
        return self._report
