"""Data passed between verification, repair and the protocol layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from greenpatch.cancel import CANCELLED


@dataclass(frozen=True)
class Frame:
    path: str  # workspace-relative POSIX path (sandbox paths are mapped back)
    line: int  # 1-based
    function: str


@dataclass
class TestResult:
    nodeid: str
    outcome: str  # "passed" | "failed" | "error" | "skipped"
    duration: float = 0.0
    message: str = ""  # short failure message ("AssertionError: assert 3 == 4")
    frames: list[Frame] = field(default_factory=list)  # innermost last
    # why a failure is out of a fix's reach (verify/causes.py): "environment" | "flaky" | "" (a fix may reach it)
    cause: str = ""
    # the failed comparison of a rewritten `assert` (op, repr of left, repr of right), bounded reprs; None otherwise
    compared: tuple[str, str, str] | None = None


@dataclass
class TestRun:
    results: list[TestResult] = field(default_factory=list)
    level: str = "all"  # selection level: "coverage" | "test-file" | "imports" | "all" | "given"
    selected: list[str] = field(default_factory=list)  # node ids or files asked for
    seconds: float = 0.0
    timed_out: bool = False
    error: str = ""  # collection error / crash / interpreter problem, empty when the run itself worked
    cached: bool = False
    restarts: int = 0  # times the run was started again for the tests after one that hung or ended the process

    @property
    def cancelled(self) -> bool:
        """The run was cancelled (the caller's token or the verifier's close()); see cancel.py."""
        return self.error == CANCELLED

    @property
    def passed(self) -> bool:
        """Nothing failed but flaky tests (an environment failure is still a failure of the run)."""
        return not self.error and not self.timed_out and all(
            r.outcome in ("passed", "skipped") or r.cause == "flaky" for r in self.results)

    @property
    def failed(self) -> list[TestResult]:
        """The failures a fix may reach: repair targets and what decides a candidate's run."""
        return [r for r in self.results if r.outcome in ("failed", "error") and not r.cause]

    @property
    def unreachable(self) -> list[TestResult]:
        """Failures no edit of the project can fix: flaky tests and the environment's (verify/causes.py)."""
        return [r for r in self.results if r.outcome in ("failed", "error") and r.cause]


# A candidate edit: workspace-relative POSIX path -> full new file content.
Changes = dict[str, str]
