"""One repair run: failing tests -> groups -> candidates -> verify in the sandbox -> rank -> fixes.

A RepairRun owns everything one run changes (the files it read, its clock, the model's jobs, the report so far) and
is used once. Nothing is shown unless it passed: a candidate becomes a Fix only when the failing tests it targets
pass and no test that passed before fails. Every loop is bounded (candidates per round, rounds, seconds) and the
cancel token is checked between candidates.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from greenpatch.cancel import CancelToken
from greenpatch.config import RepairSettings
from greenpatch.engine.base import ChatMessage
from greenpatch.errors import Cancelled
from greenpatch.repair.candidates import (
    Candidate,
    adds_dead_code,
    adds_undefined_name,
    changed_range,
    changed_tokens,
    digest,
    new_imports_exist,
    normalized,
    replace_lines,
    unified_diff,
)
from greenpatch.repair.clock import RunClock
from greenpatch.repair.edit_sources import default_sources
from greenpatch.repair.failure import Call, FailureReader
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group, GroupKind, Verified
from greenpatch.repair.jobs import ModelJobs, Pending
from greenpatch.repair.localize import Coverage, localize
from greenpatch.repair.paths import is_test_path
from greenpatch.repair.prompt_context import PromptContext
from greenpatch.repair.rank import WEAK_TESTS, Ranker, covering_tests
from greenpatch.repair.sources import CandidateSource, Request
from greenpatch.repair.types import Failure, Fix, RepairReport
from greenpatch.verify.types import Changes, TestResult, TestRun

if TYPE_CHECKING:
    from greenpatch.engine.worker import EngineWorker
    from greenpatch.verify.verifier import Verifier

Progress = Callable[[str, "int | None"], None]

LINES_PER_ROUND = 4  # suspicious statements each round works on
ENOUGH = 3  # stop verifying a round once this many distinct candidates passed
EXTRA_AFTER_FIRST = 2  # batches verified after the first passing candidate (alternatives for ranking)
MAX_FIXES = 3  # fixes reported per failure group
SEARCH_SUSPECTS = 20  # suspicious statements a report's `search` lists per group


@dataclass
class _GroupWork:
    """One group's repair in progress."""

    group: Group
    target_ids: list[str]
    seen: dict[str, Candidate]  # normalized program -> candidate (tried or queued): never run twice
    plausible: list[Verified] = field(default_factory=list)  # passed, in the order found (ranked at the end)
    feedback: list[ChatMessage] = field(default_factory=list)  # the rewrite's conversation
    last_error: str = ""  # what the last failing candidate did (told to the rewrite)


class RepairRun:
    def __init__(
        self, root: Path, verifier: Verifier, engine: EngineWorker | None, settings: RepairSettings, *,
        changes: Changes | None = None, cancel: CancelToken | None = None, progress: Progress | None = None,
        engine_error: str = "",
    ) -> None:
        self.started = time.monotonic()
        self.root = root
        self.verifier = verifier
        self.settings = settings
        self.report = RepairReport()  # so far: after a Cancelled, the fixes verified before it and every failure
        self.clock = RunClock(cancel or CancelToken(), self.started + max(1.0, settings.max_seconds), self.report)
        self.files = RunFiles(root, changes or {})
        self.failures = FailureReader(root, self.files.test_text, self.files.changes)  # what each failure tells
        self.context = PromptContext(self.files, self.failures)  # what the model's prompts are given besides the code
        self.jobs = ModelJobs(engine, self.files, self.clock, self.context, engine_error=engine_error)
        self.ranker = Ranker(self.files, verifier, self.jobs, self.clock, self._step)
        self.sources: list[CandidateSource] = default_sources()  # model-free candidates, each with its budget
        self._progress: Progress = progress or (lambda message, percent: None)
        self._verified = 0  # candidates that passed, all groups
        self._tried = self._queued = 0  # candidates of the current group
        self._where = ""
        self._made: dict[str, dict[str, object]] = {}  # the current group's candidates in report.search, by key
        self._group_no = (1, 1)
        self._baseline = TestRun()
        self._passed_before: set[str] = set()

    def execute(self, *, focus: list[str] | None = None, baseline: TestRun | None = None) -> RepairReport:
        report, clock = self.report, self.clock
        if baseline is None:
            self._step("baseline tests", "running the tests", 0)
            with clock.spent.spending("tests"):
                baseline = self.verifier.baseline(changes=self.files.changes or None, cancel=clock.cancel,
                                                  deadline=clock.deadline)
        clock.check_cancel()
        report.level = baseline.level
        report.tests_run = len(baseline.results)
        failing = baseline.failed  # flaky tests and the environment's failures are never targets
        report.unreachable = [Failure(r.nodeid, r.message, cause=r.cause) for r in baseline.unreachable]
        # A syntax error shows up as a collection error (a node id without "::") or as a broken run.
        collection = [r for r in failing if "::" not in r.nodeid]
        broken = self.files.unparsable(focus) if (baseline.error or collection) else []
        ignored = [rel for rel in broken if not _named_by(rel, collection, baseline.error)]
        if ignored:
            broken = [rel for rel in broken if rel not in ignored]
            shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
            report.notes.append(f"not repaired: {shown} {'does' if len(ignored) == 1 else 'do'} not parse as "
                                "Python 3 and no test imports it (a template or Python 2 code?)")
        if baseline.timed_out and not failing and not broken:
            # cut short before any test failed: that is no sign that nothing fails
            report.timed_out = True
            report.error = baseline.error or "the tests did not finish within the time limit"
            report.notes.append("stopped at the time limit")
            return self._done()
        if baseline.error and not failing and not broken:
            report.error = baseline.error
            return self._done()
        if not failing and not broken:
            return self._done()
        self._baseline = baseline
        self._passed_before = {r.nodeid for r in baseline.results if r.outcome == "passed"}
        self._step("localizing", f"{len(failing)} failing test{'s' if len(failing) != 1 else ''}", 0)
        coverage = self.verifier.line_coverage() or {}
        focus_set = {f for f in (focus or []) if not is_test_path(f)} or None
        groups, lost = self._group([r for r in failing if "::" in r.nodeid], coverage, focus_set)
        for rel in broken:
            message = (collection[0].message if collection else baseline.error) or "syntax error"
            results = collection or [TestResult(nodeid=rel, outcome="error", message=message)]
            groups.insert(0, Group(rel, "", results, kind=GroupKind.SYNTAX))
            collection = []  # the first broken file owns the collection errors
        if not broken:
            lost.extend(collection)
        for result in lost:
            report.failures.append(self._failure(result, None))
        fixed: set[str] = set()
        try:
            for number, group in enumerate(groups):
                self._group_no = (number + 1, len(groups))
                if all(r.nodeid in fixed for r in group.failing):
                    continue
                if clock.time_up():
                    break
                fixes = self._repair_group(group)
                report.fixes.extend(fixes)
                if fixes:
                    fixed |= set(fixes[0].fixes)
            clock.time_up()  # the run ended past its limit: some work was cut short
        finally:
            # On cancel too: every failure is listed, and what was verified before it stays in the report.
            for group in groups:
                for result in group.failing:
                    fix = next((f for f in report.fixes if result.nodeid in f.fixes), None)
                    report.failures.append(self._failure(result, group, fix))
            report.fixes.sort(key=lambda f: (not f.verified, -len(f.fixes)))
            if self.jobs.engine_error:
                report.notes.append(self.jobs.engine_error)
            self._finish_times()
        self._step("done", "", 100)
        return report

    def _done(self) -> RepairReport:
        self._finish_times()
        return self.report

    def _finish_times(self) -> None:
        self.report.seconds = time.monotonic() - self.started
        self.report.timing = self.clock.spent.summary(self.report.seconds)
        self.report.model_tokens = dict(self.clock.spent.tokens)

    # --- progress ----------------------------------------------------------------------------------------

    def _step(self, phase: str, detail: str = "", percent: int | None = None) -> None:
        """Progress a user can follow a long run by: the phase first (the CLI's --verbose prints a line when it
        changes), then what is being worked on, candidates verified, and the time left."""
        facts = [detail] if detail else []
        if self.report.candidates_tried:
            facts.append(f"{self._verified} verified of {self.report.candidates_tried} tried")
        facts.append(f"{max(0.0, self.clock.left()):.0f}s left")
        self._progress(f"{phase} — {', '.join(facts)}", percent)

    def _group_percent(self) -> int:
        number, total = self._group_no
        share = self._tried / self._queued if self._queued else 0.0
        return int(100 * (number - 1 + min(1.0, share)) / max(1, total))

    # --- localize ----------------------------------------------------------------------------------------

    def _group(
        self, failing: list[TestResult], coverage: Coverage, focus: set[str] | None
    ) -> tuple[list[Group], list[TestResult]]:
        passing = [nodeid for nodeid in self._passed_before]
        files = self.files.python_files()
        groups: dict[tuple[str, str], Group] = {}
        lost: list[TestResult] = []
        calls: dict[str, list[tuple[Call, int]]] = {}  # what each localized test reaches, read when localized
        # Failures raised at the same line of the package are one bug: one localization for all of them, not one
        # per test (python-dateutil: 343 tests failing at one line took 72 s to localize one by one).
        sites: dict[tuple[str, int], tuple[str, str] | None] = {}
        for result in failing:
            site = _crash_site(result)
            if site is not None and site in sites:
                key = sites[site]
                if key is None:
                    lost.append(result)
                else:
                    groups[key].failing.append(result)
                continue
            if self.clock.out_of_time():
                lost.append(result)
                continue
            calls[result.nodeid] = self.failures.reached(result)
            found = localize([result], passing, coverage, self.files.map, focus, files, self.files.test_text, calls)
            if not found:
                lost.append(result)
                if site is not None:
                    sites[site] = None
                continue
            top = found[0]
            key = (top.path, top.function.name)
            groups.setdefault(key, Group(top.path, top.function.name, []))
            groups[key].failing.append(result)
            if site is not None:
                sites[site] = key
        for group in groups.values():
            # the spectrum of a few of many tests failing alike says as much as all of them, at a fraction of
            # the time
            sample = _spread(group.failing, LOCALIZE_TESTS)
            calls.update({r.nodeid: self.failures.reached(r) for r in sample if r.nodeid not in calls})
            group.suspects = [
                s for s in localize(sample, passing, coverage, self.files.map, focus, files,
                                    self.files.test_text, calls)
            ]
            # the group's own function first, then other suspects
            group.suspects.sort(key=lambda s: (s.path != group.path or s.function.name != group.function,
                                               -s.score, -s.line))
            group.covering = covering_tests(self.files, group, coverage)
        return list(groups.values()), lost

    def _failure(self, result: TestResult, group: Group | None, fix: Fix | None = None) -> Failure:
        path: str | None = None
        line: int | None = None
        if fix is not None:
            path, line = fix.path, fix.changed_range[0] + 1
        elif group is not None and group.suspects:
            path, line = group.suspects[0].path, group.suspects[0].line
        elif group is not None and group.kind is GroupKind.SYNTAX:
            path, line = group.path, _syntax_line(self.files.text(group.path) or "")
        else:
            frames = [f for f in result.frames if not is_test_path(f.path)]
            if frames:
                path, line = frames[-1].path, frames[-1].line
        return Failure(result.nodeid, result.message, path, line)

    # --- one group ---------------------------------------------------------------------------------------

    def _repair_group(self, group: Group) -> list[Fix]:
        self._tried = self._queued = 0
        self._where = group.where
        if group.kind is GroupKind.SYNTAX:
            return self._repair_syntax(group)
        work = _GroupWork(group, [r.nodeid for r in group.failing], {})
        self._made = {}
        self.report.search.append({
            "where": group.where,
            "suspects": [{"path": s.path, "line": s.line, "last": s.last, "score": round(s.score, 4)}
                         for s in group.suspects[:SEARCH_SUSPECTS]],
            "candidates": [],
        })
        for rel in {s.path for s in group.suspects}:
            text = self.files.text(rel)
            if text is not None and (key := normalized(text)):
                work.seen[f"{rel}\0{key}"] = Candidate(rel, text, "original", 0)
        work.last_error = "; ".join(r.message.splitlines()[0] for r in group.failing if r.message)[:300]
        try:
            self._rounds(work)
            if work.plausible:
                self.ranker.rank(group, work.plausible)
        except Cancelled:
            if work.plausible:  # verified before the cancel: kept, unranked (ranking would run more tests)
                self.report.fixes.extend(self._fix(group, v, work.target_ids) for v in work.plausible[:MAX_FIXES])
            raise
        return [self._fix(group, v, work.target_ids) for v in work.plausible[:MAX_FIXES]]

    def _rounds(self, work: _GroupWork) -> None:
        group = work.group
        budget = max(1, self.settings.candidates)
        weak = group.covering is not None and group.covering < WEAK_TESTS
        for round_no in range(1, max(1, self.settings.rounds) + 1):
            self.clock.check_cancel()
            if self.clock.time_up():
                break
            self.report.rounds = max(self.report.rounds, round_no)
            window = group.suspects[(round_no - 1) * LINES_PER_ROUND: round_no * LINES_PER_ROUND]
            window = window or group.suspects[:LINES_PER_ROUND]
            pending = self.jobs.start(group, window, round_no, budget, work.feedback, work.last_error,
                                      earlier=group.suspects[: (round_no - 1) * LINES_PER_ROUND])
            request = Request(group, window, round_no, self.files)
            queue = [c for source in self.sources for c in source.generate(request, source.limit(budget))
                     ] if window else []
            # The likeliest model-free candidates first, then the model's (ready by then), then the rest: more
            # kinds of model-free edits must not keep the model's fills waiting behind unlikely ones.
            head, tail = (queue[: budget * 2], queue[budget * 2:]) if pending.futures else (queue, [])
            self._note(queue)
            self._verify(work, self._dedupe(head, work.seen))
            if pending.futures and not work.plausible:
                tail = self._while_model(work, pending, tail, round_no, budget)
            # With a verified fix in hand, the model's first fill of the most suspicious line has its say (it often
            # agrees with, or beats, what passed). Where few tests cover the code they can let a wrong mutation
            # through, so then every suspicious line gets its first fill: an alternative to compare on extra inputs.
            settle = (pending.first_fills if weak else 1) if work.plausible else 0
            model_candidates = self.jobs.finish(pending, settle=settle)
            self._note(model_candidates)
            # The model's candidates get their own allowance of extra batches: the mutants may have spent theirs,
            # and a fill that passes too is what tells a right fix from a wrong mutation.
            self._verify(work, self._dedupe(model_candidates, work.seen), enough=ENOUGH + 2)
            if not work.plausible and tail:
                self._verify(work, self._dedupe(tail, work.seen))
            if work.plausible:
                break

    def _while_model(self, work: _GroupWork, pending: Pending, tail: list[Candidate], round_no: int,
                     budget: int) -> list[Candidate]:
        """While the model works on this round's holes, verify the model-free candidates it would otherwise keep
        waiting: the rest of this round's, then those of the suspects the next rounds work on (tried then, they
        are not tried again). Model-free edits fixed 4 of 12 real slips in ~15 s alone, while with the model the
        run waited for round 1's fills before round 2's lines were looked at (`bench real`: toolz's dropped `not`,
        fixed in 8 s without the model, not in 120 s with it). Returns this round's candidates not tried."""
        group = work.group
        chunk = max(1, getattr(self.verifier, "parallel", 2))
        later = [group.suspects[n * LINES_PER_ROUND: (n + 1) * LINES_PER_ROUND]
                 for n in range(round_no, max(1, self.settings.rounds))]
        sources: list[list[Candidate]] = [tail]
        for window in later:
            if window:
                request = Request(group, window, round_no + 1, self.files)
                sources.append([c for source in self.sources for c in source.generate(request, source.limit(budget))])
        left: list[Candidate] = []
        for number, queue in enumerate(sources):
            if number:
                self._note(queue)
            for start in range(0, len(queue), chunk):
                if pending.done() or work.plausible or self.clock.out_of_time():
                    if number == 0:
                        left = queue[start:]
                    return left
                self._verify(work, self._dedupe(queue[start: start + chunk], work.seen))
        return left

    def _note(self, candidates: list[Candidate], tried: bool = False) -> None:
        """Candidates made (and tried) for the current group, in report.search (what `bench real` tells its misses
        by cause from)."""
        if not self.report.search:
            return
        made = self.report.search[-1]["candidates"]
        assert isinstance(made, list)
        for cand in candidates:
            key = f"{cand.path}\0{digest(cand.text)}"
            entry = self._made.get(key)
            if entry is None:
                entry = {"path": cand.path, "line": cand.line, "kind": cand.kind or cand.generator,
                         "key": digest(cand.text), "tried": False}
                self._made[key] = entry
                made.append(entry)
            entry["tried"] = bool(entry["tried"]) or tried

    def _dedupe(self, candidates: list[Candidate], seen: dict[str, Candidate]) -> list[Candidate]:
        fresh: list[Candidate] = []
        for cand in candidates:
            key = normalized(cand.text)
            if key is None:
                continue  # does not parse
            full = f"{cand.path}\0{key}"
            if full in seen:
                other = seen[full]
                other.votes += 1
                other.generators.add(cand.generator)
                if cand.logprob is not None and (other.logprob is None or cand.logprob > other.logprob):
                    other.logprob = cand.logprob
                continue
            original = self.files.text(cand.path) or ""
            if (not new_imports_exist(original, cand.text, self.root) or adds_dead_code(original, cand.text)
                    or adds_undefined_name(original, cand.text)):
                continue
            cand.key = full
            cand.generators.add(cand.generator)
            seen[full] = cand
            fresh.append(cand)

        return fresh

    # --- verify ------------------------------------------------------------------------------------------

    def _verify(self, work: _GroupWork, candidates: list[Candidate], enough: int = ENOUGH) -> None:
        """Two stages: the failing tests first (cheap, rejects most), then every affected test for survivors.
        What passes is added to `work.plausible` as soon as it has passed (a cancel keeps it). Once something
        has passed, at most `EXTRA_AFTER_FIRST` more batches of these candidates are verified, for ranking."""
        extra_batches = EXTRA_AFTER_FIRST
        target_ids = work.target_ids
        self._queued += len(candidates)
        chunk = max(1, getattr(self.verifier, "parallel", 2))
        for start in range(0, len(candidates), chunk):
            self.clock.check_cancel()
            if self.clock.time_up() or len(work.plausible) >= enough:
                break
            if work.plausible:
                if extra_batches <= 0:
                    break
                extra_batches -= 1
            batch = candidates[start: start + chunk]
            self._step(f"verifying {self._where}", f"candidates {self._tried + 1}-{self._tried + len(batch)}"
                       f"/{self._queued}", self._group_percent())
            self.report.candidates_tried += len(batch)
            self._tried += len(batch)
            for cand in batch:
                self._note([cand], tried=True)
            # Every target must pass: a candidate that fixes some of a group's failures passed the tests on
            # real projects while it was wrong (`bench real`: a condition that fixed 1 of 3 failures of one slip).
            with self.clock.spent.spending("tests"):
                runs = self.verifier.run_many([self.files.overlay(c) for c in batch], tests=target_ids,
                                              stop_at_first_failure=True, cancel=self.clock.cancel,
                                              deadline=self.clock.deadline)
            self.clock.check_cancel()
            survivors: list[tuple[Candidate, list[str]]] = []
            for cand, run in zip(batch, runs):
                fixed = _passing_targets(run, target_ids)
                if len(fixed) == len(target_ids):
                    survivors.append((cand, fixed))
                else:
                    work.last_error = _describe(run) or work.last_error
            if not survivors:
                continue
            others_failing = any(r.outcome in ("failed", "error") and r.nodeid not in target_ids
                                 for r in self._baseline.results)
            with self.clock.spent.spending("tests"):
                full = self.verifier.run_many([self.files.overlay(c) for c, _ in survivors], tests=None,
                                              stop_at_first_failure=not others_failing, cancel=self.clock.cancel,
                                              deadline=self.clock.deadline)
            self.clock.check_cancel()
            for (cand, fixed), run in zip(survivors, full):
                if self._no_regressions(run, fixed):
                    text = self.files.text(cand.path) or ""
                    work.plausible.append(Verified(cand, run, changed_tokens(text, cand.text)))
                    self._verified += 1
                else:
                    work.last_error = _describe(run) or work.last_error

    def _no_regressions(self, run: TestRun, target_ids: list[str]) -> bool:
        if run.error or run.timed_out:
            return False
        for result in run.results:
            if result.outcome in ("failed", "error") and (result.nodeid in self._passed_before
                                                          or result.nodeid in target_ids):
                return False
            if result.outcome in ("failed", "error") and result.nodeid not in {
                r.nodeid for r in self._baseline.results
            }:
                return False  # a test the baseline did not know (new, or renamed) must pass too
        return True

    # --- syntax errors -----------------------------------------------------------------------------------

    def _repair_syntax(self, group: Group) -> list[Fix]:
        text = self.files.text(group.path)
        if text is None:
            return []
        try:
            compile(text, group.path, "exec")
            return []
        except SyntaxError as exc:
            line = exc.lineno or 1
        candidates: list[Candidate] = []
        lines = text.split("\n")
        for at in dict.fromkeys(n for n in (line, line - 1) if 1 <= n <= len(lines)):
            current = lines[at - 1]
            stripped = current.rstrip()
            edits = [stripped + ":", stripped + ")", stripped + "]", stripped + "}", stripped[:-1] if stripped else ""]
            for new in edits:
                if new != current:
                    candidates.append(Candidate(group.path, replace_lines(text, at, at, [new]), "mutation", at,
                                                f"line {at} completed"))
        fresh = self._dedupe(candidates, {})
        verified: list[Verified] = []
        tried = fresh[: self.settings.candidates * 2]
        self._queued = len(tried)
        for cand in tried:
            self.clock.check_cancel()
            if self.clock.time_up():
                break
            self._step(f"verifying {self._where}", f"candidates {self._tried + 1}/{self._queued}",
                       self._group_percent())
            self._tried += 1
            self.report.candidates_tried += 1
            with self.clock.spent.spending("tests"):
                run = self.verifier.run(self.files.overlay(cand), stop_at_first_failure=True,
                                        cancel=self.clock.cancel, deadline=self.clock.deadline)
            if not run.error and not run.timed_out and not run.failed:
                verified.append(Verified(cand, run, changed_tokens(text, cand.text)))
                self._verified += 1
                break
        self.ranker.rank(group, verified)
        return [self._fix(group, v, [r.nodeid for r in group.failing]) for v in verified[:1]]

    # --- report ------------------------------------------------------------------------------------------

    def _now_passing(self, run: TestRun, target_ids: list[str]) -> list[str]:
        """The baseline's failing tests this candidate makes pass (its targets first, and others it fixes too)."""
        failing_before = {r.nodeid for r in self._baseline.results if r.outcome in ("failed", "error")}
        passing_now = {r.nodeid for r in run.results if r.outcome == "passed"}
        return list(dict.fromkeys([t for t in target_ids if t in passing_now] + sorted(failing_before & passing_now)))

    def _fix(self, group: Group, v: Verified, target_ids: list[str]) -> Fix:
        cand = v.candidate
        original = self.files.text(cand.path) or ""
        first, last = changed_range(original, cand.text)
        before, after = self.files.on_disk(cand.path, original), self.files.on_disk(cand.path, cand.text)
        passed = sum(1 for r in v.run.results if r.outcome == "passed")
        where = group.function if group.kind is GroupKind.FUNCTION else cand.path
        sm = self.files.map(cand.path) if group.kind is GroupKind.FUNCTION else None
        inside = [f for f in (sm.functions if sm else []) if f.first <= first + 1 <= f.last]
        if inside:  # the function the fix changes: a fix may land outside the group's own (an __init__, a callee)
            where = min(inside, key=lambda f: f.last - f.first).name
        what = cand.description or f"change in {where}"
        title = f"Fix {where}: {what} ({passed} test{'s' if passed != 1 else ''} pass)"
        note = v.note
        return Fix(
            path=cand.path, new_text=after, diff=unified_diff(cand.path, before, after), title=title,
            generator=cand.generator, tests_run=len(v.run.results), tests_passed=passed, verified=True,
            note=note, kind=cand.kind or cand.generator, changed_range=(first, last),
            fixes=self._now_passing(v.run, target_ids), original=before,
            score={"changed_tokens": v.tokens, "votes": cand.votes, "generators": sorted(cand.generators),
                   "logprob": cand.logprob, "naturalness": None if v.natural is None else round(v.natural, 3),
                   "behaviour_group": v.behaviour, "test_seconds": round(v.run.seconds, 3),
                   "suspiciousness": round(cand.prior, 3), "likelihood": round(cand.likelihood, 4)},
        )


def _passing_targets(run: TestRun, target_ids: list[str]) -> list[str]:
    if run.error or run.timed_out:
        return []
    outcomes = {r.nodeid: r.outcome for r in run.results}
    return [t for t in target_ids if outcomes.get(t) == "passed"]


LOCALIZE_TESTS = 40  # failing tests of one group a localization reads at most


def _crash_site(result: TestResult) -> tuple[str, int] | None:
    """The line of the package (not a test) a failure was raised at; None for one raised in the test itself."""
    frames = [f for f in result.frames if not is_test_path(f.path)]
    return (frames[-1].path, frames[-1].line) if frames else None


def _spread(items: list[TestResult], most: int) -> list[TestResult]:
    """At most `most` of `items`, spread evenly over them (the first always among them)."""
    if len(items) <= most:
        return items
    step = len(items) / most
    return [items[int(i * step)] for i in range(most)]


def _named_by(rel: str, collection: list[TestResult], error: str) -> bool:
    """A file that does not parse is the user's bug only when the tests reach it: a collection error of that file,
    or one whose traceback (or pytest's own start-up error) names it. Templates (`{{cookiecutter.name}}/x.py`) and
    Python 2 examples that no test imports fail no test, and repairing them is not what the user asked for."""
    pattern = re.compile(r"(?:^|[\s\"'(/\\])" + re.escape(rel) + r"(?=[\"':,\s)]|$)", re.MULTILINE)
    return any(r.nodeid == rel or pattern.search(r.message or "") for r in collection) or bool(
        error and pattern.search(error)
    )


def _syntax_line(text: str) -> int | None:
    try:
        compile(text, "<file>", "exec")
    except SyntaxError as exc:
        return exc.lineno
    return None


def _describe(run: TestRun) -> str:
    if run.error:
        return run.error.splitlines()[0][:300] if run.error.strip() else "the tests could not run"
    if run.timed_out:
        return "the tests timed out"
    failed = run.failed
    if failed:
        r = failed[0]
        return f"{r.nodeid.split('::')[-1]}: {r.message.splitlines()[0][:250] if r.message else 'failed'}"
    return ""

