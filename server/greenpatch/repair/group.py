"""What one repair run works on: groups of failing tests with one suspicious function, and the candidates that
passed their tests (before ranking)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from greenpatch.repair.candidates import Candidate
from greenpatch.repair.localize import Suspect
from greenpatch.verify.types import TestResult, TestRun


class GroupKind(enum.Enum):
    FUNCTION = "function"  # failing tests whose most suspicious code is one function
    SYNTAX = "syntax"  # a file that does not parse: small completions of the offending line, no model


@dataclass
class Group:
    """Failing tests repaired together: those whose most suspicious code is the same function, or the tests a file
    that does not parse breaks (then `function` is empty)."""

    path: str
    function: str
    failing: list[TestResult]
    suspects: list[Suspect] = field(default_factory=list)
    covering: int | None = None  # tests that run the function (None: no coverage data)
    kind: GroupKind = GroupKind.FUNCTION

    @property
    def where(self) -> str:
        """How progress and fix titles name the group."""
        return self.path if self.kind is GroupKind.SYNTAX else f"{self.path}:{self.function}"


@dataclass
class Verified:
    """A candidate that passed the group's failing tests and broke no test that passed before."""

    candidate: Candidate
    run: TestRun
    tokens: int
    behaviour: int = 0  # size of the group of candidates behaving the same on extra inputs
    natural: float | None = None  # mean log-probability the model gives the changed lines in place
    note: str = ""
