"""failing tests -> localize -> candidates (mutation, infill, rewrite) -> verify in the sandbox -> rank -> fixes.

Nothing is shown unless it passed: a candidate becomes a Fix only when the failing tests it targets pass and no
test that passed before fails. Every loop is bounded (candidates per round, rounds, seconds) and the cancel token
is checked between candidates.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenpatch.cancel import CancelToken, LinkedToken
from greenpatch.config import RepairSettings
from greenpatch.engine.base import ChatMessage, Engine
from greenpatch.errors import Cancelled, EngineUnavailable, GreenpatchError, ModelError, ModelNotInstalled
from greenpatch.repair import infill, probe, prompt_context, rewrite
from greenpatch.repair.candidates import (
    Candidate,
    changed_range,
    changed_tokens,
    new_imports_exist,
    normalized,
    replace_lines,
    unified_diff,
)
from greenpatch.repair.failure import Call, FailureFacts, describe, reached
from greenpatch.repair.localize import SourceMap, Suspect, is_test_path, localize, test_file_of
from greenpatch.repair.mutate import mutations
from greenpatch.repair.types import Failure, Fix, RepairReport
from greenpatch.verify.types import Changes, TestResult, TestRun
from greenpatch.workspace.files import BOM, SourceFile, differing_span, read_source
from greenpatch.workspace.index import WorkspaceIndex

if TYPE_CHECKING:
    from greenpatch.engine.worker import EngineWorker
    from greenpatch.verify.verifier import Verifier

log = logging.getLogger(__name__)

Progress = Callable[[str, "int | None"], None]

# How many suspicious statements each round works on, and model samples per statement (greedy first).
LINES_PER_ROUND = 4
SAMPLES = (2, 3)  # round 1, later rounds
ENOUGH = 3  # stop verifying a round once this many distinct candidates passed
EXTRA_AFTER_FIRST = 2  # batches verified after the first passing candidate (alternatives for ranking)
MAX_FIXES = 3  # fixes reported per failure group
PROBE_INPUTS = 24
WEAK_TESTS = 3  # fewer tests than this covering the function: they may let a wrong fix through
# What the infill prompt shows (repair/prompt_context.py): the hole's function and the module's imports instead of
# the whole file, the definitions the function uses, the failing test with its failure. Measured with the default
# model on real slips, side by side (see the commit that set them).
HOLE_WINDOW = True
INFILL_DEFINITIONS = True
INFILL_TEST = False


class _ModelStop(LinkedToken):
    """The model's cancel token: set when the repair is cancelled, at the repair's deadline, or when a verified fix
    makes the remaining samples not worth their time (the engine checks it after every token). The deadline is part
    of it so that no generation outlives the run: a model still decoding when the process exits crashes it."""

    def __init__(self, parent: CancelToken, deadline: float) -> None:
        super().__init__(parent)
        self._deadline = deadline

    def is_set(self) -> bool:
        return super().is_set() or time.monotonic() > self._deadline


@dataclass
class _Group:
    """Failing tests whose most suspicious code is the same function: repaired together."""

    path: str
    function: str
    failing: list[TestResult]
    suspects: list[Suspect] = field(default_factory=list)
    covering: int | None = None  # tests that run the function (None: no coverage data)


@dataclass
class _Verified:
    candidate: Candidate
    run: TestRun
    tokens: int
    behaviour: int = 0  # size of the group of candidates behaving the same on extra inputs
    natural: float | None = None  # mean log-probability the model gives the changed lines in place
    note: str = ""


class RepairPipeline:
    def __init__(
        self, root: Path, verifier: Verifier, engine: EngineWorker | None, settings: RepairSettings, *,
        model_name: str = "",
    ) -> None:
        self.root = Path(root).resolve()
        self.verifier = verifier
        self.engine = engine  # an EngineWorker (anything with submit(fn, cancel) -> Future), or None
        self.settings = settings
        self.model_name = model_name
        self._engine_error = ""

    # --- public ------------------------------------------------------------------------------------------

    def repair(
        self, *, changes: Changes | None = None, focus: list[str] | None = None, baseline: TestRun | None = None,
        cancel: CancelToken | None = None, progress: Progress | None = None,
    ) -> RepairReport:
        started = time.monotonic()
        self._deadline = started + max(1.0, self.settings.max_seconds)
        self._cancel = cancel or CancelToken()
        self._progress: Progress = progress or (lambda message, percent: None)
        self._changes = dict(changes or {})
        self._texts: dict[str, str] = {}
        self._sources: dict[str, SourceFile] = {}
        self._maps: dict[str, SourceMap] = {}
        report = RepairReport()
        self._report = report
        self._verified = 0  # candidates that passed, all groups
        self._tried = self._queued = 0  # candidates of the current group
        self._where = ""
        self._group_no = (1, 1)
        self._told: dict[str, FailureFacts] = {}
        self._index: WorkspaceIndex | None = None
        if baseline is None:
            self._step("baseline tests", "running the tests", 0)
            baseline = self.verifier.baseline(changes=self._changes or None, cancel=self._cancel,
                                              deadline=self._deadline)
        self._check_cancel()
        report.level = baseline.level
        report.tests_run = len(baseline.results)
        failing = baseline.failed  # flaky tests and the environment's failures are never targets
        report.unreachable = [Failure(r.nodeid, r.message, cause=r.cause) for r in baseline.unreachable]
        # A syntax error shows up as a collection error (a node id without "::") or as a broken run.
        collection = [r for r in failing if "::" not in r.nodeid]
        broken = self._unparsable(focus) if (baseline.error or collection) else []
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
            report.seconds = time.monotonic() - started
            return report
        if baseline.error and not failing and not broken:
            report.error = baseline.error
            report.seconds = time.monotonic() - started
            return report
        if not failing and not broken:
            report.seconds = time.monotonic() - started
            return report
        self._baseline = baseline
        self._passed_before = {r.nodeid for r in baseline.results if r.outcome == "passed"}
        self._step("localizing", f"{len(failing)} failing test{'s' if len(failing) != 1 else ''}", 0)
        coverage = self.verifier.line_coverage() or {}
        focus_set = {f for f in (focus or []) if not is_test_path(f)} or None
        groups, lost = self._group([r for r in failing if "::" in r.nodeid], coverage, focus_set)
        for rel in broken:
            message = (collection[0].message if collection else baseline.error) or "syntax error"
            results = collection or [TestResult(nodeid=rel, outcome="error", message=message)]
            groups.insert(0, _Group(rel, "<syntax>", results))
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
                if self._time_up():
                    break
                fixes = self._repair_group(group)
                report.fixes.extend(fixes)
                if fixes:
                    fixed |= set(fixes[0].fixes)
            self._time_up()  # the run ended past its limit: some work was cut short
        finally:
            # On cancel too: every failure is listed, and what was verified before it stays in the report.
            for group in groups:
                for result in group.failing:
                    fix = next((f for f in report.fixes if result.nodeid in f.fixes), None)
                    report.failures.append(self._failure(result, group, fix))
            report.fixes.sort(key=lambda f: (not f.verified, -len(f.fixes)))
            if self._engine_error:
                report.notes.append(self._engine_error)
            report.seconds = time.monotonic() - started
        self._step("done", "", 100)
        return report

    @property
    def report(self) -> RepairReport:
        """The report so far: after a Cancelled, the fixes verified before it and every failure."""
        return self._report

    # --- inputs ------------------------------------------------------------------------------------------

    def _text(self, rel: str) -> str | None:
        if rel in self._changes:
            return self._changes[rel]
        if rel not in self._texts:
            try:
                source = read_source(self.root / rel)
            except (OSError, GreenpatchError):
                return None
            if not source.utf8:
                return None  # the sandbox writes candidates as UTF-8: a latin-1 file with accents would change
            self._sources[rel] = source
            self._texts[rel] = source.lf_text  # repair works on "\n" lines; _on_disk puts the file's own back
        return self._texts[rel]

    def _on_disk(self, rel: str, text: str, *, bom: bool = False) -> str:
        """`text` in the form the file has on disk (its line endings; its BOM with bom=True): what a fix writes,
        and so what the sandbox verifies."""
        source = self._sources.get(rel)
        if source is None:
            return text
        return (BOM if bom and source.bom else "") + source.render(text)

    def _map(self, rel: str) -> SourceMap | None:
        if rel not in self._maps:
            text = self._text(rel)
            if text is None:
                return None
            self._maps[rel] = SourceMap(text)
        return self._maps[rel]

    def _python_files(self) -> list[str]:
        from greenpatch.verify.sandbox import source_files

        return sorted(rel for rel in source_files(self.root) if rel.endswith(".py")) + sorted(
            rel for rel in self._changes if rel.endswith(".py")
        )

    def _unparsable(self, focus: list[str] | None) -> list[str]:
        files = [f for f in focus or []] or self._python_files()
        return [rel for rel in dict.fromkeys(files) if rel.endswith(".py") and (m := self._map(rel)) and not m.ok]

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def _out_of_time(self) -> bool:
        return time.monotonic() > self._deadline

    def _step(self, phase: str, detail: str = "", percent: int | None = None) -> None:
        """Progress a user can follow a long run by: the phase first (the CLI's --verbose prints a line when it
        changes), then what is being worked on, candidates verified, and the time left."""
        facts = [detail] if detail else []
        if self._report.candidates_tried:
            facts.append(f"{self._verified} verified of {self._report.candidates_tried} tried")
        facts.append(f"{max(0.0, self._deadline - time.monotonic()):.0f}s left")
        self._progress(f"{phase} — {', '.join(facts)}", percent)

    def _group_percent(self) -> int:
        number, total = self._group_no
        share = self._tried / self._queued if self._queued else 0.0
        return int(100 * (number - 1 + min(1.0, share)) / max(1, total))

    def _time_up(self) -> bool:
        """The deadline has passed: the report says it was cut short (once)."""
        if not self._out_of_time():
            return False
        if not self._report.timed_out:
            self._report.timed_out = True
            self._report.notes.append("stopped at the time limit")
        return True

    # --- localize ----------------------------------------------------------------------------------------

    def _group(
        self, failing: list[TestResult], coverage: dict[str, dict[str, set[int]]], focus: set[str] | None
    ) -> tuple[list[_Group], list[TestResult]]:
        passing = [nodeid for nodeid in self._passed_before]
        files = self._python_files()
        groups: dict[tuple[str, str], _Group] = {}
        lost: list[TestResult] = []
        calls = {result.nodeid: self._reached(result) for result in failing}
        for result in failing:
            found = localize([result], passing, coverage, self._map, focus, files, self._test_text, calls)
            if not found:
                lost.append(result)
                continue
            top = found[0]
            key = (top.path, top.function.name)
            groups.setdefault(key, _Group(top.path, top.function.name, []))
            groups[key].failing.append(result)
        for group in groups.values():
            group.suspects = [
                s for s in localize(group.failing, passing, coverage, self._map, focus, files, self._test_text, calls)
            ]
            # the group's own function first, then other suspects
            group.suspects.sort(key=lambda s: (s.path != group.path or s.function.name != group.function,
                                               -s.score, -s.line))
            group.covering = self._covering_tests(group, coverage)
        return list(groups.values()), lost

    def _test_text(self, rel: str) -> str:
        return self._text(rel) or ""

    def _workspace(self) -> WorkspaceIndex:
        """The workspace's definitions (with the run's unsaved changes), built once per run: a few tenths of a
        second for a library of 60 modules."""
        if self._index is None:
            self._index = WorkspaceIndex(self.root)
            self._index.scan()
            for rel, text in self._changes.items():
                self._index.update_file(self.root / rel, text)
        return self._index

    def _facts(self, result: TestResult) -> FailureFacts:
        """What the failure tells (repair/failure.py), read once per test."""
        if result.nodeid not in self._told:
            self._told[result.nodeid] = describe(result, self._test_text(test_file_of(result.nodeid)),
                                                 self._workspace(), self.root)
        return self._told[result.nodeid]

    def _reached(self, result: TestResult) -> list[tuple[Call, int]]:
        return reached(self._facts(result), self._test_text, self._workspace(), self.root)

    def _failure(self, result: TestResult, group: _Group | None, fix: Fix | None = None) -> Failure:
        path: str | None = None
        line: int | None = None
        if fix is not None:
            path, line = fix.path, fix.changed_range[0] + 1
        elif group is not None and group.suspects:
            path, line = group.suspects[0].path, group.suspects[0].line
        elif group is not None and group.function == "<syntax>":
            path, line = group.path, _syntax_line(self._text(group.path) or "")
        else:
            frames = [f for f in result.frames if not is_test_path(f.path)]
            if frames:
                path, line = frames[-1].path, frames[-1].line
        return Failure(result.nodeid, result.message, path, line)

    # --- one group ---------------------------------------------------------------------------------------

    def _repair_group(self, group: _Group) -> list[Fix]:
        self._tried = self._queued = 0
        self._where = f"{group.path}:{group.function}" if group.function != "<syntax>" else group.path
        if group.function == "<syntax>":
            return self._repair_syntax(group)
        target_ids = [r.nodeid for r in group.failing]
        seen: dict[str, Candidate] = {}  # normalized program -> candidate (tried or queued): never run twice
        for rel in {s.path for s in group.suspects}:
            text = self._text(rel)
            if text is not None and (key := normalized(text)):
                seen[f"{rel}\0{key}"] = Candidate(rel, text, "original", 0)
        plausible: list[_Verified] = []
        self._found: list[_Verified] = []
        feedback: list[ChatMessage] = []
        self._extra_batches = EXTRA_AFTER_FIRST
        budget = max(1, self.settings.candidates)
        rounds = max(1, self.settings.rounds)
        last_error = "; ".join(r.message.splitlines()[0] for r in group.failing if r.message)[:300]
        weak = group.covering is not None and group.covering < WEAK_TESTS
        try:
            self._rounds(group, target_ids, seen, plausible, feedback, budget, rounds, last_error, weak)
            if plausible:
                self._rank(group, plausible)
        except Cancelled:
            plausible.extend(v for v in self._found if all(v is not p for p in plausible))
            if plausible:  # verified before the cancel: kept, unranked (ranking would run more tests)
                self._report.fixes.extend(self._fix(group, v, target_ids) for v in plausible[:MAX_FIXES])
            raise
        if not plausible:
            return []
        return [self._fix(group, v, target_ids) for v in plausible[:MAX_FIXES]]

    def _rounds(
        self, group: _Group, target_ids: list[str], seen: dict[str, Candidate], plausible: list[_Verified],
        feedback: list[ChatMessage], budget: int, rounds: int, last_error: str, weak: bool,
    ) -> None:
        for round_no in range(1, rounds + 1):
            self._check_cancel()
            if self._time_up():
                break
            self._report.rounds = max(self._report.rounds, round_no)
            window = group.suspects[(round_no - 1) * LINES_PER_ROUND: round_no * LINES_PER_ROUND]
            window = window or group.suspects[:LINES_PER_ROUND]
            pending = self._start_model(group, window, round_no, budget, feedback, last_error)
            queue = self._mutants(window, budget * 4) if window else []
            fresh = self._dedupe(queue, seen)
            found, last_error = self._verify(fresh, target_ids, plausible, last_error)
            plausible.extend(found)
            # With a verified fix in hand, the model's first fill of the most suspicious line has its say (it often
            # agrees with, or beats, what passed). Where few tests cover the code they can let a wrong mutation
            # through, so then every suspicious line gets its first fill: an alternative to compare on extra inputs.
            settle = (self._first_fills if weak else 1) if plausible else 0
            model_candidates = self._finish_model(pending, settle=settle)
            fresh = self._dedupe(model_candidates, seen)
            # The model's candidates get their own allowance: the mutants may have spent theirs, and a fill that
            # passes too is what tells a right fix from a wrong mutation.
            self._extra_batches = EXTRA_AFTER_FIRST
            found, last_error = self._verify(fresh, target_ids, plausible, last_error, enough=ENOUGH + 2)
            plausible.extend(found)
            if plausible:
                break

    def _mutants(self, window: list[Suspect], limit: int) -> list[Candidate]:
        out: list[Candidate] = []
        per_line: list[list[Candidate]] = []
        for suspect in window:
            text = self._text(suspect.path)
            if text is None:
                continue
            per_line.append([
                Candidate(suspect.path, new, "mutation", suspect.line, description, prior=suspect.score)
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
            original = self._text(cand.path) or ""
            if not new_imports_exist(original, cand.text, self.root):
                continue
            cand.key = full
            cand.generators.add(cand.generator)
            seen[full] = cand
            fresh.append(cand)
        return fresh

    # --- model generators (run on the engine's thread while mutations are verified) -----------------------

    def _submit(self, fn: Callable[[Engine], Any]) -> concurrent.futures.Future[Any] | None:
        if self.engine is None or self._engine_error:
            return None
        return self.engine.submit(fn, self._model_stop)

    def _start_model(
        self, group: _Group, window: list[Suspect], round_no: int, budget: int, feedback: list[ChatMessage],
        last_error: str,
    ) -> list[concurrent.futures.Future[Any]]:
        self._first_fills = 0
        if self.engine is None or self._engine_error:
            return []
        futures: list[concurrent.futures.Future[Any]] = []
        self._model_stop = _ModelStop(self._cancel, self._deadline)
        samples = SAMPLES[0] if round_no == 1 else SAMPLES[1]
        made = 0
        holes = []
        contexts: dict[int, str] = {}
        for suspect in window:
            text = self._text(suspect.path)
            if text is None:
                continue
            around = prompt_context.hole_window(text, suspect.line, suspect.last) if HOLE_WINDOW else None
            hole = infill.make_hole(suspect.path, text, suspect.line, suspect.last, around)
            holes.append((suspect, text, hole))
            contexts[id(hole)] = self._infill_context(group, suspect, text, around)
        self._first_fills = len(holes)
        # Breadth first: one fill of every suspicious line (greedy in round 1), then the other samples.
        for sample in range(samples):
            for suspect, text, hole in holes:
                if made >= budget:
                    break
                temperature = 0.0 if sample == 0 and round_no == 1 else 0.4 + 0.2 * round_no
                seed = round_no * 100 + sample

                def job(engine: Engine, hole: infill.Hole = hole, temperature: float = temperature,
                        seed: int = seed, suspect: Suspect = suspect, text: str = text,
                        context: str = contexts[id(hole)]) -> list[Candidate]:
                    if self._cancel.is_set() or self._out_of_time():
                        return []
                    try:
                        filled = infill.fill(engine, hole, context, temperature=temperature, seed=seed,
                                             cancel=self._model_stop)
                    except ModelError:  # a failed decode clears the engine's cache; one fresh try
                        filled = infill.fill(engine, hole, context, temperature=temperature, seed=seed,
                                             cancel=self._model_stop)
                    if filled is None:
                        return []
                    new_lines, gen = filled
                    new_text = replace_lines(text, hole.first, hole.last, new_lines)
                    shown = " ".join(line.strip() for line in new_lines)
                    shown = shown if len(shown) <= 60 else shown[:57] + "..."
                    return [Candidate(suspect.path, new_text, "infill", suspect.line,
                                      f"line {suspect.line} -> `{shown}`", gen.mean_logprob, suspect.score)]

                future = self._submit(job)
                if future is not None:
                    futures.append(future)
                    made += 1
        # The chat rewrite mostly echoes the bug with small models (see FACTS.md), so it runs from round 2, or in
        # round 1 when the model has no FIM tokens to infill with.
        if round_no >= 2 or (self.engine is not None and getattr(getattr(self.engine, "engine", None), "fim", 1) is None):
            future = self._submit(lambda engine: self._rewrite(engine, group, round_no, feedback, last_error))
            if future is not None:
                futures.append(future)
        return futures

    def _infill_context(self, group: _Group, suspect: Suspect, text: str,
                        window: prompt_context.Window | None) -> str:
        """The repo context before the hole's file (prompt_context): "" with nothing to add."""
        if not INFILL_DEFINITIONS and not INFILL_TEST:
            return ""
        definitions = prompt_context.used_definitions(
            text, suspect.path, suspect.line, suspect.last, self._workspace(), self.root, window,
            prompt_context.CONTEXT_CHARS - prompt_context.TEST_CHARS) if INFILL_DEFINITIONS else []
        facts = self._facts(group.failing[0]) if INFILL_TEST else None
        fim = getattr(getattr(self.engine, "engine", None), "fim", None)
        return prompt_context.infill_context(fim, suspect.path, definitions, facts, self.root.name)

    def _finish_model(self, futures: list[concurrent.futures.Future[Any]], settle: int = 0) -> list[Candidate]:
        """The model's candidates. With a verified fix in hand (`settle` > 0), only the first `settle` fills are
        waited for; the rest are skipped or stopped within a token."""
        out: list[Candidate] = []
        for number, future in enumerate(futures):
            if settle and number == settle:
                self._model_stop.cancel()
            remaining = max(0.1, self._deadline - time.monotonic())
            try:
                out.extend(future.result(timeout=remaining))
            except concurrent.futures.TimeoutError:
                self._cancel_pending(futures)
                self._time_up()
                break
            except (Cancelled, concurrent.futures.CancelledError):
                self._check_cancel()
            except (EngineUnavailable, ModelNotInstalled) as exc:
                self._engine_error = f"model not used: {exc}"
                self._cancel_pending(futures)
                break
            except GreenpatchError as exc:  # one failed sample; the others may work
                log.warning("a model candidate failed: %s", exc)
        self._check_cancel()
        return sorted(out, key=lambda c: (-c.prior, -(c.logprob if c.logprob is not None else -99.0)))

    @staticmethod
    def _cancel_pending(futures: list[concurrent.futures.Future[Any]]) -> None:
        for future in futures:
            future.cancel()

    def _rewrite(
        self, engine: Engine, group: _Group, round_no: int, feedback: list[ChatMessage], last_error: str
    ) -> list[Candidate]:
        if self._cancel.is_set() or self._out_of_time():
            return []
        sm = self._map(group.path)
        text = self._text(group.path)
        fn = next((f for f in sm.functions if f.name == group.function), None) if sm else None
        if fn is None or text is None:
            return []
        source = "\n".join(text.split("\n")[fn.first - 1: fn.last])
        if not feedback:
            result = group.failing[0]
            test_text = self._text(test_file_of(result.nodeid)) or ""
            test = _test_function(test_text, result.nodeid) or test_text[:3000]
            facts = self._facts(result)
            error = facts.summary(1200)
            if facts.frames:
                error += "\nRaised in:\n" + prompt_context.frames_text(facts.frames)
            window = prompt_context.hole_window(text, fn.body_first, fn.body_first)
            definitions = prompt_context.used_definitions(text, group.path, fn.body_first, fn.body_first,
                                                          self._workspace(), self.root, window,
                                                          prompt_context.CONTEXT_CHARS)
            feedback.extend(rewrite.first_messages(group.path, group.function, source, test, error,
                                                   prompt_context.rewrite_context(definitions)))
        else:
            feedback.append(rewrite.feedback_message(group.function, last_error))
        gen = engine.chat(feedback, max_tokens=min(768, 64 + 2 * len(source)),
                          temperature=min(1.0, 0.2 + 0.3 * (round_no - 1)), seed=round_no,
                          cancel=self._model_stop)
        feedback.append(ChatMessage("assistant", gen.text))
        new_fn = rewrite.extract_function(gen.text, group.function)
        if new_fn is None:
            return []
        new_text = rewrite.splice_function(text, fn.first, fn.last, new_fn)
        if new_text is None:
            return []
        return [Candidate(group.path, new_text, "rewrite", fn.first, f"{group.function} rewritten", gen.mean_logprob,
                          prior=group.suspects[0].score if group.suspects else 0.0)]

    # --- verify ------------------------------------------------------------------------------------------

    def _overlay(self, cand: Candidate) -> Changes:
        changes = dict(self._changes)
        changes[cand.path] = self._on_disk(cand.path, cand.text, bom=True)
        return changes

    def _verify(
        self, candidates: list[Candidate], target_ids: list[str], plausible: list[_Verified], last_error: str,
        enough: int = ENOUGH,
    ) -> tuple[list[_Verified], str]:
        """Two stages: the failing tests first (cheap, rejects most), then every affected test for survivors."""
        found: list[_Verified] = []
        self._found = found  # on a cancel, _repair_group keeps what passed so far
        self._queued += len(candidates)
        chunk = max(1, getattr(self.verifier, "parallel", 2))
        for start in range(0, len(candidates), chunk):
            self._check_cancel()
            if self._time_up() or len(plausible) + len(found) >= enough:
                break
            if plausible or found:
                if self._extra_batches <= 0:
                    break
                self._extra_batches -= 1
            batch = candidates[start: start + chunk]
            self._step(f"verifying {self._where}", f"candidates {self._tried + 1}-{self._tried + len(batch)}"
                       f"/{self._queued}", self._group_percent())
            self._report.candidates_tried += len(batch)
            self._tried += len(batch)
            runs = self.verifier.run_many([self._overlay(c) for c in batch], tests=target_ids,
                                          stop_at_first_failure=True, cancel=self._cancel, deadline=self._deadline)
            self._check_cancel()
            survivors = []
            for cand, run in zip(batch, runs):
                if self._targets_pass(run, target_ids):
                    survivors.append(cand)
                else:
                    last_error = _describe(run) or last_error
            if not survivors:
                continue
            others_failing = any(r.outcome in ("failed", "error") and r.nodeid not in target_ids
                                 for r in self._baseline.results)
            full = self.verifier.run_many([self._overlay(c) for c in survivors], tests=None,
                                          stop_at_first_failure=not others_failing, cancel=self._cancel,
                                          deadline=self._deadline)
            self._check_cancel()
            for cand, run in zip(survivors, full):
                if self._no_regressions(run, target_ids):
                    found.append(_Verified(cand, run, changed_tokens(self._text(cand.path) or "", cand.text)))
                    self._verified += 1
                else:
                    last_error = _describe(run) or last_error
        return found, last_error

    @staticmethod
    def _targets_pass(run: TestRun, target_ids: list[str]) -> bool:
        if run.error or run.timed_out:
            return False
        outcomes = {r.nodeid: r.outcome for r in run.results}
        return all(outcomes.get(t) == "passed" for t in target_ids)

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

    def _repair_syntax(self, group: _Group) -> list[Fix]:
        text = self._text(group.path)
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
        seen: dict[str, Candidate] = {}
        fresh = self._dedupe(candidates, seen)
        verified: list[_Verified] = []
        tried = fresh[: self.settings.candidates * 2]
        self._queued = len(tried)
        for cand in tried:
            self._check_cancel()
            if self._time_up():
                break
            self._step(f"verifying {self._where}", f"candidates {self._tried + 1}/{self._queued}",
                       self._group_percent())
            self._tried += 1
            self._report.candidates_tried += 1
            run = self.verifier.run(self._overlay(cand), stop_at_first_failure=True, cancel=self._cancel,
                                    deadline=self._deadline)
            if not run.error and not run.timed_out and not run.failed:
                verified.append(_Verified(cand, run, changed_tokens(text, cand.text)))
                self._verified += 1
                break
        self._rank(group, verified)
        return [self._fix(group, v, [r.nodeid for r in group.failing]) for v in verified[:1]]

    # --- rank and report ---------------------------------------------------------------------------------

    def _rank(self, group: _Group, plausible: list[_Verified]) -> None:
        if len(plausible) > 1 and group.function != "<syntax>" and not self._out_of_time():
            self._compare_behaviour(group, plausible)
            self._score_naturalness(plausible)
        plausible.sort(key=lambda v: (
            -v.behaviour,
            # Coder-Reviewer style: among fixes the tests cannot tell apart, the one the model finds most natural
            # in place (a 0.1-nat step per token: finer differences are noise), then the smaller edit.
            -(round(v.natural, 1) if v.natural is not None else -99.0),
            v.tokens,
            -v.candidate.votes,
            -(v.candidate.logprob if v.candidate.logprob is not None else -5.0),
            round(v.run.seconds),  # whole seconds: finer differences are noise; ties keep the order found
        ))
        notes = []
        if group.covering is not None and group.covering < WEAK_TESTS:
            notes.append(f"few tests cover this code ({group.covering})")
        for v in plausible:
            v.note = "; ".join(notes + ([v.note] if v.note else []))

    def _score_naturalness(self, plausible: list[_Verified]) -> None:
        """Score every passing candidate's changed lines with the model, the same way for every generator
        (model-free mutations included), so that ranking compares like with like."""
        holes = []
        for v in plausible:
            old = (self._text(v.candidate.path) or "").split("\n")
            new = v.candidate.text.split("\n")
            start, _, end_new = differing_span(old, new)
            prefix = "\n".join(new[:start]) + "\n"
            middle = "\n".join(new[start:end_new])
            rest = "\n".join(new[end_new:])
            holes.append((prefix, middle, "\n" + rest if middle else rest))

        def job(engine: Engine) -> list[list[float]]:
            scorer = getattr(engine, "score", None)
            if scorer is None:
                return []
            return [scorer(prefix, suffix, middle, cancel=self._model_stop) for prefix, middle, suffix in holes]

        self._model_stop = _ModelStop(self._cancel, self._deadline)
        future = self._submit(job)
        if future is None:
            return
        try:
            scores = future.result(timeout=max(0.1, self._deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            self._model_stop.cancel()
            return
        except (Cancelled, concurrent.futures.CancelledError):
            self._check_cancel()
            return
        except GreenpatchError as exc:
            log.warning("scoring the candidates failed: %s", exc)
            return
        if len(scores) == len(plausible) and all(scores):
            for v, values in zip(plausible, scores):
                v.natural = sum(values) / len(values)

    def _covering_tests(self, group: _Group, coverage: dict[str, dict[str, set[int]]]) -> int | None:
        if not coverage:
            return None
        sm = self._map(group.path)
        fn = next((f for f in sm.functions if f.name == group.function), None) if sm else None
        if fn is None:
            return None
        return sum(1 for files in coverage.values()
                   if any(fn.first <= line <= fn.last for line in files.get(group.path, ())))

    def _compare_behaviour(self, group: _Group, plausible: list[_Verified]) -> None:
        """CodeT-style: group the passing candidates by their outputs on extra inputs; the biggest group wins."""
        result = group.failing[0]
        test_rel = test_file_of(result.nodeid)
        test_text = self._text(test_rel) or ""
        shapes = probe.call_examples(test_text, group.function)
        if shapes is None:
            return
        callee, examples = shapes
        inputs = probe.extra_inputs(examples, PROBE_INPUTS)
        probe_rel = probe.probe_path(test_rel)
        probe_src = probe.probe_source(test_text, callee, inputs)
        overlays = []
        for v in plausible:
            overlay = self._overlay(v.candidate)
            overlay[probe_rel] = probe_src
            overlays.append(overlay)
        self._step("comparing the passing candidates", "on extra inputs")
        runs = self.verifier.run_many(overlays, tests=[f"{probe_rel}::test_greenpatch_probe"],
                                      stop_at_first_failure=True, cancel=self._cancel, deadline=self._deadline)
        self._check_cancel()
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

    def _now_passing(self, run: TestRun, target_ids: list[str]) -> list[str]:
        """The baseline's failing tests this candidate makes pass (its targets, and others it fixes too)."""
        failing_before = {r.nodeid for r in self._baseline.results if r.outcome in ("failed", "error")}
        passing_now = {r.nodeid for r in run.results if r.outcome == "passed"}
        return list(dict.fromkeys(list(target_ids) + sorted(failing_before & passing_now)))

    def _fix(self, group: _Group, v: _Verified, target_ids: list[str]) -> Fix:
        cand = v.candidate
        original = self._text(cand.path) or ""
        first, last = changed_range(original, cand.text)
        before, after = self._on_disk(cand.path, original), self._on_disk(cand.path, cand.text)
        passed = sum(1 for r in v.run.results if r.outcome == "passed")
        where = group.function if group.function != "<syntax>" else cand.path
        what = cand.description or f"change in {where}"
        title = f"Fix {where}: {what} ({passed} test{'s' if passed != 1 else ''} pass)"
        return Fix(
            path=cand.path, new_text=after, diff=unified_diff(cand.path, before, after), title=title,
            generator=cand.generator, tests_run=len(v.run.results), tests_passed=passed, verified=True,
            note=v.note, changed_range=(first, last), fixes=self._now_passing(v.run, target_ids), original=before,
            score={"changed_tokens": v.tokens, "votes": cand.votes, "generators": sorted(cand.generators),
                   "logprob": cand.logprob, "naturalness": None if v.natural is None else round(v.natural, 3),
                   "behaviour_group": v.behaviour, "test_seconds": round(v.run.seconds, 3),
                   "suspiciousness": round(cand.prior, 3)},
        )


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


def _test_function(text: str, nodeid: str) -> str | None:
    """Source of the test function a node id names (parametrize ids and classes handled)."""
    import ast

    name = nodeid.split("::")[-1].split("[")[0]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_source_segment(text, node)
    return None
