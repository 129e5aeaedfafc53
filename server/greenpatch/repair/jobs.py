"""The model's jobs in a repair run: infill and rewrite samples, and the scoring of passing candidates, all run on
the engine's worker thread while the run verifies model-free candidates."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greenpatch.cancel import CancelToken, LinkedToken
from greenpatch.engine.base import ChatMessage, Engine, Generation
from greenpatch.errors import Cancelled, EngineUnavailable, GreenpatchError, ModelError, ModelNotInstalled
from greenpatch.repair import infill, rewrite
from greenpatch.repair.budget import INFILL, INSERT, decay, likelihood
from greenpatch.repair.candidates import Candidate, replace_lines
from greenpatch.repair.clock import RunClock
from greenpatch.repair.files import RunFiles
from greenpatch.repair.group import Group
from greenpatch.repair.holes import reads_any, unbound_names
from greenpatch.repair.localize import Suspect
from greenpatch.repair.prompt_context import PromptContext

if TYPE_CHECKING:
    from greenpatch.engine.worker import EngineWorker

log = logging.getLogger(__name__)

SAMPLES = (2, 3)  # model samples per statement (greedy first): round 1, later rounds

Hole = tuple[str, str, str]  # prefix, middle, suffix: the changed lines of a candidate in place


class ModelStop(LinkedToken):
    """The model's cancel token: set when the repair is cancelled, at the repair's deadline, or when a verified fix
    makes the remaining samples not worth their time (the engine checks it after every token). The deadline is part
    of it so that no generation outlives the run: a model still decoding when the process exits crashes it."""

    def __init__(self, parent: CancelToken, deadline: float) -> None:
        super().__init__(parent)
        self._deadline = deadline

    def is_set(self) -> bool:
        return super().is_set() or time.monotonic() > self._deadline


@dataclass(frozen=True)
class _Place:
    """A hole the model fills, with its kind and where it is (for the candidate's description)."""

    hole: infill.Hole
    kind: str  # repair/budget.py: INFILL, INFILL_LINES or INSERT
    where: str


@dataclass
class Pending:
    """The model's samples of one round, in the order they were queued."""

    futures: list[concurrent.futures.Future[list[Candidate]]] = field(default_factory=list)
    first_fills: int = 0  # the first fill of every suspicious line comes first in `futures`

    def done(self) -> bool:
        """Every sample is made (or failed, or was cancelled)."""
        return all(future.done() for future in self.futures)


class ModelJobs:
    def __init__(
        self, engine: EngineWorker | None, files: RunFiles, clock: RunClock, context: PromptContext, *,
        engine_error: str = "",
    ) -> None:
        self.engine = engine  # an EngineWorker (anything with submit(fn, cancel) -> Future), or None
        self.files = files
        self.clock = clock
        self.context = context
        self.engine_error = engine_error  # why the model is not used (it failed to load): set once, kept
        self.stop = ModelStop(clock.cancel, clock.deadline)
        self._filled: set[tuple[str, str, int]] = set()  # (group, path, line): lines given their first fill

    @property
    def usable(self) -> bool:
        return self.engine is not None and not self.engine_error

    def submit(self, fn: Callable[[Engine], Any]) -> concurrent.futures.Future[Any] | None:
        if self.engine is None or self.engine_error:
            return None
        return self.engine.submit(fn, self.stop)

    def start(
        self, group: Group, window: list[Suspect], round_no: int, budget: int, feedback: list[ChatMessage],
        last_error: str, earlier: list[Suspect] | None = None,
    ) -> Pending:
        """Queue the round's samples: breadth first, one greedy fill of every line of `window` not filled yet, then
        the other holes and samples by likelihood, more samples of the `earlier` rounds' lines among them; then
        the rewrite of the whole function."""
        pending = Pending()
        if not self.usable:
            return pending
        self.stop = ModelStop(self.clock.cancel, self.clock.deadline)
        samples = SAMPLES[0] if round_no == 1 else SAMPLES[1]
        temperature = 0.4 + 0.2 * round_no
        lines = list({(s.path, s.line): s for s in [*window, *(earlier or [])]}.values())
        holes = [(suspect, text, self.context.hole(suspect, text))
                 for suspect in lines if (text := self.files.text(suspect.path)) is not None]
        fresh = [item for item in holes if (group.where, item[0].path, item[0].line) not in self._filled]
        again = [item for item in holes if (group.where, item[0].path, item[0].line) in self._filled]
        self._filled |= {(group.where, suspect.path, suspect.line) for suspect, _, _ in fresh}
        pending.first_fills = len(fresh)
        # A greedy fill of every line not filled yet first (breadth), then by likelihood (repair/budget.py): a new
        # line inserted, or two or three lines masked, at those lines; more samples of them; and more samples of
        # the lines earlier rounds filled, the most suspicious first - the likeliest line is not left with one
        # greedy fill while the round's budget goes to the fifth (`bench real`: more-itertools' wrong variable on
        # the top line, one fill made, three of a line far below).
        jobs = [(suspect, text, _Place(hole, INFILL, f"line {suspect.line}"), 0.0, round_no * 100)
                for suspect, text, hole in fresh]
        others: list[tuple[float, tuple[Suspect, str, _Place, float, int]]] = []
        unbound = unbound_names(result.message for result in group.failing)
        for suspect, text, hole in fresh:
            # A name the failure says is unbound, read on this line: the line that bound it is likely what is
            # missing, so the new lines before it go first (a dropped `result = f(x)`: UnboundLocalError).
            boost = 3.0 if unbound and reads_any(text, suspect.line, unbound) else 1.0
            others += [(likelihood(spec.kind, suspect.score, spec.weight * (boost if spec.kind == INSERT else 1.0)),
                        (suspect, text, _Place(spec.hole, spec.kind, spec.where), 0.0, round_no * 100))
                       for spec in self.context.holes(suspect, text)]
            others += [(likelihood(INFILL, suspect.score, decay(sample)),
                        (suspect, text, _Place(hole, INFILL, f"line {suspect.line}"), temperature,
                         round_no * 100 + sample)) for sample in range(1, samples)]
        for suspect, text, hole in again:
            others += [(likelihood(INFILL, suspect.score, decay(sample + 1)),
                        (suspect, text, _Place(hole, INFILL, f"line {suspect.line}"), temperature,
                         round_no * 100 + sample)) for sample in range(samples)]
        jobs += [job for _, job in sorted(others, key=lambda item: -item[0])]
        for suspect, text, place, temperature, seed in jobs[:budget]:
            future = self.submit(self._fill_job(group, suspect, text, place, temperature, seed))
            if future is not None:
                pending.futures.append(future)
        # The chat rewrite mostly echoes the bug with small models (see FACTS.md), so it runs from round 2, or in
        # round 1 when the model has no FIM tokens to infill with.
        loaded = self.engine.engine if self.engine is not None else None  # not loaded yet: as if it had FIM
        if round_no >= 2 or (loaded is not None and loaded.fim is None):
            future = self.submit(lambda engine: self._rewrite(engine, group, round_no, feedback, last_error))
            if future is not None:
                pending.futures.append(future)
        return pending

    def _fill_job(
        self, group: Group, suspect: Suspect, text: str, place: _Place, temperature: float, seed: int
    ) -> Callable[[Engine], list[Candidate]]:
        hole = place.hole

        def job(engine: Engine) -> list[Candidate]:
            if self.clock.cancel.is_set() or self.clock.out_of_time():
                return []
            # Built here, with the loaded model's FIM format (its file-separator tokens): built when the job was
            # queued, round 1's context was plain comments (the model was not loaded yet) and round 2's the
            # model's own, so no prompt of round 2 reused round 1's evaluated start (`bench real`, toolz).
            context = self.context.infill(group, suspect, hole, engine.fim)
            started, generated = time.perf_counter(), list[Generation]()
            filled: tuple[list[str], Generation] | None = None
            try:
                try:
                    filled = infill.fill(engine, hole, context, temperature=temperature, seed=seed, cancel=self.stop,
                                         generated=generated)
                except ModelError:  # a failed decode clears the engine's cache; one fresh try
                    filled = infill.fill(engine, hole, context, temperature=temperature, seed=seed, cancel=self.stop,
                                         generated=generated)
            finally:
                self.clock.spent.model_job(started, generated)
                log.debug("fill %s %s: %d prompt tokens, %d reused, %.2f s%s", suspect.path, place.where,
                          sum(g.prompt_tokens for g in generated), sum(g.reused_tokens for g in generated),
                          time.perf_counter() - started,
                          f" -> {' | '.join(line.strip() for line in filled[0])!r}" if filled else ", no fill")
            if filled is None:
                return []
            new_lines, gen = filled
            new_text = replace_lines(text, hole.first, hole.last, new_lines)
            shown = " ".join(line.strip() for line in new_lines)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            lines = "new lines" if len(new_lines) > 1 else "new line"
            what = f"{lines} {place.where}: `{shown}`" if place.kind == INSERT else f"{place.where} -> `{shown}`"
            return [Candidate(suspect.path, new_text, "infill", suspect.line, what, gen.mean_logprob, suspect.score,
                              kind=place.kind)]

        return job

    def finish(self, pending: Pending, settle: int = 0) -> list[Candidate]:
        """The model's candidates. With a verified fix in hand (`settle` > 0), only the first `settle` fills are
        waited for; the rest are skipped or stopped within a token."""
        out: list[Candidate] = []
        futures = pending.futures
        for number, future in enumerate(futures):
            if settle and number == settle:
                self.stop.cancel()
            remaining = max(0.1, self.clock.left())
            try:
                with self.clock.spent.spending("model_wait"):
                    out.extend(future.result(timeout=remaining))
            except concurrent.futures.TimeoutError:
                _cancel_pending(futures)
                self.clock.time_up()
                break
            except (Cancelled, concurrent.futures.CancelledError):
                self.clock.check_cancel()
            except (EngineUnavailable, ModelNotInstalled) as exc:
                self.engine_error = f"model not used: {exc}"
                _cancel_pending(futures)
                break
            except GreenpatchError as exc:  # one failed sample; the others may work
                log.warning("a model candidate failed: %s", exc)
        self.clock.check_cancel()
        return sorted(out, key=lambda c: (-c.prior, -(c.logprob if c.logprob is not None else -99.0)))

    def _rewrite(
        self, engine: Engine, group: Group, round_no: int, feedback: list[ChatMessage], last_error: str
    ) -> list[Candidate]:
        if self.clock.cancel.is_set() or self.clock.out_of_time():
            return []
        sm = self.files.map(group.path)
        text = self.files.text(group.path)
        fn = next((f for f in sm.functions if f.name == group.function), None) if sm else None
        if fn is None or text is None:
            return []
        source = "\n".join(text.split("\n")[fn.first - 1: fn.last])
        if not feedback:
            feedback.extend(self.context.rewrite(group, source))
        else:
            feedback.append(rewrite.feedback_message(group.function, last_error))
        started = time.perf_counter()
        gen = engine.chat(feedback, max_tokens=min(768, 64 + 2 * len(source)),
                          temperature=min(1.0, 0.2 + 0.3 * (round_no - 1)), seed=round_no, cancel=self.stop)
        self.clock.spent.model_job(started, [gen])
        feedback.append(ChatMessage("assistant", gen.text))
        new_fn = rewrite.extract_function(gen.text, group.function)
        if new_fn is None:
            return []
        new_text = rewrite.splice_function(text, fn.first, fn.last, new_fn)
        if new_text is None:
            return []
        return [Candidate(group.path, new_text, "rewrite", fn.first, f"{group.function} rewritten", gen.mean_logprob,
                          prior=group.suspects[0].score if group.suspects else 0.0)]

    def score(self, holes: list[Hole], group: Group | None = None) -> list[list[float]] | None:
        """The model's log-probabilities of each hole's middle in place (None: no model, or it could not say in
        the time left). With a `group`, after the context its fills had (the same for every hole, so that the
        scores compare, and already evaluated: the fills' prompts start with it)."""

        def job(engine: Engine) -> list[list[float]]:
            started = time.perf_counter()
            suspect = group.suspects[0] if group is not None and group.suspects else None
            context = self.context.infill(group, suspect, None, engine.fim) if group and suspect else ""
            try:
                return [engine.score(prefix, suffix, middle, context=context, cancel=self.stop)
                        for prefix, middle, suffix in holes]
            finally:
                self.clock.spent.model_job(started, [], all_prompt=True)
                log.debug("scored %d passing candidates: %.2f s", len(holes), time.perf_counter() - started)

        self.stop = ModelStop(self.clock.cancel, self.clock.deadline)
        future = self.submit(job)
        if future is None:
            return None
        try:
            with self.clock.spent.spending("model_wait"):
                scores: list[list[float]] = future.result(timeout=max(0.1, self.clock.left()))
        except concurrent.futures.TimeoutError:
            self.stop.cancel()
            return None
        except (Cancelled, concurrent.futures.CancelledError):
            self.clock.check_cancel()
            return None
        except GreenpatchError as exc:
            log.warning("scoring the candidates failed: %s", exc)
            return None
        return scores


def _cancel_pending(futures: list[concurrent.futures.Future[list[Candidate]]]) -> None:
    for future in futures:
        future.cancel()
