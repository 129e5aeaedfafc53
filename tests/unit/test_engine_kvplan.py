"""KV-cache reuse planning: what stays, what shifts, what is evaluated."""

from __future__ import annotations

from greenpatch.engine.kvplan import choose_parked, kv_operations, plan_reuse, worth_parking


def _apply(cached: list[int], prompt: list[int], plan) -> list[int | None]:
    """Simulate the plan on a position -> token map and return the resulting cache by position."""
    cells = {i: t for i, t in enumerate(cached)}
    for op, p0, p1, delta in kv_operations(plan, len(cached)):
        end = p1 if p1 >= 0 else 10**9
        if op == "rm":
            cells = {p: t for p, t in cells.items() if not (p0 <= p < end)}
        else:
            moved = {p + delta: t for p, t in cells.items() if p0 <= p < end}
            rest = {p: t for p, t in cells.items() if not (p0 <= p < end)}
            assert not set(moved) & set(rest), "a shift must never land on occupied positions"
            cells = {**rest, **moved}
    for i in plan.evaluate:
        assert i not in cells
        cells[i] = prompt[i]
    return [cells.get(i) for i in range(len(prompt))]


def test_a_keystroke_reuses_the_suffix_by_shifting_it_right() -> None:
    ctx, prefix, suffix = list(range(100, 140)), list(range(200, 230)), list(range(300, 340))
    cached = ctx + [1] + prefix + [2] + suffix + [3] + [900, 901]  # last request's prompt plus generated tokens
    prompt = ctx + [1] + prefix + [555, 556] + [2] + suffix + [3]
    plan = plan_reuse(cached, prompt, "chunk", min_chunk=8)
    assert plan.keep == len(ctx) + 1 + len(prefix)
    assert len(plan.chunks) == 1
    assert plan.evaluate == [plan.keep, plan.keep + 1, len(prompt) - 1]
    assert _apply(cached, prompt, plan) == prompt


def test_deleting_text_shifts_the_suffix_left() -> None:
    cached = list(range(50)) + [7, 8, 9] + list(range(300, 340)) + [3]
    prompt = list(range(50)) + list(range(300, 340)) + [3]
    plan = plan_reuse(cached, prompt, "chunk", min_chunk=8)
    assert plan.chunks and plan.chunks[0][2] == 40
    assert plan.evaluate == [len(prompt) - 1]
    assert _apply(cached, prompt, plan) == prompt


def test_prefix_mode_evaluates_everything_after_the_common_prefix() -> None:
    cached = list(range(60))
    prompt = list(range(30)) + [999] + list(range(31, 60))
    plan = plan_reuse(cached, prompt, "prefix")
    assert plan.keep == 30 and not plan.chunks
    assert plan.evaluate == list(range(30, 60))
    assert _apply(cached, prompt, plan) == prompt


def test_no_reuse_mode_evaluates_the_whole_prompt() -> None:
    plan = plan_reuse(list(range(10)), list(range(10)), "none")
    assert plan.keep == 0 and plan.evaluate == list(range(10))


def test_the_last_prompt_token_is_always_evaluated_even_on_an_exact_repeat() -> None:
    prompt = list(range(20))
    plan = plan_reuse(prompt, prompt, "chunk", min_chunk=4)
    assert plan.evaluate == [19]
    assert _apply(prompt, prompt, plan) == prompt


def test_short_accidental_matches_are_not_reused() -> None:
    cached = list(range(20)) + [5, 6, 7] + list(range(100, 120))
    prompt = list(range(20)) + [9, 9, 9, 5, 6, 7, 1, 2]
    plan = plan_reuse(cached, prompt, "chunk", min_chunk=8)
    assert plan.chunks == []


def test_several_chunks_moving_both_ways_land_in_place() -> None:
    a, b, c = list(range(100, 120)), list(range(200, 220)), list(range(300, 320))
    cached = [1, 2] + a + [50, 51, 52, 53, 54] + b + c + [99]
    prompt = [1, 2, 40] + a + b + [60, 61, 62] + c + [99]
    plan = plan_reuse(cached, prompt, "chunk", min_chunk=8)
    assert len(plan.chunks) >= 2
    assert _apply(cached, prompt, plan) == prompt


def test_a_jump_that_leaves_most_of_the_cache_behind_parks_it() -> None:
    cached = list(range(1000))
    assert worth_parking(cached, list(range(10)) + [-1] * 900), "another file: only the start is shared"
    assert not worth_parking(cached, list(range(900)) + [-1] * 120), "the next line: the last hundred tokens change"
    assert not worth_parking(cached, cached + [5, 6]), "typing along"
    assert not worth_parking(list(range(50)), [-1] * 50), "too short to be worth keeping"
    short = list(range(200))
    assert worth_parking(short, [-1] * 1000), "a short first prompt, the full one prepared behind it"
    assert not worth_parking(short, short[:190] + [-1] * 20), "a short prompt typed on"


def test_the_parked_prompt_sharing_most_with_the_new_one_is_resumed() -> None:
    a, b = list(range(800)), [0] + list(range(10_000, 10_800))
    assert choose_parked(b, a + [1, 2], [a]) == 0, "back to the file left before"
    assert choose_parked(b, b + [1], [a]) is None, "the cache itself is better"
    assert choose_parked(b, list(range(40)) + [-1] * 100, [a]) is None, "shares a little more, not enough to swap"
    c = list(range(500)) + [-5] * 300
    assert choose_parked(b, a, [c, a]) == 1, "the longest shared prefix wins"
    assert choose_parked(b, a, [list(a), a]) == 0, "the most recent of two as good"
