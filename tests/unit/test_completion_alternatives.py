"""A better line where the model's first choice does not close the gap (fake engine: which line is kept, when
sampling happens at all). The real engine's end probability is tested in tests/model/test_llama_engine.py."""

from __future__ import annotations

from pathlib import Path

from greenpatch.cancel import CancelToken
from greenpatch.completion.alternatives import better_line, code_follows, ends_matter
from greenpatch.completion.prompt import build_request
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.fake import FAKE_FIM, FakeEngine
from greenpatch.engine.worker import EngineWorker

# The cursor goes on the empty line 2 (after its indentation); the code below it uses `n`.
DOC = "def f(xs):\n    n = 0\n    \n    return n\n"


def _request(text: str = DOC, line: int = 2, col: int = 4):
    return build_request(text, line, col, CompletionSettings(), fim=FAKE_FIM)


def _better(engine: FakeEngine, count: int, cancel: CancelToken | None = None):
    """The model's first choice, and what better_line makes of it."""
    req = _request()
    greedy = engine.infill(req.prefix, req.suffix, stop=req.stop, end_check=True)
    return greedy, better_line(engine, req, greedy, count, cancel)


def test_code_follows_where_the_fill_must_connect_to_code_below() -> None:
    assert code_follows("\n    return n\n")
    assert code_follows("\n\n    # a comment first\n    else:\n")
    assert not code_follows("\n"), "the end of the file: the model rightly goes on"
    assert not code_follows("\n\n\ndef other():\n"), "a new definition starts below"
    assert not code_follows("\n    @property\n    def x(self):\n")
    assert not code_follows('\nif __name__ == "__main__":\n')


def test_only_an_empty_line_above_code_asks_where_the_fill_ends() -> None:
    assert ends_matter(_request())
    assert not ends_matter(_request("def f(xs):\n    n = 0\n    \n", 2, 4)), "an empty line but nothing below"
    assert not ends_matter(_request("def f(xs):\n    n = \n    return n\n", 1, 8)), "text typed on the line"


def test_a_line_that_ends_the_fill_confidently_is_kept_without_sampling() -> None:
    engine = FakeEngine(text="n = len(xs)", logprobs=[-0.01] * 4, end_logprob=-0.05,
                        samples=[("n = 1", [-0.01] * 3, -0.01)])
    greedy, choice = _better(engine, 3)
    assert choice.generation is greedy and choice.sampled == 0 and len(engine.calls) == 1


def test_when_the_fill_would_go_on_the_likeliest_whole_fill_is_kept() -> None:
    samples = [
        ("n = len(xs)", [-0.1, -0.1, -0.2, -0.1], -0.05),  # total -0.55: the likeliest whole fill
        ("for x in xs:", [-0.1, -0.1, -0.1, -0.1], -2.0),  # total -2.4: the start of something longer
        ("n = len(xs)", [-0.1, -0.1, -0.2, -0.1], -0.05),  # a duplicate is not counted twice
    ]
    engine = FakeEngine(text="while xs:", logprobs=[-0.05, -0.05, -0.05], end_logprob=-3.0, samples=samples)
    _, choice = _better(engine, 3)
    assert choice.generation.text == "n = len(xs)" and choice.sampled == 3
    assert choice.text == "n = len(xs)", "the filtered text comes with the choice"
    assert [c["seed"] for c in engine.calls[1:]] == [0, 1, 2]
    assert all(c["temperature"] > 0 and c["end_check"] for c in engine.calls[1:])


class BatchingEngine(FakeEngine):
    """A fake engine that, like the local one, samples several lines in one call."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batches: list[list[int]] = []

    def infill_many(self, prefix, suffix, seeds, **kwargs):
        self.batches.append(list(seeds))
        return [self.infill(prefix, suffix, seed=seed, **kwargs) for seed in seeds]


def test_an_engine_that_samples_side_by_side_gets_every_seed_in_one_call() -> None:
    samples = [("n = len(xs)", [-0.1] * 4, -0.05), ("for x in xs:", [-0.1] * 4, -2.0)]
    engine = BatchingEngine(text="while xs:", logprobs=[-0.05] * 3, end_logprob=-3.0, samples=samples)
    _, choice = _better(engine, 4)
    assert engine.batches == [[0, 1, 2, 3]]
    assert choice.text == "n = len(xs)" and choice.sampled == 4


def test_the_first_choice_stays_when_no_sample_beats_it() -> None:
    engine = FakeEngine(text="n = sum(xs)", logprobs=[-0.3] * 4, end_logprob=-1.0,
                        samples=[("for x in xs:", [-0.5] * 4, -3.0)])
    greedy, choice = _better(engine, 2)
    assert choice.generation is greedy


def test_a_sample_the_filters_would_drop_is_never_chosen() -> None:
    # "return n" repeats the line below: likely, but the post-filters would not show it
    engine = FakeEngine(text="while xs:", logprobs=[-0.1] * 3, end_logprob=-4.0,
                        samples=[("return n", [-0.01, -0.01], -0.01), ("n = len(xs)", [-0.1] * 4, -0.1)])
    _, choice = _better(engine, 2)
    assert choice.generation.text == "n = len(xs)"


def test_cancelling_stops_the_sampling() -> None:
    engine = FakeEngine(text="while xs:", logprobs=[-0.1] * 3, end_logprob=-4.0,
                        samples=[("n = len(xs)", [-0.1] * 4, -0.1)])
    token = CancelToken()
    token.cancel()
    _, choice = _better(engine, 3, token)
    assert choice.sampled == 0


async def test_the_service_shows_the_better_line_on_an_empty_line_in_code() -> None:
    engine = FakeEngine(text="xs.sort()", logprobs=[-0.1] * 3, end_logprob=-4.0,
                        samples=[("n = len(xs)", [-0.05] * 4, -0.05)])
    worker = EngineWorker(lambda: engine)
    try:
        service = CompletionService(worker, CompletionSettings(debounce_ms=0))
        s = await service.complete("file:///w/f.py", Path("/w/f.py"), DOC, 1, 2, 4, CancelToken())
        assert s is not None and s.shown and s.text == "n = len(xs)" and s.sampled == CompletionSettings().alternatives
        assert s.end_logprob == -0.05
        service.update_settings(CompletionSettings(debounce_ms=0, alternatives=0))
        s = await service.complete("file:///w/f.py", Path("/w/f.py"), DOC + "\n", 2, 2, 4, CancelToken())
        assert s is not None and s.text == "xs.sort()" and s.sampled == 0, "alternatives off: the first choice"
        assert not s.shown, "which the gate withholds: the model would not end the fill after it"
    finally:
        worker.close()
