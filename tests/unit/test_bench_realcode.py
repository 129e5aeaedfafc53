"""The real-code replay's judgement of gate policies on recorded keystrokes (pure: no engine)."""

from __future__ import annotations

from greenpatch.bench.realcode import Keystroke, Policy, measure, shown_text
from greenpatch.completion.filters import confident_end


def _answer(answer: int, full: str, logprobs: list[float], follows: str, typed: int = 0) -> Keystroke:
    """A suggestion made of one-character tokens, `typed` of them typed along."""
    ends = list(range(1, len(full) + 1))
    return Keystroke(answer, full, typed, sum(logprobs) / len(logprobs), None, logprobs, ends, "", follows)


def test_a_suggestion_is_cut_before_its_first_unsure_token() -> None:
    assert confident_end([-0.1, -0.1, -3.0, -0.1], [1, 2, 3, 4], 0, -1.0, 4) == 2
    assert confident_end([-0.1, -0.1, -3.0, -0.1], [1, 2, 3, 4], 3, -1.0, 4) == 4, "the unsure token was typed"
    assert confident_end([-0.1], [], 0, -1.0, 4) == 4, "an engine that cannot tell shows it whole"


def test_the_fixed_gate_withholds_what_is_unsure_on_average_and_the_cut_shows_its_sure_start() -> None:
    # "abcd": sure "ab", then an unsure "c" the file does not have
    strokes = [_answer(0, "abcd", [-0.05, -0.05, -2.0, -0.05], "abXY")]
    assert shown_text(strokes, Policy("fixed", -0.25)) == [""]
    assert shown_text(strokes, Policy("cut", -1.0, -1.0)) == ["ab"]


def test_a_withheld_suggestion_is_shown_once_its_rest_passes_the_gate_and_stays_shown() -> None:
    lps = [-3.0, -0.05, -0.05, -0.05]
    strokes = [_answer(0, "abcd", lps, "abcd"), _answer(0, "abcd", lps, "bcd", typed=1),
               _answer(0, "abcd", lps, "cd", typed=2)]
    assert shown_text(strokes, Policy("fixed", -0.25)) == ["", "bcd", "cd"]


def test_the_share_right_counts_the_first_line_shown_against_the_rest_of_the_line() -> None:
    strokes = [_answer(0, "abcd", [-0.1] * 4, "abXY\nnext"), _answer(1, "ef", [-0.1] * 2, "ef\nmore")]
    result = measure(strokes, Policy("fixed", -0.25))
    assert (result["shown_chars"], result["right_chars"]) == (6, 4)
    assert (result["suggestions_shown"], result["accepted"], result["accepted_chars"]) == (2, 1, 2), \
        "the simulated user accepts only what the file has next"


def test_the_simulated_user_accepts_a_cut_suggestion_the_file_continues() -> None:
    strokes = [_answer(0, "abcd", [-0.05, -0.05, -2.0, -0.05], "abXY")]
    assert measure(strokes, Policy("fixed", -99.0))["accepted"] == 0
    assert measure(strokes, Policy("cut", -99.0, -1.0))["accepted"] == 1


def test_the_replay_types_with_the_full_prompt_or_as_at_a_cold_place_with_the_short_one(tmp_path) -> None:
    from greenpatch.bench.realcode import replay
    from greenpatch.engine.fake import FakeEngine

    source = tmp_path / "mod.py"
    source.write_text("".join(f"def function_{i}(value):\n    return value * {i} + 1000\n\n" for i in range(60)))
    for cold, longest in ((False, 1000), (True, 192 * 3.5)):
        engine = FakeEngine(text="value")
        result = replay(engine, [source], [Policy("fixed", -0.25)], lines_per_file=2, cold=cold)
        prefixes = [len(str(c["prefix"])) for c in engine.calls]
        assert result["lines"] == 2 and prefixes
        assert (max(prefixes) <= longest) if cold else (min(prefixes) >= longest), (cold, prefixes)
        assert all(c["context"] == "" for c in engine.calls) or not cold
