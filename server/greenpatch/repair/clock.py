"""One repair run's limits: its cancel token and its deadline, checked between every two pieces of work."""

from __future__ import annotations

import time

from greenpatch.cancel import CancelToken
from greenpatch.errors import Cancelled
from greenpatch.repair.types import RepairReport


class RunClock:
    def __init__(self, cancel: CancelToken, deadline: float, report: RepairReport) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self._report = report

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def time_up(self) -> bool:
        """The deadline has passed: the report says it was cut short (once)."""
        if not self.out_of_time():
            return False
        if not self._report.timed_out:
            self._report.timed_out = True
            self._report.notes.append("stopped at the time limit")
        return True
