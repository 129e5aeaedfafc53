"""The editor-event replay of `greenpatch bench complete --ahead` with the fake engine."""

from __future__ import annotations

from pathlib import Path

from greenpatch.bench.ahead import KINDS, places, replay
from greenpatch.engine.fake import FakeEngine

SOURCE = "\n".join(
    [f"# header line {i}" for i in range(22)]
    + [f"def function_number_{i}(a, b):\n    return a + b * {i} - len(str(a))" for i in range(30)]
) + "\n"


def test_the_replay_times_each_kind_of_first_request_with_and_without_preparing_ahead(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "mod.py"
    module.parent.mkdir()
    module.write_text(SOURCE)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    report = replay(FakeEngine(), [module], rest_ms=20)
    for variant in ("without", "with"):
        for kind in KINDS:
            assert report[variant][f"{kind.replace(' ', '_')}_n"] == 1, (variant, kind)
    assert report["work_ahead"]["prepared"] >= 2, "the resting cursor and the open file were prepared"
    assert all(e["file"] == "mod.py" for e in report["events"]["with"])


def test_the_places_are_three_lines_of_code_far_apart() -> None:
    rows = SOURCE.split("\n")
    chosen = places(rows)
    assert len(chosen) == 3 and chosen == sorted(chosen) and chosen[2] - chosen[0] > 20
    assert places(rows[:10]) == [], "a short file has no places"
