"""Model-free candidate sources: each makes candidates for a round's suspicious statements, up to its own budget,
and they are verified while the model's samples are generated. A new kind of candidate is a class here (or in a
module of its own) added to `default_sources`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from greenpatch.repair.candidates import Candidate
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group
from greenpatch.repair.localize import Suspect
from greenpatch.repair.mutate import mutations


@dataclass
class Request:
    """What a source works from in one round."""

    group: Group
    window: list[Suspect]  # the round's suspicious statements, most suspicious first
    round_no: int
    files: RunFiles


class CandidateSource(Protocol):
    kind: str  # the generator name candidates carry

    def limit(self, budget: int) -> int:
        """How many candidates this source may queue in one round, given the run's `candidates` setting."""
        ...

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        """At most `limit` candidates, the likeliest first."""
        ...


class Mutations:
    """Operator and constant mutations of the suspicious lines."""

    kind = "mutation"

    def limit(self, budget: int) -> int:
        return budget * 4

    def generate(self, request: Request, limit: int) -> list[Candidate]:
        out: list[Candidate] = []
        per_line: list[list[Candidate]] = []
        for suspect in request.window:
            text = request.files.text(suspect.path)
            if text is None:
                continue
            per_line.append([
                Candidate(suspect.path, new, self.kind, suspect.line, description, prior=suspect.score)
                for new, description in mutations(text, suspect.line, suspect.last)
            ])
        # Round-robin over lines so a long line full of operators cannot use the whole budget.
        index = 0
        while len(out) < limit and any(index < len(c) for c in per_line):
            for cands in per_line:
                if index < len(cands) and len(out) < limit:
                    out.append(cands[index])
            index += 1
        return out


def default_sources() -> list[CandidateSource]:
    return [Mutations()]
