"""Candidate sources (repair/sources.py's protocol) for the kinds real one-hunk fixes are made of, and the merge of
all model-free sources into one queue ordered by likelihood (repair/budget.py) rather than one source after the
other: a call's missing keyword argument on the most suspicious line goes before the tenth operator mutation of the
fourth line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from greenpatch.repair.budget import by_likelihood, likelihood
from greenpatch.repair.candidates import Candidate, changed_range
from greenpatch.repair.initialize import initialization_edits, missing_attributes
from greenpatch.repair.literals import literal_edits
from greenpatch.repair.signatures import SignatureLookup, lookup
from greenpatch.repair.sources import CandidateSource, Mutations
from greenpatch.repair.structural import structural_edits

if TYPE_CHECKING:
    from greenpatch.repair.sources import Request
    from greenpatch.verify.types import TestResult
    from greenpatch.workspace.index import FileEntry, Symbol, WorkspaceIndex


class Likeliest:
    """Several sources as one: each makes up to its own limit, and the union is queued likeliest first."""

    kind = "mutation"

    def __init__(self, sources: Sequence[CandidateSource], per_budget: int = 4) -> None:
        self.sources = list(sources)
        self.per_budget = per_budget

    def limit(self, budget: int) -> int:
        return budget * self.per_budget

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        budget = max(1, limit // self.per_budget)
        made = [c for source in self.sources for c in source.generate(request, source.limit(budget))]
        return by_likelihood(made, [c.likelihood for c in made], limit=limit)


class StructuralEdits:
    """Call arguments from the callee's signature, conditions, None guards, tolerant lookups, file modes."""

    kind = "mutation"  # model-free, like the operator mutations; each candidate's `kind` says which edit

    def __init__(self) -> None:
        self._index: _LazyIndex | None = None
        self._lookups: dict[str, SignatureLookup] = {}

    def limit(self, budget: int) -> int:
        return budget * 4

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        if self._index is None:
            self._index = _LazyIndex(request.files.root)
        made: list[Candidate] = []
        for suspect in request.window:
            text = request.files.text(suspect.path)
            if text is None:
                continue
            if suspect.path not in self._lookups:
                self._lookups[suspect.path] = lookup(text, self._index)
            for edit in structural_edits(text, suspect.line, suspect.last, self._lookups[suspect.path]):
                made.append(Candidate(suspect.path, edit.text, self.kind, suspect.line, edit.description,
                                      prior=suspect.score, kind=edit.kind,
                                      likelihood=likelihood(edit.kind, suspect.score, edit.weight)))
        return by_likelihood(made, [c.likelihood for c in made], limit=limit)


class LiteralEdits:
    """String and regex literals, guided by the failing assertion's expected value when it is known."""

    kind = "mutation"

    def limit(self, budget: int) -> int:
        return budget * 2

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        expected, actual = compared(request.group.failing) or (None, None)
        made: list[Candidate] = []
        for suspect in request.window:
            text = request.files.text(suspect.path)
            if text is None:
                continue
            for edit in literal_edits(text, suspect.line, suspect.last, expected, actual):
                made.append(Candidate(suspect.path, edit.text, self.kind, suspect.line, edit.description,
                                      prior=suspect.score, kind=edit.kind,
                                      likelihood=likelihood(edit.kind, suspect.score, edit.weight)))
        return by_likelihood(made, [c.likelihood for c in made], limit=limit)


class MissingAttributes:
    """An attribute the failure says an object lacks, set in its class's `__init__` (repair/initialize.py): the
    class is looked for in the files of the suspects and of the failure's frames."""

    kind = "mutation"

    def limit(self, budget: int) -> int:
        return budget

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        failing = request.group.failing
        missing = missing_attributes(result.message for result in failing)
        if not missing or request.round_no != 1:  # not tied to the round's lines: made once
            return []
        paths = dict.fromkeys([request.group.path, *(s.path for s in request.window),
                               *(f.path for result in failing for f in reversed(result.frames))])
        suspicion = max((s.score for s in request.group.suspects), default=1.0)
        made: list[Candidate] = []
        for path in paths:
            text = request.files.text(path)
            if text is None:
                continue
            for cls, attribute in missing:
                for edit in initialization_edits(text, cls, attribute):
                    made.append(Candidate(path, edit.text, self.kind, changed_range(text, edit.text)[0] + 1, edit.description,
                                          prior=suspicion, kind=edit.kind,
                                          likelihood=likelihood(edit.kind, suspicion, edit.weight)))
        return by_likelihood(made, [c.likelihood for c in made], limit=limit)


class _LazyIndex:
    """The workspace index, scanned when a callee's signature is first looked up outside its own file (most
    repairs never need it)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._index: WorkspaceIndex | None = None

    def _scanned(self) -> WorkspaceIndex:
        if self._index is None:
            from greenpatch.workspace.index import WorkspaceIndex

            self._index = WorkspaceIndex(self._root)
            self._index.scan()
        return self._index

    def lookup(self, name: str) -> list[Symbol]:
        return self._scanned().lookup(name)

    def entry(self, path: Path) -> FileEntry | None:
        return self._scanned().entry(path)


_COMPARED = re.compile(r"^(?:AssertionError: )?assert (.+?) == (.+)$", re.MULTILINE)


def compared(failing: list[TestResult]) -> tuple[str, str] | None:
    """(expected, actual) of the first failing `assert actual == expected` whose sides pytest showed whole as string
    reprs. A stand-in until repair/failure.py's FailureFacts (helper `failure`) is merged: take its
    expected/actual then."""
    for result in failing:
        match = _COMPARED.search(result.message or "")
        if match is None:
            continue
        left, right = match.group(1).strip(), match.group(2).strip()
        if left[:1] in "'\"" and right[:1] in "'\"" and "..." not in left + right:  # not cut short by pytest
            return right, left
    return None


def default_sources() -> list[CandidateSource]:
    # one queue, likeliest first across kinds (repair/budget.py), not one source after the other
    return [Likeliest([Mutations(), StructuralEdits(), LiteralEdits(), MissingAttributes()])]
