"""The results of earlier test runs, kept on disk by what they ran: the same changes, tests and tree give the
same results without running again.

A run's key covers everything it depends on (the changes, the tests chosen, stop at first failure, the pristine
tree's fingerprint, the interpreter, the per-test limit, the user's pytest options). Only complete runs are kept
(the verifier decides: no error, no timeout, no restart, no test out of time), at most CACHE_LIMIT of them, the
oldest dropped first.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from greenpatch.verify.results import read_compared
from greenpatch.verify.types import Changes, Frame, TestResult, TestRun

CACHE_LIMIT = 512


def run_key(changes: Changes, targets: list[str], stop: bool, fingerprint: str, python: str, test_timeout: float,
            pytest_options: list[str]) -> str:
    blob = json.dumps([sorted(changes.items()), targets, stop, fingerprint, python, test_timeout, pytest_options],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class RunCache:
    """Runs by key, saved to `state_dir`/results-cache.json after each one added. Not locked: the verifier calls
    it under its own lock."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._runs: dict[str, dict[str, object]] = self._load()

    def get(self, key: str) -> TestRun | None:
        """The run kept under `key` (marked `cached`), or None."""
        data = self._runs.get(key)
        return _run_from_dict(data) if data is not None else None

    def put(self, key: str, run: TestRun) -> None:
        self._runs[key] = asdict(run)
        self._save()

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads((self.state_dir / "results-cache.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        while len(self._runs) > CACHE_LIMIT:
            self._runs.pop(next(iter(self._runs)))
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path = self.state_dir / "results-cache.json"
            tmp = path.with_name(f"results-cache.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(self._runs), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation


def _run_from_dict(data: dict[str, object]) -> TestRun:
    raw: dict[str, Any] = dict(data)
    results = [
        TestResult(r["nodeid"], r["outcome"], r["duration"], r["message"], [Frame(**f) for f in r["frames"]],
                   r.get("cause", ""), read_compared(r.get("compared")))
        for r in raw.pop("results")
    ]
    run = TestRun(results=results, **raw)
    run.cached = True
    return run
