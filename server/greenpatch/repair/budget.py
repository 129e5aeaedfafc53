"""How likely each kind of candidate is to be the fix, and the order candidates are tried in.

A candidate is tried earlier the more likely it is: how suspicious its place is (localization's score), times how
often real fixes are of its kind (a prior per kind), times how likely it is among the edits of its kind at that
place (the generator's own `weight`, best first). Budgeting by likelihood rather than round-robin keeps a long line
full of operators, or a call with many possible keyword arguments, from using the whole budget, while the kinds
real bug fixes are mostly made of get their share first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

# The kinds a candidate can have. Each reaches the JSON report (`Fix.kind`) so fixes per kind can be counted.
MUTATION = "mutation"  # one operator, constant, bound or statement changed (repair/mutate.py)
CALL_ARGS = "call-args"  # a keyword argument added, an argument dropped, two swapped
CONDITION = "condition"  # a condition strengthened, weakened, negated or made None-aware; a None guard
LITERAL = "literal"  # a string or regular-expression literal edited
LOOKUP = "lookup"  # a lookup made tolerant of a missing key: `d[k]` -> `d.get(k)`
OPEN_MODE = "open-mode"  # a file opened in another mode
INIT = "init"  # an attribute the failure says is missing set in its class's __init__ (repair/initialize.py)
INFILL = "infill"  # one statement masked and filled by the model
INFILL_LINES = "infill-lines"  # two or three statements masked and filled by the model
INSERT = "insert"  # a new line inserted by the model at a suspicious point
REWRITE = "rewrite"  # the function rewritten by the model
SYNTAX = "syntax"  # a line completed to make the file parse

# Shares of one-hunk bug fixes by pattern, rounded from Pan, Kim and Whitehead 2009 ("Toward an understanding of
# bug fix patterns", seven Java projects): method-call argument changes (MC-DAP, MC-DNP) and if-condition changes
# (IF-CC, IF-APC, IF-APTC) are the most common, then assignment-expression changes and added method calls
# (AS-CE, SQ-AMO, SQ-AROB). The model-free kinds here split those shares by what they cover; the model's kinds
# cover any edit of their span, so they get the rest. Only the ratios matter.
PRIORS: dict[str, float] = {
    MUTATION: 0.20,  # AS-CE and the operator half of IF-CC
    CALL_ARGS: 0.18,  # MC-DAP + MC-DNP
    CONDITION: 0.14,  # IF-CC clause changes, IF-APC, IF-APTC
    LITERAL: 0.06,  # the constant-argument part of MC-DAP and AS-CE
    LOOKUP: 0.03,
    OPEN_MODE: 0.02,
    INIT: 0.30,  # only made when the failure names the missing attribute: then it is the likeliest fix
    INFILL: 0.15,
    INFILL_LINES: 0.06,
    INSERT: 0.10,  # SQ-AMO, SQ-AROB and added precondition statements
    REWRITE: 0.06,
    SYNTAX: 1.0,  # only ever competes with itself
}


@dataclass(frozen=True)
class Edit:
    """One model-free edit of a file: the whole new text, what it does, its kind and how likely it is among the
    edits its generator made at this place (1.0 the most likely, towards 0 the least)."""

    text: str
    description: str
    kind: str
    weight: float = 1.0


def likelihood(kind: str, suspicion: float, weight: float = 1.0) -> float:
    """The order key of a candidate: higher is tried first. A place with no suspiciousness score still ranks its
    edits by kind and weight."""
    return max(suspicion, 0.05) * PRIORS.get(kind, 0.05) * max(weight, 0.01)


T = TypeVar("T")


def by_likelihood(items: Iterable[T], key: Sequence[float] | None = None, *, limit: int | None = None) -> list[T]:
    """`items` sorted by their likelihood (`key`, parallel to items), highest first; ties keep their order."""
    listed = list(items)
    keys = list(key) if key is not None else [0.0] * len(listed)
    order = sorted(range(len(listed)), key=lambda i: -keys[i])
    chosen = [listed[i] for i in order]
    return chosen if limit is None else chosen[:limit]


def decay(rank: int) -> float:
    """The weight of the rank-th (0-based) edit of one generator at one place: the first ideas are the likely ones."""
    return 1.0 / (1.0 + 0.5 * rank)
