"""The llama.cpp engine with the real tiny model: generation, cancellation, logprobs, KV reuse."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.base import ChatMessage
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import ModelError

pytestmark = pytest.mark.model

CODE = "def add(a, b):\n    return"


class StopAfter(CancelToken):
    """Cancels itself once it has been asked `n` times (the engine asks once per generated token)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.asked = n, 0

    def is_set(self) -> bool:
        self.asked += 1
        if self.asked >= self.n:
            self.cancel()
        return super().is_set()


def test_infill_generates_text_with_one_logprob_per_token(tiny_engine) -> None:
    g = tiny_engine.infill(CODE, "\n", max_tokens=12, stop=["\n"])
    assert g.text.strip(), "the tiny model completes a trivial function"
    assert g.logprobs and all(lp <= 0 for lp in g.logprobs)
    assert g.stop_reason in ("stop", "eos", "length")
    assert tiny_engine.fim is None, "SmolLM2 has no FIM tokens: infill falls back to the prefix"


def test_each_token_says_where_it_ends_in_the_text(tiny_engine) -> None:
    g = tiny_engine.infill(CODE, "\n", max_tokens=20, stop=["):"])
    assert len(g.token_ends) == len(g.logprobs) > 0
    assert g.token_ends == sorted(g.token_ends) and g.token_ends[-1] == len(g.text)
    whole = tiny_engine.infill(CODE, "\n", max_tokens=20)
    assert whole.token_ends[-1] == len(whole.text) and len(whole.token_ends) == len(whole.logprobs)


def test_a_half_typed_word_is_completed_not_taken_for_a_whole_one(tiny_engine) -> None:
    tiny_engine.heal = False
    try:
        unhealed = tiny_engine.infill("def add(a, b):\n    retu", "\n", max_tokens=8, stop=["\n"])
    finally:
        tiny_engine.heal = True
    healed = tiny_engine.infill("def add(a, b):\n    retu", "\n", max_tokens=8, stop=["\n"])
    assert not unhealed.text.startswith("rn"), "without healing the tiny model writes `retu = ...`"
    assert healed.text.startswith("rn "), healed.text
    assert len(healed.logprobs) == len(healed.token_ends) and healed.token_ends[-1] == len(healed.text)
    again = tiny_engine.infill("def add(a, b):\n    retu", "\n", max_tokens=8, stop=["\n"], reuse="none")
    assert again.text == healed.text, "the healed tokens left the cache as a fresh evaluation would"


def test_a_line_after_its_indentation_gets_no_extra_space(tiny_engine) -> None:
    tiny_engine.heal = False
    try:
        unhealed = tiny_engine.infill("def add(a, b):\n    ", "\n", max_tokens=8, stop=["\n"], code_first=True)
    finally:
        tiny_engine.heal = True
    healed = tiny_engine.infill("def add(a, b):\n    ", "\n", max_tokens=8, stop=["\n"], code_first=True)
    assert unhealed.text.startswith(" "), "without healing the model indents once more"
    assert healed.text.strip() and not healed.text[0].isspace(), healed.text


def test_code_first_writes_on_the_empty_line_instead_of_leaving_it_empty(tiny_engine) -> None:
    plain = tiny_engine.infill("x = 1\n\n", "", max_tokens=8, stop=["\n"])
    assert plain.text == "", "precondition: left alone, the model breaks the line at once"
    first = tiny_engine.infill("x = 1\n\n", "", max_tokens=8, stop=["\n"], code_first=True)
    assert first.text.strip() and not first.text.startswith("\n")
    # the masked step's log-probability is the model's own (unmasked) one, so the gate still sees the doubt
    assert first.logprobs[0] < -0.1


def test_code_first_writes_code_where_the_model_would_start_a_comment(tiny_engine) -> None:
    prefix = "# Settings for the app.\n# Each value below is read at start.\n"
    plain = tiny_engine.infill(prefix, "", max_tokens=10, stop=["\n"])
    assert plain.text.lstrip().startswith("#"), "precondition: left alone, the model writes another comment"
    first = tiny_engine.infill(prefix, "", max_tokens=10, stop=["\n"], code_first=True)
    assert first.text.strip() and not first.text.lstrip().startswith("#")


def test_a_cancelled_generation_stops_within_a_few_tokens(tiny_engine) -> None:
    token = StopAfter(3)
    g = tiny_engine.complete("Once upon a time", max_tokens=200, cancel=token)
    assert g.stop_reason == "cancelled"
    assert len(g.logprobs) <= 3


def test_a_cancelled_prompt_stops_within_a_step_and_the_next_one_reuses_what_was_evaluated(tiny_engine) -> None:
    from greenpatch.engine.llama_kv import PROMPT_STEP

    tiny_engine._clear()
    long = "".join(f"def f{n}(x):\n    return x + {n}\n\n" for n in range(40))
    g = tiny_engine.infill(long, "", max_tokens=4, cancel=StopAfter(3))  # asked at the start, then every step
    assert g.stop_reason == "cancelled" and not g.logprobs
    kept = len(tiny_engine._kv.cached)
    assert 0 < kept <= 2 * PROMPT_STEP < g.prompt_tokens, "stopped after a step or two, the start kept"
    again = tiny_engine.infill(long, "", max_tokens=4)
    assert again.stop_reason != "cancelled" and again.reused_tokens >= kept


def test_cancelling_from_another_thread_stops_a_long_generation(tiny_engine) -> None:
    token = CancelToken()
    timer = threading.Timer(0.3, token.cancel)
    timer.start()
    # a count the model keeps going with, so it cannot reach end-of-text before the cancel lands
    count = ", ".join(str(n) for n in range(1, 40)) + ","
    g = tiny_engine.complete(count, max_tokens=2000, cancel=token)
    timer.join()
    assert g.stop_reason == "cancelled" and len(g.logprobs) < 2000


def test_out_of_time_a_block_ends_after_its_first_complete_line(tiny_engine) -> None:
    prefix = "def count():\n    n = 0\n"
    whole = tiny_engine.infill(prefix, "", max_tokens=40)
    assert whole.text.count("\n") >= 2, "precondition: left alone, the model writes several lines"
    token = CancelToken()
    token.wind_down_at = 0.0  # the budget ran out before the first token
    short = tiny_engine.infill(prefix, "", max_tokens=40, cancel=token)
    assert short.stop_reason == "time" and short.text.strip() and "\n" not in short.text.strip(), short.text
    assert whole.text.startswith(short.text + "\n"), "the same greedy text, cut at its first line of code's end"
    assert len(short.logprobs) == len(short.token_ends) and short.token_ends[-1] == len(short.text)


def test_end_check_says_how_likely_the_fill_ends_after_the_line(tiny_engine) -> None:
    prefix = "def f(x):\n    if x > 0:\n        return 1\n    if x"
    plain = tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"])
    checked = tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"], end_check=True)
    assert plain.end_logprob is None, "only when asked"
    assert checked.text == plain.text and checked.stop_reason == "stop"
    assert checked.end_logprob is not None and checked.end_logprob <= 0


def test_text_before_the_line_break_in_one_token_is_decoded_for_the_end_check_then_dropped(tiny_engine) -> None:
    import numpy as np

    prefix = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2)"
    first = tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"])
    cached = list(tiny_engine._kv.cached)
    merged = tiny_engine.tokenize(" \n")
    assert len(merged) == 1, "precondition: the vocabulary has a token for a space and a line break"
    from greenpatch.engine.llama_sampling import Stream

    stream = Stream(b"", ["\n"], 16, None, np.random.default_rng(0), start=len(cached), emitted=[merged[0]],
                     logits=np.zeros(1, dtype=np.float32))
    end = tiny_engine._end_logprob(stream, merged[0])
    assert end is not None and end <= 0
    assert tiny_engine._kv.cached == cached, "the decoded text left the cache"
    assert tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"]).text == first.text


def test_samples_decoded_side_by_side_are_the_samples_one_by_one(tiny_engine) -> None:
    prefix = "def f(x):\n    if x > 0:\n        return 1\n    "
    greedy = tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"])
    kwargs = {"max_tokens": 16, "stop": ["\n"], "end_check": True, "code_first": True}
    # greedy, side by side is exactly one by one: every sequence decodes its own tokens at its own positions
    lines = tiny_engine.infill_many(prefix, "\n", [0, 1, 2], temperature=0.0, **kwargs)
    alone = tiny_engine.infill(prefix, "\n", temperature=0.0, **kwargs)
    assert [g.text for g in lines] == [alone.text] * 3
    assert all(g.logprobs == pytest.approx(alone.logprobs, abs=0.05) for g in lines)  # batches round differently
    # sampled: the same seed gives the same first token, and each sample is a whole line of its own. Not the same
    # line: batches sum in another order, and a sample drawn near the edge of a token's share takes the next one.
    many = tiny_engine.infill_many(prefix, "\n", [0, 1, 2], temperature=0.8, **kwargs)
    prompt, _ = tiny_engine._healed_prompt(prefix, "\n", "", 16)
    assert tiny_engine._kv.cached == prompt, "the samples' tokens left the cache; the prompt stays"
    assert [g.text for g in tiny_engine.infill_many(prefix, "\n", [0, 1, 2], temperature=0.8, **kwargs)] == [
        g.text for g in many], "the same seeds side by side again: the same samples"
    one_by_one = [tiny_engine.infill(prefix, "\n", seed=seed, temperature=0.8, **kwargs) for seed in (0, 1, 2)]
    assert len({g.text for g in many}) > 1, "different seeds sample different lines"
    for a, b in zip(many, one_by_one, strict=True):
        assert a.stop_reason in ("stop", "eos", "length") and "\n" not in a.text
        assert len(a.logprobs) == len(a.token_ends) > 0 and a.token_ends[-1] == len(a.text)
        assert all(lp <= 0 for lp in a.logprobs) and (a.end_logprob is None or a.end_logprob <= 0)
        same = _common_tokens(a, b)
        assert same >= 1, "the first token is drawn from the same logits with the same seed"
        assert a.logprobs[:same] == pytest.approx(b.logprobs[:same], abs=0.05)
        if same == len(a.logprobs) == len(b.logprobs):  # the same line: the same end check
            assert a.end_logprob is None or a.end_logprob == pytest.approx(b.end_logprob, rel=0.02, abs=0.05)
    assert tiny_engine.infill(prefix, "\n", max_tokens=16, stop=["\n"]).text == greedy.text, "the cache is intact"


def _common_tokens(a, b) -> int:
    """How many tokens two generations share from their start (the same text up to the same token ends)."""
    n = 0
    for end_a, end_b in zip(a.token_ends, b.token_ends):
        if end_a != end_b or a.text[:end_a] != b.text[:end_b]:
            break
        n += 1
    return n


def test_samples_side_by_side_stop_when_cancelled(tiny_engine) -> None:
    token = StopAfter(4)
    many = tiny_engine.infill_many(CODE, "\n", [0, 1, 2], max_tokens=60, temperature=0.8, cancel=token)
    assert [g.stop_reason for g in many] == ["cancelled"] * 3
    assert all(len(g.logprobs) <= 4 for g in many)
    assert tiny_engine.infill(CODE, "\n", max_tokens=8).text.strip(), "the engine goes on working"


def test_samples_of_a_prompt_that_fills_the_context_take_turns_instead_of_failing(tiny_engine) -> None:
    prefix = "".join(f"value_{i} = {i} * {i}\n" for i in range(400)) + "total = "
    assert tiny_engine.count_tokens(prefix) > tiny_engine.n_ctx, "precondition: the prompt is cut to the window"
    many = tiny_engine.infill_many(prefix, "\n", [0, 1, 2, 3], max_tokens=60, temperature=0.8)
    assert len(many) == 4 and all(g.stop_reason in ("eos", "length") for g in many)
    assert any(len(g.logprobs) > 20 for g in many), "long samples, more than the cells left beside the prompt"


def _file(name: str, n: int) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x * {i} + len('{name}')\n\n" for i in range(n)) + f"def {name}_main():\n    "


def test_a_jump_back_resumes_the_prompt_parked_at_the_jump_away(tiny_engine) -> None:
    a, b = _file("alpha", 20), _file("beta", 20)
    kwargs = {"max_tokens": 12, "stop": ["\n"]}
    tiny_engine._clear()
    first_a = tiny_engine.infill(a, "\n", **kwargs)
    first_b = tiny_engine.infill(b, "\n", **kwargs)
    assert first_a.prompt_tokens > 300 and first_b.reused_tokens < 10, "precondition: two long, different prompts"
    resumed = tiny_engine.resumed
    back_a = tiny_engine.infill(a, "\n", **kwargs)
    assert tiny_engine.resumed == resumed + 1 and back_a.reused_tokens == back_a.prompt_tokens - 1
    assert back_a.text == first_a.text and back_a.logprobs == pytest.approx(first_a.logprobs, abs=0.15)  # batch sizes round differently
    back_b = tiny_engine.infill(b, "\n", **kwargs)
    assert tiny_engine.resumed == resumed + 2, "the prompt left behind was parked in turn"
    assert back_b.text == first_b.text and back_b.reused_tokens == back_b.prompt_tokens - 1
    assert len(tiny_engine._kv.cached) < 2 * back_b.prompt_tokens, "parked prompts hold no cells in the cache"
    tiny_engine.reuse = "none"
    try:
        tiny_engine.infill(a, "\n", **kwargs)
        assert not tiny_engine._kv.parked, "no reuse, nothing parked"
    finally:
        tiny_engine.reuse = "prefix"


def test_the_service_looks_for_a_better_line_on_an_empty_line_above_code(tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99, alternatives=2))
    doc = "def total(items):\n    result = 0\n    \n    return result\n"
    try:
        s = asyncio.run(service.complete("file:///t.py", None, doc, 1, 2, 4, CancelToken()))
    finally:
        worker.close()
    assert s is not None and s.end_logprob is not None and s.end_logprob <= 0
    assert s.sampled in (0, 2)


def test_a_line_opening_a_block_at_the_end_of_a_function_is_shown_with_a_body_or_not_at_all(
        tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99))
    doc = "def sign(x):\n    if x > 0:\n        return 1\n    elif x < 0:\n        return -1\n    \n"
    try:
        s = asyncio.run(service.complete("file:///t.py", None, doc, 1, 5, 4, CancelToken()))
    finally:
        worker.close()
    assert s is not None and s.raw.startswith("else:\n"), "the model's line, then what it wrote after it"
    assert s.text == "" or (s.text.startswith("else:\n        ") and s.shown), "on an empty line: a body or nothing"


def test_typing_along_a_line_the_filters_dropped_asks_the_model_nothing(tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99))
    doc = "def total(items):\n    result = 0\n    for item in items:\n        result += item\n    \n    return result\n"
    typed = doc.replace("    \n    return", "    r\n    return")
    try:
        first = asyncio.run(service.complete("file:///t.py", None, doc, 1, 4, 4, CancelToken()))
        assert first is not None and first.raw == "return result" and first.text == "", "it repeats the line below"
        again = asyncio.run(service.complete("file:///t.py", None, typed, 2, 4, 5, CancelToken()))
    finally:
        worker.close()
    assert again is not None and again.cached and not again.shown and service.model_calls == 1


def test_a_repeated_prompt_reuses_the_evaluated_prefix(tiny_engine) -> None:
    tiny_engine.reuse = "chunk"
    first = tiny_engine.infill(CODE, "", max_tokens=4)
    again = tiny_engine.infill(CODE + " a", "", max_tokens=4)
    assert again.reused_tokens >= first.prompt_tokens - 2


@pytest.mark.parametrize("mode", ["chunk", "prefix", "none"])
def test_every_reuse_mode_gives_the_same_greedy_answer(tiny_engine, mode: str) -> None:
    text = "# Utilities\nimport os\n\n\ndef read(path):\n    with open(path) as handle:\n        return"
    tiny_engine.reuse = "none"
    expected = tiny_engine.infill(text, "", max_tokens=8).text
    tiny_engine.reuse = mode
    tiny_engine.infill(text.replace("read", "load"), "", max_tokens=8)
    assert tiny_engine.infill(text, "", max_tokens=8).text == expected
    tiny_engine.reuse = "chunk"


def test_chat_uses_the_gguf_template(tiny_engine) -> None:
    g = tiny_engine.chat([ChatMessage("user", "Say hello.")], max_tokens=8, temperature=0)
    assert g.text.strip() and g.prompt_tokens > 5


def test_the_completion_service_gets_a_suggestion_from_the_real_model(tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    service = CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99))
    try:
        s = asyncio.run(service.complete("file:///t.py", None, CODE + "\n", 1, 1, 10, CancelToken()))
    finally:
        worker.close()
    assert s is not None and s.text.strip() and s.mean_logprob is not None


def test_the_next_line_computed_ahead_is_what_asking_there_gives(tiny_model_path: Path) -> None:
    from greenpatch.engine.llama import LlamaEngine

    worker = EngineWorker(lambda: LlamaEngine(tiny_model_path, name="tiny", n_ctx=2048))
    settings = CompletionSettings(debounce_ms=0, gate_threshold=-99, prefetch=True)
    doc = "def total(items):\n    result = 0\n    for item in items:\n        result +=\n"

    async def go() -> tuple[object, object, object]:
        service = CompletionService(worker, settings)
        first = await service.complete("file:///t.py", None, doc, 1, 3, 17, CancelToken())
        assert first is not None and first.shown and "\n" not in first.text
        while service._prefetch is not None and not service._prefetch.task.done():
            await asyncio.sleep(0.01)
        accepted = doc.replace("result +=\n", "result +=" + first.text + "\n        \n")
        ahead = await service.complete("file:///t.py", None, accepted, 2, 4, 8, CancelToken())
        asked = await CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99)).complete(
            "file:///u.py", None, accepted, 1, 4, 8, CancelToken())
        return service, ahead, asked

    try:
        service, ahead, asked = asyncio.run(go())
    finally:
        worker.close()
    assert service.prefetches >= 1  # type: ignore[attr-defined]
    assert ahead is not None and ahead.cached, "answered by the work done ahead"  # type: ignore[attr-defined]
    assert asked is not None and not asked.cached and asked.text == ahead.text  # type: ignore[attr-defined]


def test_text_inserted_mid_prompt_keeps_the_cached_text_after_it(tiny_engine) -> None:
    head = "# Inventory helpers\nimport os\n\n"
    tail = "\n\ndef count(stock, name):\n    return stock.get(name, 0)\n\n\ndef names(stock):\n    return sorted"
    tiny_engine.reuse = "chunk"
    tiny_engine.complete(head + tail, max_tokens=2)
    inserted = tiny_engine.complete(head + "import sys\n" + tail, max_tokens=2)
    keep = len(tiny_engine.tokenize(head)) - 1
    assert inserted.reused_tokens > keep + 10, "the text after the insertion was shifted, not recomputed"
    tiny_engine.reuse = "none"
    fresh = tiny_engine.complete(head + "import sys\n" + tail, max_tokens=6)
    tiny_engine.reuse = "chunk"
    tiny_engine.complete(head + tail, max_tokens=2)
    assert tiny_engine.complete(head + "import sys\n" + tail, max_tokens=6).text == fresh.text


LETTERS = "\n".join(f"{c} = '{c * 3}'" for c in "abcdefghij") + "\n"


def test_a_request_like_the_last_one_is_decoded_from_a_draft_and_gives_the_same_text(tiny_engine) -> None:
    tiny_engine.speculate = False
    plain = tiny_engine.complete(LETTERS, max_tokens=24)
    tiny_engine.speculate = True
    tiny_engine.complete(LETTERS, max_tokens=24)
    again = tiny_engine.complete(LETTERS, max_tokens=24)
    assert again.text == plain.text, "drafts save decoding steps, never change the greedy text"
    # how many drafted tokens the batched check keeps is not a fixed count: a draft token loses to another spelling
    # of the same text when the batch rounds a near-tie the other way (what rounds how: the KV cache's layout)
    assert again.drafted_tokens > 0 and again.accepted_tokens > 0, "the earlier output was proposed and kept"


def test_a_rejected_draft_leaves_the_cache_as_if_it_was_never_drafted(tiny_engine) -> None:
    tiny_engine.speculate = True
    tiny_engine.complete(LETTERS, max_tokens=24)
    other = LETTERS.replace("'", '"')
    partly = tiny_engine.complete(other, max_tokens=24)  # drafts from the quoted letters, which differ in quotes
    assert partly.drafted_tokens > partly.accepted_tokens, "precondition: some drafted tokens were rejected"
    follow = tiny_engine.complete(other + "k = ", max_tokens=8)
    tiny_engine.reuse, tiny_engine.speculate = "none", False
    fresh = tiny_engine.complete(other + "k = ", max_tokens=8)
    tiny_engine.reuse, tiny_engine.speculate = "chunk", True
    assert follow.text == fresh.text


def test_drafted_tokens_that_cannot_be_removed_end_the_generation_with_a_clear_error(tiny_engine, monkeypatch) -> None:
    import greenpatch.engine.llama as llama_module

    tiny_engine.speculate, tiny_engine.reuse = True, "chunk"
    tiny_engine.complete(LETTERS, max_tokens=24)
    monkeypatch.setattr(llama_module.llama_cpp, "llama_memory_seq_rm", lambda *args: False)
    with pytest.raises(ModelError, match="drafted tokens"):
        tiny_engine.complete(LETTERS.replace("'", '"'), max_tokens=24)
    monkeypatch.undo()
    assert tiny_engine.complete(LETTERS.replace("'", '"'), max_tokens=8).text, "the next request starts afresh"


def test_a_prepared_place_answers_from_the_prepared_state(tiny_engine) -> None:
    a, b = _file("alpha", 20), _file("beta", 20)
    kwargs = {"max_tokens": 12, "stop": ["\n"]}
    tiny_engine._clear()
    cold = tiny_engine.infill(a, "\n", **kwargs)
    tiny_engine._clear()
    held = tiny_engine.prepare(a, "\n", max_tokens=12)
    assert held == cold.prompt_tokens, "the whole prompt the request builds is evaluated ahead"
    warm = tiny_engine.infill(a, "\n", **kwargs)
    assert warm.reused_tokens == warm.prompt_tokens - 1, "only the last token is evaluated again (for its logits)"
    assert warm.text == cold.text
    tiny_engine.prepare(b, "\n", max_tokens=12)
    back = tiny_engine.infill(a, "\n", **kwargs)
    assert back.reused_tokens == back.prompt_tokens - 1, "the place prepared before another one was parked"


def test_a_cancelled_preparation_keeps_what_it_evaluated_for_the_request(tiny_engine) -> None:
    from greenpatch.cancel import CancelToken
    from greenpatch.engine.llama import PREPARE_STEP

    a = _file("gamma", 20)
    tiny_engine._clear()
    token = CancelToken()
    steps = 0

    class _AfterTwoSteps(CancelToken):
        def is_set(self) -> bool:
            nonlocal steps
            steps += 1
            return steps > 3  # the check before the prompt, then one before each step

    held = tiny_engine.prepare(a, "\n", max_tokens=12, cancel=_AfterTwoSteps())
    assert held == 2 * PREPARE_STEP, "stopped after two steps, which stay evaluated"
    answer = tiny_engine.infill(a, "\n", max_tokens=12, stop=["\n"], cancel=token)
    assert answer.reused_tokens == held


def test_pending_counts_what_the_cache_and_the_parked_prompts_do_not_hold(tiny_engine) -> None:
    a, b = _file("delta", 20), _file("epsilon", 20)
    tiny_engine._clear()
    cold = tiny_engine.pending(a, "\n", max_tokens=12)
    assert cold == tiny_engine.infill(a, "\n", max_tokens=12, stop=["\n"]).prompt_tokens, "nothing held: all of it"
    assert tiny_engine.pending(a, "\n", max_tokens=12) == 0, "the prompt just answered is held whole"
    assert tiny_engine.pending(a + " x", "\n", max_tokens=12) <= 4, "typing on: the few new tokens"
    tiny_engine.prepare(b, "\n", max_tokens=12)
    assert tiny_engine.pending(a, "\n", max_tokens=12) == 0, "parked at the jump away, still held"


def test_a_short_prompt_prepared_before_a_long_one_stays_held(tiny_engine) -> None:
    short, long = _file("zeta", 3), _file("eta", 30)
    tiny_engine._clear()
    assert 64 <= tiny_engine.pending(short, "\n", max_tokens=12) < 256, "a short prompt, as a cold place's"
    tiny_engine.prepare(short, "\n", max_tokens=12)
    tiny_engine.prepare(long, "\n", max_tokens=12)
    assert tiny_engine.pending(short, "\n", max_tokens=12) == 0, "parked when the long one replaced it"
    answer = tiny_engine.infill(short, "\n", max_tokens=8, stop=["\n"])
    assert answer.reused_tokens == answer.prompt_tokens - 1
