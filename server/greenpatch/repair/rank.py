"""Ranking the candidates that passed: by behaviour on extra inputs (CodeT), then how natural the model finds the
changed lines in place (Coder-Reviewer), then the smaller edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from greenpatch.repair import probe
from greenpatch.repair.clock import RunClock
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group, GroupKind, Verified
from greenpatch.repair.infill import hole_window, window_text
from greenpatch.repair.jobs import Hole, ModelJobs
from greenpatch.repair.localize import Coverage
from greenpatch.repair.paths import test_file_of
from greenpatch.repair.prompt_context import HOLE_WINDOW
from greenpatch.workspace.files import differing_span

if TYPE_CHECKING:
    from greenpatch.verify.verifier import Verifier

PROBE_INPUTS = 24
WEAK_TESTS = 3  # fewer tests than this covering the function: they may let a wrong fix through


class Ranker:
    def __init__(
        self, files: RunFiles, verifier: Verifier, jobs: ModelJobs, clock: RunClock, step: Callable[[str, str], None]
    ) -> None:
        self.files = files
        self.verifier = verifier
        self.jobs = jobs
        self.clock = clock
        self._step = step  # progress: phase, detail

    def rank(self, group: Group, plausible: list[Verified]) -> None:
        """Sort the passing candidates best first, and note what the user should know about them."""
        if len(plausible) > 1 and group.kind is GroupKind.FUNCTION and not self.clock.out_of_time():
            self.compare_behaviour(group, plausible)
            self.score_naturalness(plausible, group)
        plausible.sort(key=lambda v: (
            -v.behaviour,
            # Coder-Reviewer style: among fixes the tests cannot tell apart, the one the model finds most natural
            # in place (a 0.1-nat step per token: finer differences are noise), then the smaller edit.
            -(round(v.natural, 1) if v.natural is not None else -99.0),
            v.tokens,
            -v.candidate.votes,
            -v.candidate.likelihood,  # e.g. forwarding the caller's own `strict` rather than a constant
            -(v.candidate.logprob if v.candidate.logprob is not None else -5.0),
            round(v.run.seconds),  # whole seconds: finer differences are noise; ties keep the order found
        ))
        notes = []
        if group.covering is not None and group.covering < WEAK_TESTS:
            notes.append(f"few tests cover this code ({group.covering})")
        for v in plausible:
            v.note = "; ".join(notes + ([v.note] if v.note else []))

    def score_naturalness(self, plausible: list[Verified], group: Group | None = None) -> None:
        """Score every passing candidate's changed lines with the model, the same way for every generator
        (model-free mutations included), so that ranking compares like with like."""
        holes: list[Hole] = []
        for v in plausible:
            old = (self.files.text(v.candidate.path) or "").split("\n")
            new = v.candidate.text.split("\n")
            start, _, end_new = differing_span(old, new)
            middle = "\n".join(new[start:end_new])
            # the changed lines in the window a fill of them would see (the whole file where there is none): a
            # 1,000-line module scored whole costs ~4,000 prompt tokens per candidate
            window = hole_window(v.candidate.text, start + 1, max(start + 1, end_new)) if HOLE_WINDOW else None
            if window is not None and window.first <= start + 1 and end_new <= window.last:
                prefix, suffix = window_text(new, window, start + 1, end_new)
                holes.append((prefix, middle, suffix if middle else suffix[1:]))
                continue
            prefix = "\n".join(new[:start]) + "\n"
            rest = "\n".join(new[end_new:])
            holes.append((prefix, middle, "\n" + rest if middle else rest))
        scores = self.jobs.score(holes, group)
        if scores is None:
            return
        if len(scores) == len(plausible) and all(scores):
            for v, values in zip(plausible, scores):
                v.natural = sum(values) / len(values)

    def compare_behaviour(self, group: Group, plausible: list[Verified]) -> None:
        """CodeT-style: group the passing candidates by their outputs on extra inputs; the biggest group wins."""
        result = group.failing[0]
        test_rel = test_file_of(result.nodeid)
        test_text = self.files.text(test_rel) or ""
        shapes = probe.call_examples(test_text, group.function)
        if shapes is None:
            return
        callee, examples = shapes
        inputs = probe.extra_inputs(examples, PROBE_INPUTS)
        probe_rel = probe.probe_path(test_rel)
        probe_src = probe.probe_source(test_text, callee, inputs)
        overlays = []
        for v in plausible:
            overlay = self.files.overlay(v.candidate)
            overlay[probe_rel] = probe_src
            overlays.append(overlay)
        self._step("comparing the passing candidates", "on extra inputs")
        with self.clock.spent.spending("tests"):
            runs = self.verifier.run_many(overlays, tests=[f"{probe_rel}::test_greenpatch_probe"],
                                          stop_at_first_failure=True, cancel=self.clock.cancel,
                                          deadline=self.clock.deadline)
        self.clock.check_cancel()
        behaviours: list[tuple[str, ...] | None] = []
        for run in runs:
            found = None
            for r in run.results:
                found = probe.digests(r.message)
            behaviours.append(found)
        known = [b for b in behaviours if b is not None]
        if len(known) < 2:
            return
        for v, b in zip(plausible, behaviours):
            v.behaviour = sum(v2.candidate.votes for v2, b2 in zip(plausible, behaviours) if b2 == b) if b else 0
        distinct = set(known)
        if len(distinct) > 1:
            note = f"candidates disagree on extra inputs ({len(distinct)} behaviours among {len(known)} fixes)"
            for v in plausible:
                v.note = note


def covering_tests(files: RunFiles, group: Group, coverage: Coverage) -> int | None:
    """How many tests run the group's function (None: no coverage data, or the function is not found)."""
    if not coverage:
        return None
    sm = files.map(group.path)
    fn = next((f for f in sm.functions if f.name == group.function), None) if sm else None
    if fn is None:
        return None
    return sum(1 for by_file in coverage.values()
               if any(fn.first <= line <= fn.last for line in by_file.get(group.path, ())))
