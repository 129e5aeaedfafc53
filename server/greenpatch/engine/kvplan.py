"""Planning KV-cache reuse between two prompts (pure: no llama_cpp, so it is unit-tested on its own).

In PSM order a keystroke changes the end of the prefix, which sits *before* the suffix: plain prefix reuse must
re-evaluate the whole suffix every time. llama.cpp's server avoids that with "cache reuse": chunks of the old
prompt that reappear in the new one keep their KV entries and are shifted to their new positions (RoPE is
re-applied by the shift). A reused chunk's entries were computed with the old left context; for a keystroke that
difference is a few tokens and the model's output is the same in practice (the benchmark measures quality with
reuse on). llama.cpp masks attention by position, not by insertion order, so new tokens evaluated *before* a
shifted chunk do not see it, exactly as a fresh evaluation would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MODES = ("chunk", "prefix", "none")

# Side by side in `greenpatch bench complete --tasks 0 --keystrokes 60` (default model, typing replay, 2 quiet
# cores): prefix reuse p50 0.78 s / p95 2.27 s, chunk reuse 0.88 s / 2.34 s, none 5.9 s. The current line sits after
# the FIM middle token, so typing along a line reuses the whole prompt in both modes and chunk only adds its
# bookkeeping. Where it does help is the next line (the line above just finished, the suffix after it unchanged):
# ad hoc, 80 such requests in greenpatch's own files, chunk reuse evaluated 35 tokens instead of 143, p50 1.37 s
# instead of 1.85 s, but its first line differed from a fresh evaluation's in 38 of 80 (exactly right 14 vs 15):
# not more right, and not the same, so the exact mode stays the default.
DEFAULT_REUSE = "prefix"


@dataclass
class ReusePlan:
    keep: int  # prompt[:keep] is already in the cache at the same positions
    # (cache_start, prompt_start, length): cached[cache_start:+length] == prompt[prompt_start:+length], to be shifted
    chunks: list[tuple[int, int, int]] = field(default_factory=list)
    evaluate: list[int] = field(default_factory=list)  # prompt positions to decode, ascending; always ends at the last

    @property
    def reused(self) -> int:
        return self.keep + sum(length for _, _, length in self.chunks)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def plan_reuse(cached: Sequence[int], prompt: Sequence[int], mode: str = "chunk", min_chunk: int = 12) -> ReusePlan:
    """How to turn a cache holding `cached` (positions 0..len-1) into one holding `prompt`, evaluating little.

    The last prompt token is always evaluated, because sampling needs its logits.
    """
    n = len(prompt)
    if n == 0:
        return ReusePlan(0)
    if mode == "none":
        return ReusePlan(0, [], list(range(n)))
    keep = min(common_prefix(cached, prompt), n - 1)
    chunks: list[tuple[int, int, int]] = []
    if mode == "chunk" and min_chunk > 0:
        chunks = _find_chunks(cached, prompt, keep, n - 1, min_chunk)
    covered: set[int] = set()
    for _, p, length in chunks:
        covered.update(range(p, p + length))
    evaluate = [i for i in range(keep, n) if i not in covered]
    return ReusePlan(keep, chunks, evaluate)


def _find_chunks(
    cached: Sequence[int], prompt: Sequence[int], start: int, end: int, k: int
) -> list[tuple[int, int, int]]:
    """Greedy, order-preserving matches of at least k tokens between cached[start:] and prompt[start:end]."""
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(start, len(cached) - k + 1):
        index.setdefault(tuple(cached[i : i + k]), []).append(i)
    chunks: list[tuple[int, int, int]] = []
    head_p, head_c = start, start
    while head_p + k <= end:
        found = -1
        for c in index.get(tuple(prompt[head_p : head_p + k]), ()):
            if c >= head_c:
                found = c
                break
        if found < 0:
            head_p += 1
            continue
        length = k
        while head_p + length < end and found + length < len(cached) and cached[found + length] == prompt[head_p + length]:
            length += 1
        chunks.append((found, head_p, length))
        head_p += length
        head_c = found + length
    return chunks


PARK_MIN = 256  # a prompt about to lose at least this many cached tokens is parked (a jump to another place)
SHORT_PARK_MIN = 64  # a shorter prompt is parked when it is lost (nearly) whole
RESUME_MARGIN = 64  # a parked prompt is resumed when it shares this many more leading tokens than the cache does


def worth_parking(cached: Sequence[int], prompt: Sequence[int]) -> bool:
    """The cache is about to lose much of what it holds (the cursor jumped to another file or place): keep it aside,
    so a jump back finds it. Typing and the next line change only the prompt's last few hundred tokens. A short
    prompt (the first one at a cold place, see completion/prompt.py short_request) is kept when most of it goes:
    the full prompt prepared behind it replaces it, and the next keystroke there may still want it."""
    lost = len(cached) - common_prefix(cached, prompt)
    return lost >= PARK_MIN or len(cached) >= SHORT_PARK_MIN and lost >= len(cached) * 3 // 4


def choose_parked(cached: Sequence[int], prompt: Sequence[int], parked: Sequence[Sequence[int]]) -> int | None:
    """The parked prompt to resume from (index into `parked`): the one sharing the longest prefix with `prompt`,
    when that beats the cache by RESUME_MARGIN tokens."""
    best, best_keep = None, common_prefix(cached, prompt) + RESUME_MARGIN - 1
    for i, tokens in enumerate(parked):  # the most recent first: it wins a tie
        keep = common_prefix(tokens, prompt)
        if keep > best_keep:
            best, best_keep = i, keep
    return best


def kv_operations(plan: ReusePlan, cached_len: int) -> list[tuple[str, int, int, int]]:
    """The memory operations that carry out `plan`: ("rm", p0, p1, 0) and ("add", p0, p1, delta), in order.

    Removals first (everything that is neither the kept prefix nor a chunk), then shifts ordered so no chunk
    moves onto positions another chunk still occupies: leftward shifts in ascending order, rightward descending.
    """
    ops: list[tuple[str, int, int, int]] = []
    pos = plan.keep
    for c, _, length in sorted(plan.chunks):
        if c > pos:
            ops.append(("rm", pos, c, 0))
        pos = c + length
    if pos < cached_len or not plan.chunks:
        ops.append(("rm", pos, -1, 0))
    left = [(c, p, n) for c, p, n in plan.chunks if p < c]
    right = [(c, p, n) for c, p, n in plan.chunks if p > c]
    for c, p, length in sorted(left):
        ops.append(("add", c, c + length, p - c))
    for c, p, length in sorted(right, reverse=True):
        ops.append(("add", c, c + length, p - c))
    return ops
