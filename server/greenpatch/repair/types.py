"""What the repair pipeline reports: failures, verified fixes, and the whole run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Failure:
    nodeid: str
    message: str
    path: str | None = None  # fault location: workspace-relative POSIX path of non-test code
    line: int | None = None  # 1-based
    cause: str = ""  # why no fix can reach it: "environment" | "flaky" (verify/causes.py); "" otherwise


@dataclass
class Fix:
    path: str
    new_text: str
    diff: str
    title: str
    generator: str  # "infill" | "mutation" | "rewrite"
    tests_run: int
    tests_passed: int
    verified: bool
    note: str = ""
    kind: str = ""  # what kind of edit (repair/budget.py): "mutation", "call-args", "condition", "insert", ...
    changed_range: tuple[int, int] = (0, 0)  # 0-based first/last line of the ORIGINAL text that the fix replaces
    fixes: list[str] = field(default_factory=list)  # node ids of the failing tests this fix makes pass
    score: dict[str, Any] = field(default_factory=dict)  # what ranking saw (changed tokens, votes, logprob, ...)
    # The file's text the fix was made from. It and new_text are as on disk: the file's own line endings, no BOM.
    original: str = field(default="", repr=False)


@dataclass
class RepairReport:
    failures: list[Failure] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)  # best first
    seconds: float = 0.0
    candidates_tried: int = 0
    rounds: int = 0
    level: str = ""
    error: str = ""
    tests_run: int = 0
    notes: list[str] = field(default_factory=list)  # things the user should know (no model, timed out, ...)
    unreachable: list[Failure] = field(default_factory=list)  # failing for reasons no fix can reach: not repaired
    timed_out: bool = False  # the time limit cut the run short; the fixes here were verified before it
    interrupted: bool = False  # cancelled (Ctrl-C); the fixes here were verified before it
    # Where the time went, in seconds: "tests" and "model_wait" (the model, with nothing else to do) are on the
    # run's clock and "other" is the rest of `seconds`; "prompt" (evaluation) and "generation" are the model's own
    # time, mostly spent while tests ran (see repair/clock.py).
    timing: dict[str, float] = field(default_factory=dict)
    model_tokens: dict[str, int] = field(default_factory=dict)  # prompt (of which reused) and generated tokens
    # Per failure group repaired, where the run looked and what it made of it (`bench real` tells its misses by
    # cause from this): "where", "suspects" (path, line, last, score; most suspicious first) and "candidates"
    # (path, line, kind, "key": candidates.digest of the new file, "tried": whether its tests ran)
    search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unfixed(self) -> list[Failure]:
        fixed = {nodeid for fix in self.fixes if fix.verified for nodeid in fix.fixes}
        return [f for f in self.failures if f.nodeid not in fixed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for fix in data["fixes"]:
            del fix["original"]  # the user has it; new_text and the diff say what changes
        data["unfixed"] = [f.nodeid for f in self.unfixed]
        return data
