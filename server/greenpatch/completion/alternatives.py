"""A better line where the model's first choice does not close the gap to the code below.

On an empty line with code after it, the line suggested must connect what is above the cursor with what is below
it. The engine says how likely the fill is to end right after the greedy line (`Generation.end_logprob`); a model
that would rather go on writes the start of something longer or of another approach than the code below. When it
would rather go on, or the filters drop the line, a few lines are sampled and the one the model finds most likely
as a whole fill is kept: the line's log-probability plus ending right after it (ranking sampled candidates by the
model's own likelihood, as in CodeT / Coder-Reviewer; execution cannot judge a half-written function). Greedy
decoding picks the likeliest token at each step, not the likeliest line, so a sample can beat it. The gate then
withholds a line the model still would not end the fill after (filters.passes_gate). Measured on HumanEval
single-line infilling: README, "Measured here".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from greenpatch.cancel import CancelToken
from greenpatch.completion.filters import ENDS, post_filter
from greenpatch.completion.prompt import CompletionRequest
from greenpatch.engine.base import Engine, Generation

TEMPERATURE = 0.8
_NEW_DEFINITION = re.compile(r"(async\s+def|def|class)\b|@|if\s+__name__\b")


def code_follows(full_suffix: str) -> bool:
    """Code the fill must connect to comes after the cursor's line: not at the end of the file and not before a new
    definition (there the model rightly goes on writing)."""
    for line in full_suffix.split("\n")[1:]:
        code = line.strip()
        if code and not code.startswith("#"):
            return not _NEW_DEFINITION.match(code)
    return False


def ends_matter(request: CompletionRequest) -> bool:
    """Whether to ask the engine where the fill ends: an empty line above code (then look for alternatives when
    the line is not a likely whole fill, and the gate withholds a line the model would not end the fill after)."""
    return request.mode == "line" and request.code_first and code_follows(request.full_suffix)


def _total(g: Generation) -> float:
    return sum(g.logprobs) + (g.end_logprob if g.end_logprob is not None else -math.inf)


@dataclass
class Choice:
    generation: Generation
    text: str | None  # the generation's text after the post-filters ("": dropped); None: not filtered here
    sampled: int  # how many lines were sampled
    # the distinct sampled lines that passed the filters, likeliest whole fill first, with their filtered text
    # (for the docstring examples to choose among, see completion/examples.py)
    candidates: list[tuple[Generation, str]] = field(default_factory=list)


def better_line(engine: Engine, request: CompletionRequest, greedy: Generation, count: int,
                cancel: CancelToken | None = None) -> Choice:
    """The greedy generation, or a sampled one that is a more likely whole fill (with its filtered text, so the
    caller need not filter it again)."""
    if greedy.end_logprob is None or greedy.stop_reason not in ("stop", "eos"):
        return Choice(greedy, None, 0)
    text = post_filter(greedy.text, request) or ""
    if text and greedy.end_logprob >= ENDS:
        return Choice(greedy, text, 0)
    best = Choice(greedy, text, 0)
    best.candidates, best.sampled, seconds = sampled_lines(engine, request, count, cancel, skip={greedy.text})
    if best.candidates and (not best.text or _total(best.candidates[0][0]) > _total(greedy)):
        best.generation, best.text = best.candidates[0]
    best.generation.seconds = greedy.seconds + seconds
    return best


def sampled_lines(engine: Engine, request: CompletionRequest, count: int, cancel: CancelToken | None = None,
                  skip: set[str] | None = None) -> tuple[list[tuple[Generation, str]], int, float]:
    """`count` sampled lines: the distinct complete ones that pass the filters (with their filtered text), the
    likeliest whole fill first; how many were sampled; the seconds they took."""
    samples, seconds = _samples(engine, request, count, cancel)
    seen = set(skip or ())
    kept: list[tuple[Generation, str]] = []
    for g in samples:
        if g.stop_reason not in ("stop", "eos") or g.end_logprob is None or g.text in seen:
            continue
        seen.add(g.text)
        filtered = post_filter(g.text, request)
        if filtered:
            kept.append((g, filtered))
    kept.sort(key=lambda pair: _total(pair[0]), reverse=True)
    return kept, len(samples), seconds


def _samples(engine: Engine, request: CompletionRequest, count: int,
             cancel: CancelToken | None) -> tuple[list[Generation], float]:
    """`count` sampled lines and the seconds they took: side by side in one batch where the engine can
    (`Engine.infill_many`), else one by one."""
    out = engine.infill_many(request.prefix, request.suffix, list(range(count)), context=request.context,
                             max_tokens=request.max_tokens, stop=request.stop, temperature=TEMPERATURE,
                             cancel=cancel, code_first=request.code_first, end_check=True)
    return out, max((g.seconds for g in out), default=0.0)  # each reports the whole call's time
