"""An LRU of suggestions by prompt, and typed-along reuse of the suggestion just shown."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

KEY_PREFIX_CHARS = 4000
KEY_SUFFIX_CHARS = 1000


@dataclass
class Cached:
    text: str
    mean_logprob: float | None
    shown: bool


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


@dataclass
class _Shown:
    prefix: str
    suffix: str
    text: str
    mean_logprob: float | None


class TypedAlong:
    """When the user types the first characters of the suggestion just shown, the rest is still the suggestion."""

    def __init__(self) -> None:
        self._last: dict[str, _Shown] = {}

    def remember(self, uri: str, full_prefix: str, full_suffix: str, text: str, mean_logprob: float | None) -> None:
        self._last[uri] = _Shown(full_prefix, full_suffix[:KEY_SUFFIX_CHARS], text, mean_logprob)

    def forget(self, uri: str) -> None:
        self._last.pop(uri, None)

    def match(self, uri: str, full_prefix: str, full_suffix: str) -> tuple[str, float | None] | None:
        """(the rest of the suggestion, its confidence) when the user typed along it; else None."""
        last = self._last.get(uri)
        if last is None or full_suffix[:KEY_SUFFIX_CHARS] != last.suffix or not full_prefix.startswith(last.prefix):
            return None
        typed = full_prefix[len(last.prefix) :]
        if not typed or not last.text.startswith(typed):
            return None
        rest = last.text[len(typed) :]
        return (rest, last.mean_logprob) if rest.strip() else None
