"""The real repair pipeline with real pytest in the verifier's sandbox, on small buggy workspaces, with the
model-free mutation generator and a scripted engine standing in for the model."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.config import RepairSettings, VerifySettings
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.errors import Cancelled
from greenpatch.repair import RepairPipeline
from greenpatch.verify import Verifier
from inline_worker import InlineWorker

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(DATA / name, target)
        return target

    return copy


@pytest.fixture
def verifier_for(tmp_path: Path) -> Iterator[Callable[[Path], Verifier]]:
    made: list[Verifier] = []

    def make(root: Path) -> Verifier:
        # a run gets the product's limit and a repair 600 s, not 60 s and 120 s: these repairs end when their
        # candidates do, and a busy machine takes several times longer over them (one run: 38 s at load 28)
        verifier = Verifier(root, timeout=VerifySettings().run_timeout, state_dir=tmp_path / f"state-{len(made)}")
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        verifier.close()


def _pipeline(root: Path, verifier: Verifier, engine: Any = None, **settings: Any) -> RepairPipeline:
    return RepairPipeline(root, verifier, engine, RepairSettings(**{"max_seconds": 600.0, **settings}))


def test_an_off_by_one_gets_a_verified_fix_that_passes_every_test(workspace, verifier_for) -> None:
    root = workspace("buggy_offbyone")
    report = _pipeline(root, verifier_for(root)).repair()
    assert [f.nodeid for f in report.failures] == ["tests/test_counting.py::test_total_upto_three"]
    best = report.fixes[0]
    assert best.verified and best.path == "counting.py"
    assert "range(n + 1)" in best.new_text
    assert best.tests_passed == best.tests_run >= 2
    assert "-    return sum(range(n))" in best.diff
    assert best.changed_range == (2, 2)
    assert report.failures[0].path == "counting.py" and report.failures[0].line == 3
    assert (root / "counting.py").read_text() == (DATA / "buggy_offbyone" / "counting.py").read_text()


def test_a_wrong_operator_is_fixed_without_breaking_the_other_tests(workspace, verifier_for) -> None:
    root = workspace("buggy_operator")
    report = _pipeline(root, verifier_for(root)).repair()
    assert report.fixes and "sum(values) / len(values)" in report.fixes[0].new_text
    assert not report.unfixed


def test_candidates_that_pass_the_failing_test_but_break_another_are_never_shown(workspace, verifier_for) -> None:
    root = workspace("buggy_breaks_other")
    report = _pipeline(root, verifier_for(root)).repair()
    # `>` -> `<` and `>` -> `!=` make discount(100) pass but break the small-order test: nothing is offered.
    assert report.candidates_tried >= 3
    assert report.fixes == []
    assert [f.nodeid for f in report.unfixed] == ["tests/test_shop.py::test_discount_from_one_hundred"]


def test_a_model_candidate_is_shown_once_it_passes(workspace, verifier_for) -> None:
    root = workspace("buggy_breaks_other")
    engine = InlineWorker(FakeEngine(text="if total >= 100:"))
    report = _pipeline(root, verifier_for(root), engine).repair()
    assert report.fixes, report
    assert all(f.verified for f in report.fixes)
    assert report.fixes[0].generator == "infill"
    assert "if total >= 100:" in report.fixes[0].new_text
    assert all("total < 150" not in f.new_text and "total != 150" not in f.new_text for f in report.fixes)


def test_a_syntax_error_gets_a_fix_that_parses_and_passes(workspace, verifier_for) -> None:
    root = workspace("buggy_syntax")
    report = _pipeline(root, verifier_for(root)).repair()
    assert report.fixes and report.fixes[0].new_text.startswith("def add(a, b):\n")
    assert report.fixes[0].tests_passed == 1


def test_unsaved_changes_are_repaired_instead_of_the_files_on_disk(workspace, verifier_for) -> None:
    root = workspace("buggy_operator")
    edited = (root / "stats.py").read_text().replace("sum(values) * len(values)", "sum(values) / len(values)")
    edited = edited.replace("max(values) - min(values)", "max(values) + min(values)")
    report = _pipeline(root, verifier_for(root)).repair(changes={"stats.py": edited}, focus=["stats.py"])
    assert [f.nodeid for f in report.failures] == ["tests/test_stats.py::test_spread"]
    assert report.fixes and "max(values) - min(values)" in report.fixes[0].new_text
    assert "sum(values) / len(values)" in report.fixes[0].new_text


def test_nothing_failing_means_no_fixes_and_no_candidates(workspace, verifier_for) -> None:
    root = workspace("buggy_offbyone")
    (root / "counting.py").write_text("def total_upto(n):\n    return sum(range(n + 1))\n")
    report = _pipeline(root, verifier_for(root)).repair()
    assert report.failures == [] and report.fixes == [] and report.candidates_tried == 0


def test_cancelling_stops_the_repair_between_candidates(workspace, verifier_for) -> None:
    root = workspace("buggy_breaks_other")
    cancel = CancelToken()
    seen: list[str] = []

    def progress(message: str, percent: int | None = None) -> None:
        seen.append(message)
        if message.startswith("verifying "):
            cancel.cancel()

    pipeline = _pipeline(root, verifier_for(root))
    with pytest.raises(Cancelled):
        pipeline.repair(cancel=cancel, progress=progress)
    assert sum(m.startswith("verifying ") for m in seen) == 1


def test_when_weak_tests_let_several_fixes_through_the_majority_behaviour_wins_and_says_so(
    workspace, verifier_for
) -> None:
    root = workspace("buggy_weak_tests")
    report = _pipeline(root, verifier_for(root)).repair()
    # `age >= 18`, `age > 17` and `age == 18` all pass the one test; on extra ages the first two agree.
    assert len(report.fixes) >= 2
    best = report.fixes[0]
    assert "age >= 18" in best.new_text or "age > 17" in best.new_text
    assert "candidates disagree on extra inputs" in best.note
    assert best.score["behaviour_group"] >= 2


class LineFiller(FakeEngine):
    """A slow scripted model that fills only the line after `after` (with `fill`) and scores `fill` as natural."""

    def __init__(self, after: str, fill: str) -> None:
        super().__init__(delay=0.3)
        self.after, self.fill = after, fill

    def _answer(self, prefix: str) -> str:
        return self.fill if prefix.rstrip("\n").rsplit("\n", 1)[-1].strip() == self.after else ""

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "", cancel: Any = None) -> list[float]:
        return [-0.05] if self.fill in middle else [-1.0]


def test_when_weak_tests_let_a_mutation_through_the_model_fills_every_suspicious_line(
    workspace, verifier_for
) -> None:
    root = workspace("buggy_weak_distance")
    # `i > j`, `a + b` and `a * b` all pass the one test; the right fix is on the third line the model fills.
    worker = EngineWorker(lambda: LineFiller("if i != j:", "gap = abs(a - b)"))
    try:
        report = _pipeline(root, verifier_for(root), worker).repair()
    finally:
        worker.close()
    generators = {f.generator for f in report.fixes}
    assert "mutation" in generators, "a mutation passed first"
    best = report.fixes[0]
    assert best.generator == "infill" and "gap = abs(a - b)" in best.new_text
    assert "few tests cover this code" in best.note


class Reviewer(FakeEngine):
    """A fake whose teacher-forced score prefers changed lines containing `liked` (a stand-in for the model)."""

    def __init__(self, liked: str) -> None:
        super().__init__()
        self.liked = liked
        self.scored: list[str] = []

    def score(self, prefix: str, suffix: str, middle: str, *, context: str = "", cancel: Any = None) -> list[float]:
        self.scored.append(middle)
        return [-0.05, -0.05] if self.liked in middle else [-1.5, -0.5]


@pytest.mark.parametrize("liked", ["age > 17", "age >= 18"])
def test_among_fixes_that_behave_alike_the_one_the_model_finds_most_natural_wins(
    workspace, verifier_for, liked: str
) -> None:
    root = workspace("buggy_weak_tests")
    reviewer = Reviewer(liked)
    report = _pipeline(root, verifier_for(root), InlineWorker(reviewer)).repair()
    best = report.fixes[0]
    assert liked in best.new_text
    assert best.score["naturalness"] == -0.05
    assert all("\n" not in m and m.strip() for m in reviewer.scored), "only the changed line is scored"


def test_the_model_liking_a_fix_never_beats_the_behaviour_most_fixes_share(workspace, verifier_for) -> None:
    root = workspace("buggy_weak_tests")
    report = _pipeline(root, verifier_for(root), InlineWorker(Reviewer("age == 18"))).repair()
    assert "age == 18" not in report.fixes[0].new_text
