"""An LRU of suggestions by prompt, and typed-along reuse of the suggestion just made."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from greenpatch.completion.filters import SHORT_PROMPT_CUT, confident_end

KEY_PREFIX_CHARS = 4000
KEY_SUFFIX_CHARS = 1000


@dataclass
class Cached:
    text: str
    mean_logprob: float | None
    shown: bool
    logprobs: list[float] = field(default_factory=list)  # per token, with where each token ends in `text`
    token_ends: list[int] = field(default_factory=list)
    end_logprob: float | None = None  # how likely the fill ends after the text (the gate, see filters.passes_gate)
    dropped: str = ""  # a whole line the model made that the filters dropped (`text` is empty): see TypedAlong
    # what the docstring examples of the function it is in said (completion/examples.py): "passed", "replaced" (the
    # model's line failed them, this sampled one passes), "failed" (and no sampled line passed), "error" (no
    # verdict), "" (not run: no examples there)
    examples: str = ""
    ahead: bool = False  # computed ahead for the next line (CompletionService._prefetch_after), for the feedback log
    short: bool = False  # made from a cold place's short prompt (cut at SHORT_PROMPT_CUT at least)


class SuggestionCache:
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, str], Cached] = OrderedDict()

    @staticmethod
    def key(full_prefix: str, full_suffix: str, mode: str) -> tuple[str, str, str]:
        return full_prefix[-KEY_PREFIX_CHARS:], full_suffix[:KEY_SUFFIX_CHARS], mode

    def get(self, full_prefix: str, full_suffix: str, mode: str) -> Cached | None:
        k = self.key(full_prefix, full_suffix, mode)
        item = self._items.get(k)
        if item is not None:
            self._items.move_to_end(k)
        return item

    def put(self, full_prefix: str, full_suffix: str, mode: str, item: Cached) -> None:
        k = self.key(full_prefix, full_suffix, mode)
        self._items[k] = item
        self._items.move_to_end(k)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def mean_after(logprobs: list[float], token_ends: list[int], typed: int) -> float | None:
    """The mean log-probability of the tokens that end after the first `typed` characters; None when unknown."""
    if not logprobs or len(token_ends) != len(logprobs):
        return None
    rest = [lp for lp, end in zip(logprobs, token_ends) if end > typed]
    return sum(rest) / len(rest) if rest else None


@dataclass
class _Made:
    prefix: str
    suffix: str
    text: str
    mean_logprob: float | None
    shown: bool
    logprobs: list[float]
    token_ends: list[int]
    dropped: bool = False
    short: bool = False  # made from a cold place's short prompt: cut at SHORT_PROMPT_CUT at least


@dataclass
class Along:
    rest: str  # what is left of the suggestion after what the user typed
    mean_logprob: float | None  # the confidence to gate on: the whole suggestion's when it was shown, else the rest's
    shown: bool  # the suggestion was shown already: it stays shown while the user types along it
    dropped: bool = False  # the filters dropped the line: typing along it, its rest is dropped too (nothing to show)
    sure: int | None = None  # with a cut (see match): how many characters of the rest come before an unsure token


class TypedAlong:
    """When the user types the first characters of the suggestion just made, the rest is still the suggestion.

    A suggestion the gate withheld is kept too, with its per-token log-probabilities: once the user has typed its
    uncertain start, the rest is what the model would say next, and it is shown when the rest alone passes the
    gate (greedy decoding after those same tokens gives the same text, so asking the model again gains nothing).

    So is a line the filters dropped (it repeats the line below, has no body, breaks the parse): typing along it
    leads to the same file, so its rest is dropped too, and the model is not asked again at every keystroke.
    """

    def __init__(self, keep_withheld: bool = True) -> None:
        self.keep_withheld = keep_withheld  # False: only shown suggestions are typed along (the benchmark compares)
        self._last: dict[str, _Made] = {}

    def remember(self, uri: str, full_prefix: str, full_suffix: str, text: str, mean_logprob: float | None, *,
                 shown: bool = True, logprobs: list[float] | None = None, token_ends: list[int] | None = None,
                 short: bool = False) -> None:
        logprobs, token_ends = list(logprobs or []), list(token_ends or [])
        if not shown and (not self.keep_withheld or not logprobs or len(logprobs) != len(token_ends)):
            self._last.pop(uri, None)  # a withheld suggestion whose rest cannot be judged is of no use later
            return
        self._last[uri] = _Made(full_prefix, full_suffix[:KEY_SUFFIX_CHARS], text, mean_logprob, shown, logprobs,
                                token_ends, short=short)

    def remember_dropped(self, uri: str, full_prefix: str, full_suffix: str, line: str) -> None:
        """The model's line for this place was dropped by the filters (see the class)."""
        if not self.keep_withheld or not line.strip():
            self._last.pop(uri, None)
            return
        self._last[uri] = _Made(full_prefix, full_suffix[:KEY_SUFFIX_CHARS], line, None, False, [], [], dropped=True)

    def forget(self, uri: str) -> None:
        self._last.pop(uri, None)

    def match(self, uri: str, full_prefix: str, full_suffix: str, cut: float | None = None) -> Along | None:
        """The rest of the suggestion when the user typed along it; else None. With `cut` (a token
        log-probability), also how much of the rest comes before its first token less likely than that."""
        last = self._last.get(uri)
        if last is None or full_suffix[:KEY_SUFFIX_CHARS] != last.suffix or not full_prefix.startswith(last.prefix):
            return None
        typed = full_prefix[len(last.prefix) :]
        if not typed or not last.text.startswith(typed):
            return None
        rest = last.text[len(typed) :]
        if not rest:
            return Along("", None, False)  # typed whole: the model ended it there, it has nothing more to say
        if last.dropped:
            return Along(rest, None, False, dropped=True)
        if not rest.strip():
            return None
        sure = None
        if cut is not None:
            if last.short:
                cut = max(cut, SHORT_PROMPT_CUT)
            sure = confident_end(last.logprobs, last.token_ends, len(typed), cut, len(last.text)) - len(typed)
        if last.shown:
            return Along(rest, last.mean_logprob, True, sure=sure)
        return Along(rest, mean_after(last.logprobs, last.token_ends, len(typed)), False, sure=sure)

    def shown(self, uri: str) -> None:
        """The suggestion remembered for `uri` was shown (its rest passed the gate): keep showing it."""
        last = self._last.get(uri)
        if last is not None:
            last.shown = True
