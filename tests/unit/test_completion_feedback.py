"""The local log of suggestions shown and what became of them, its statistics, and the gate calibrated on it."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest
from greenpatch.cli import main
from greenpatch.completion import feedback
from greenpatch.completion.feedback import FeedbackLog, Record, calibrate, read_records, summarize

DEFAULT = -0.25


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_suggestion_accepted_through_its_command_is_recorded_as_accepted(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "ws.jsonl")
    id_ = log.shown("a.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
    log.accepted(id_)
    [record] = read_records([log.path])
    assert (record.outcome, record.chars, record.kind, record.model, record.latency_ms) == (
        "accepted", 3, "line", "fake", 50.0)


def test_the_next_request_in_the_same_document_passes_over_the_suggestion_pending_there(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "ws.jsonl")
    first = log.shown("a.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
    log.shown("b.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
    log.request("a.py", along="")
    outcomes = {r.id: r.outcome for r in read_records([log.path])}
    assert outcomes[first] == "passed" and sorted(outcomes.values()) == ["", "passed"]


def test_typing_along_a_suggestion_keeps_its_id_and_typing_it_whole_counts_as_taken(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "ws.jsonl")
    first = log.shown("a.py", mean_logprob=-0.1, chars=8, kind="line", model="fake", seconds=0.05)
    log.request("a.py", along="rest")
    again = log.shown("a.py", mean_logprob=-0.1, chars=5, kind="line", model="fake", seconds=0.0, along="rest")
    log.request("a.py", along="whole")
    [record] = read_records([log.path])
    assert again == first and record.outcome == "typed" and record.took


def test_an_accept_after_the_next_request_passed_it_over_wins(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "ws.jsonl")
    id_ = log.shown("a.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
    log.request("a.py", along="")  # the request the insertion triggered overtook the client's command
    log.accepted(id_)
    assert [r.outcome for r in read_records([log.path])] == ["accepted"]


def test_a_partial_accept_records_how_many_characters_were_taken(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "ws.jsonl")
    id_ = log.shown("a.py", mean_logprob=-0.1, chars=12, kind="block", model="fake", seconds=0.05)
    log.accepted(id_, 4)
    [record] = read_records([log.path])
    assert (record.outcome, record.accepted_chars) == ("partial", 4)


def test_the_log_is_trimmed_to_its_newer_half_past_its_size_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "MAX_BYTES", 2000)
    log = FeedbackLog(tmp_path / "ws.jsonl")
    ids = [log.shown("a.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
           for _ in range(40)]
    assert log.path.stat().st_size <= 2000
    kept = [e["id"] for e in events(log.path)]
    assert kept == ids[-len(kept):] and 5 < len(kept) < 40


def test_a_new_workspace_log_replaces_the_least_recently_written_past_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "MAX_LOGS", 3)
    for n, name in enumerate(["a", "b", "c"]):
        (tmp_path / f"{name}.jsonl").write_text("")
        os.utime(tmp_path / f"{name}.jsonl", (n, n))
    FeedbackLog(tmp_path / "d.jsonl").shown("x.py", mean_logprob=-0.1, chars=1, kind="line", model="m", seconds=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.jsonl", "c.jsonl", "d.jsonl"]


def test_a_log_that_cannot_be_written_stops_recording_without_raising(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    log = FeedbackLog(tmp_path / "file" / "ws.jsonl")  # its folder is a file
    log.shown("a.py", mean_logprob=-0.1, chars=3, kind="line", model="fake", seconds=0.05)
    assert not log.enabled


def test_lines_that_are_not_events_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ws.jsonl"
    path.write_text('not json\n{"event": "shown"}\n{"event": "shown", "id": "x", "mean_logprob": -0.2, "chars": 2, '
                    '"kind": "line", "model": "m", "latency_ms": 9}\n[1]\n')
    assert [r.id for r in read_records([path])] == ["x"]


def test_the_log_of_a_workspace_lives_in_the_user_cache_named_after_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = feedback.log_path(tmp_path / "proj")
    assert path.parent == tmp_path / "cache" / "greenpatch" / "feedback" and path.name.startswith("proj-")


# --- the calibrated gate ------------------------------------------------------------------------------------------


def records(pairs: list[tuple[float, bool]]) -> list[Record]:
    return [Record(str(i), lp, 5, "line", "m", 100.0, float(i), "accepted" if took else "passed")
            for i, (lp, took) in enumerate(pairs)]


def test_with_too_few_records_the_gate_keeps_its_fixed_threshold() -> None:
    few = records([(-0.1, True)] * 49)
    c = calibrate(few, [], 0.5, DEFAULT)
    assert (c.threshold, c.scope) == (DEFAULT, "default") and "fewer than the 50" in c.reason


def test_a_target_of_zero_is_the_fixed_gate_whatever_the_records() -> None:
    assert calibrate(records([(-0.1, False)] * 100), [], 0, DEFAULT).threshold == DEFAULT


def test_the_least_strict_threshold_reaching_the_target_is_chosen() -> None:
    # taken when at least -0.3, passed over below: -0.3 keeps only what was taken, looser thresholds less
    log = records([(-0.01 * i, i <= 30) for i in range(100)])
    c = calibrate(log, [], 0.8, DEFAULT)
    assert c.threshold == -0.3 and c.scope == "workspace" and c.accepted_share == 1.0


def test_a_workspace_with_too_few_records_is_calibrated_on_all_workspaces() -> None:
    elsewhere = records([(-0.01 * i, i <= 30) for i in range(100)])
    c = calibrate(records([(-0.9, False)] * 10), elsewhere, 0.8, DEFAULT)
    assert c.scope == "all workspaces" and c.threshold == -0.3


def test_where_no_threshold_reaches_the_target_the_best_one_is_chosen_and_said() -> None:
    log = records([(-0.01 * i, i % 3 == 0) for i in range(100)])
    c = calibrate(log, [], 0.9, DEFAULT)
    assert "no threshold reaches" in c.reason and c.kept >= feedback.MIN_KEPT


def _user_accepts(logprob: float) -> float:
    """A simulated user: half of what the model gives -0.12 is taken, more above, less below."""
    return 1 / (1 + math.exp(-(logprob + 0.12) * 12))


def _expected_share(threshold: float, steps: int = 2000) -> float:
    """What the simulated user takes of suggestions spread evenly from `threshold` to 0."""
    return sum(_user_accepts(threshold * (i + 0.5) / steps) for i in range(steps)) / steps


def test_a_simulated_user_reaches_the_acceptance_target_within_200_shown_suggestions(tmp_path: Path) -> None:
    target = 0.6
    assert _expected_share(DEFAULT) < target - 0.1  # the fixed gate shows this user too much
    finals, late = [], []
    for seed in range(10):
        rng = random.Random(seed)
        log = FeedbackLog(tmp_path / f"user{seed}.jsonl")
        taken: list[bool] = []
        while len(taken) < 200:
            logprob = rng.uniform(-1.0, 0.0)
            if logprob < log.threshold(target, DEFAULT):
                continue  # withheld
            id_ = log.shown("a.py", mean_logprob=logprob, chars=5, kind="line", model="m", seconds=0.1)
            taken.append(rng.random() < _user_accepts(logprob))
            if taken[-1]:
                log.accepted(id_)
            else:
                log.request("a.py", along="")
        finals.append(_expected_share(log.threshold(target, DEFAULT)))
        late.append(sum(taken[100:]) / 100)
    assert sum(finals) / len(finals) >= target  # what the final thresholds show, on average over ten users
    assert sum(late) / len(late) >= target  # what they took of the second hundred
    assert min(late) >= target - 0.1


# --- statistics and `greenpatch stats` ------------------------------------------------------------------------------


def test_statistics_group_the_acceptance_by_confidence_kind_model_and_latency() -> None:
    log = records([(-0.05, True), (-0.05, False), (-0.7, False), (-2.0, False)])
    log[0].kind = "block"
    data = summarize(log)
    assert data["overall"]["rate"] == 0.25
    assert data["by_gate"]["-0.1..0"] == {"shown": 2, "resolved": 2, "accepted": 1, "passed_over": 1, "rate": 0.5}
    assert list(data["by_gate"]) == ["-0.1..0", "-1..-0.5", "< -1"]
    assert data["by_kind"]["block"]["rate"] == 1.0 and data["by_model"]["m"]["shown"] == 4
    assert list(data["by_latency"]) == ["100-300 ms"]


def _write_log(path: Path, pairs: list[tuple[float, bool]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (lp, took) in enumerate(pairs):
        lines.append(json.dumps({"event": "shown", "id": f"s{i}", "time": i, "mean_logprob": lp, "chars": 4,
                                 "kind": "line", "model": "default", "latency_ms": 80 + i}))
        lines.append(json.dumps({"event": "accepted" if took else "passed", "id": f"s{i}"}))
    path.write_text("\n".join(lines) + "\n")


def test_stats_prints_the_acceptance_with_bars_and_explains_the_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "proj"
    project.mkdir()
    _write_log(feedback.log_path(project), [(-0.01 * i, i <= 30) for i in range(100)])
    assert main(["stats", str(project), "--target", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "100 shown, 100 with an outcome" in out and "accepted 31%" in out
    assert "-0.1..0" in out and "#" in out
    assert "calibrated gate at acceptTarget 0.8: threshold -0.3 (from workspace, 100 records)" in out


def test_stats_as_json_gives_the_figures_and_the_calibration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "proj"
    project.mkdir()
    _write_log(feedback.log_path(project), [(-0.01 * i, i <= 30) for i in range(100)])
    assert main(["stats", str(project), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overall"]["accepted"] == 31 and data["by_kind"]["line"]["shown"] == 100
    assert data["calibration"]["scope"] == "workspace" and data["calibration"]["target"] == 0.5


def test_stats_without_records_says_how_they_are_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["stats", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no suggestions recorded yet" in out and "fixed gate" in out


async def test_the_completion_service_gates_on_the_calibrated_threshold_when_a_target_is_set(tmp_path: Path) -> None:
    from greenpatch.cancel import CancelToken
    from greenpatch.completion.service import CompletionService
    from greenpatch.config import CompletionSettings
    from greenpatch.engine.fake import FakeEngine
    from greenpatch.engine.worker import EngineWorker

    path = tmp_path / "ws.jsonl"
    _write_log(path, [(-0.01 * i, i <= 10) for i in range(100)])  # this user takes only what is above -0.1
    worker = EngineWorker(lambda: FakeEngine(logprobs=[-0.2]))
    try:
        shown = []
        for target in (0.0, 0.8):
            service = CompletionService(worker, CompletionSettings(debounce_ms=0, accept_target=target))
            service.feedback = FeedbackLog(path)
            s = await service.complete("file:///a.py", None, "def add(a, b):\n    return a +\n", 1, 1, 14,
                                       CancelToken())
            assert s is not None and s.text == " b" and s.mean_logprob == -0.2
            shown.append(s.shown)
        assert shown == [True, False]  # the fixed gate (-0.25) shows it; calibrated at 0.8, the gate is -0.1
    finally:
        worker.close()


def test_an_acceptance_target_outside_0_to_1_takes_the_default_and_says_so() -> None:
    from greenpatch.config import read_settings

    read = read_settings({"completions": {"acceptTarget": 2, "record": False}})
    assert read.settings.completions.accept_target == 0.0 and read.settings.completions.record is False
    assert "completions.acceptTarget" in str(read.problems[0]) and "more than 1" in str(read.problems[0])
