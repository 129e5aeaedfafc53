"""`greenpatch repair` on the README's example project, with the model-free generator (CI has no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from greenpatch.cli import main

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the verifier's state goes here


def test_repair_prints_a_verified_diff_and_leaves_the_files_alone(example_project: Path, capsys) -> None:
    before = (example_project / "shop" / "pricing.py").read_text()
    code = main(["repair", str(example_project), "--model", "none"])
    out, err = capsys.readouterr()
    assert code == 1  # every failure got a verified fix
    assert "-    if quantity > 10:\n+    if quantity >= 10:\n" in out
    assert "tests pass" in out
    assert "run again with --apply" in err
    assert (example_project / "shop" / "pricing.py").read_text() == before


def test_repair_apply_writes_the_fix_and_then_nothing_fails(example_project: Path, capsys) -> None:
    assert main(["repair", str(example_project), "--model", "none", "--apply"]) == 1
    assert "if quantity >= 10:" in (example_project / "shop" / "pricing.py").read_text()
    capsys.readouterr()
    assert main(["repair", str(example_project), "--model", "none", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["failures"] == [] and data["exit_code"] == 0


def test_repair_json_names_the_fix_its_generator_and_the_tests_it_passed(example_project: Path, capsys) -> None:
    assert main(["repair", str(example_project), "--model", "none", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    best = data["fixes"][0]
    assert best["verified"] and best["generator"] == "mutation" and best["path"] == "shop/pricing.py"
    assert best["tests_passed"] == best["tests_run"] > 0
    assert data["unfixed"] == []


def test_repair_exits_3_when_no_verified_fix_is_found(tmp_path: Path, capsys) -> None:
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(DATA / "buggy_breaks_other", root)
    assert main(["repair", str(root), "--model", "none", "--rounds", "1"]) == 3
    assert "no verified fix" in capsys.readouterr().err


def test_repair_of_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["repair", str(tmp_path / "nope")])
    assert exc.value.code == 2
