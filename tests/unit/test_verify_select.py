"""Affected-test selection: the coverage map picks the tests that ran the edited code; stale maps fall back."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenpatch.verify import Verifier
from greenpatch.verify.select import edited_functions, importers, module_name
from verify_helpers import RUN_LIMIT, checksum, copy_workspace

OPS = """\
def add(a, b):
    return a + b


def sub(a, b):
    return a - b
"""


def test_an_edit_inside_a_function_names_that_function_with_its_old_lines() -> None:
    [scope] = edited_functions(OPS, OPS.replace("a - b", "a - b - 0"))  # type: ignore[misc]
    assert (scope.qualname, scope.start, scope.end) == ("sub", 5, 6)


def test_module_level_edits_and_new_functions_are_not_function_edits() -> None:
    assert edited_functions(OPS, "import os\n" + OPS) is None
    assert edited_functions(OPS, OPS + "\n\ndef mul(a, b):\n    return a * b\n") is None
    assert edited_functions(OPS, OPS.replace("return a + b", "return (")) is None  # does not parse


def test_importers_follow_imports_through_other_project_modules() -> None:
    sources = {
        "pkg/__init__.py": "", "pkg/ops.py": "", "pkg/report.py": "from .ops import sub\n",
        "tests/test_report.py": "from pkg.report import balance\n", "tests/test_other.py": "import os\n",
    }
    assert module_name("pkg/ops.py", set(sources)) == "pkg.ops"
    assert importers("pkg/ops.py", sources) == {"pkg/report.py", "tests/test_report.py"}


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory):
    """verify_clean with a coverage map built by one baseline run."""
    tmp = tmp_path_factory.mktemp("select")
    root = copy_workspace("verify_clean", tmp)
    before = checksum(root)
    v = Verifier(root, timeout=RUN_LIMIT, state_dir=tmp / "state")
    baseline = v.baseline()
    assert baseline.passed and len(baseline.results) == 7
    yield root, v, before
    v.close()


def edit(root: Path, rel: str, old: str, new: str) -> dict[str, str]:
    text = (root / rel).read_text()
    assert old in text
    return {rel: text.replace(old, new)}


@pytest.mark.slow
def test_the_baseline_maps_each_test_to_the_lines_it_executed(mapped) -> None:
    root, v, before = mapped
    lines = v.line_coverage()
    assert 7 in lines["tests/test_ops.py::test_add"]["calc/ops.py"]  # body of add()
    assert 11 not in lines["tests/test_ops.py::test_add"]["calc/ops.py"]  # body of sub()
    assert "calc/ops.py" in lines["tests/test_report.py::test_balance"]
    assert checksum(root) == before


@pytest.mark.slow
def test_an_edit_selects_only_the_tests_that_executed_the_edited_function(mapped) -> None:
    root, v, _ = mapped
    assert v.select(edit(root, "calc/ops.py", "a - b", "b - a")).tests == [
        "tests/test_ops.py::test_sub", "tests/test_report.py::test_balance"]
    assert v.select(edit(root, "calc/ops.py", "(a + b) * SCALE", "a + b")).tests == [
        "tests/test_ops.py::test_add", "tests/test_ops.py::test_mul_uses_add"]
    selection = v.select(edit(root, "calc/text.py", 'upper() + "!"', "upper()"))
    assert (selection.level, selection.tests) == ("coverage", ["tests/test_text.py::test_shout"])


@pytest.mark.slow
def test_the_selected_tests_catch_a_regression_and_nothing_else_runs(mapped) -> None:
    root, v, _ = mapped
    run = v.run(edit(root, "calc/ops.py", "a - b", "b - a"))
    assert run.level == "coverage"
    assert sorted(r.nodeid for r in run.failed) == ["tests/test_ops.py::test_sub", "tests/test_report.py::test_balance"]
    assert len(run.results) == 2


@pytest.mark.slow
def test_test_files_module_level_edits_and_other_files_use_broader_levels(mapped) -> None:
    root, v, _ = mapped
    in_test = v.select(edit(root, "tests/test_text.py", "1234.5", "1234.50"))
    assert (in_test.level, in_test.tests) == ("test-file", ["tests/test_text.py"])
    module_level = v.select(edit(root, "calc/ops.py", "SCALE = 1", "SCALE = 2"))
    assert module_level.level == "imports"
    assert module_level.tests == ["tests/test_ops.py", "tests/test_report.py"]
    assert v.select({"pyproject.toml": "[project]\n"}).level == "all"


@pytest.mark.slow
def test_a_stale_map_falls_back_to_importers_until_refreshed(mapped, tmp_path: Path) -> None:
    root, v, _ = mapped
    ops = root / "calc/ops.py"
    original = ops.read_text()
    ops.write_text(original.replace("def sub(a, b):", "def sub(a, b):  # edited on disk"))
    try:
        stale = v.select(edit(root, "calc/ops.py", "a - b", "b - a"))
        assert stale.level == "imports"
        assert stale.tests == ["tests/test_ops.py", "tests/test_report.py"]
        assert "stale" in stale.reasons["calc/ops.py"]
        refreshed = v.refresh()
        assert refreshed.passed and {r.nodeid for r in refreshed.results} >= {"tests/test_ops.py::test_sub"}
        assert "tests/test_text.py::test_shout" not in {r.nodeid for r in refreshed.results}
        fresh = v.select(edit(root, "calc/ops.py", "a - b", "b - a"))
        assert (fresh.level, fresh.tests) == ("coverage", ["tests/test_ops.py::test_sub",
                                                           "tests/test_report.py::test_balance"])
        # the map lives on disk: a new verifier for the same workspace uses it without a baseline
        with Verifier(root, state_dir=v.state_dir) as again:
            assert again.select(edit(root, "calc/text.py", 'upper() + "!"', "upper()")).level == "coverage"
    finally:
        # the map shared by this module's tests now describes the edited file: refreshed for the original again,
        # or a test after this one (pytest-randomly's order, a -k selection) finds it stale
        ops.write_text(original)
        assert v.refresh().passed


def test_an_edit_in_one_of_several_nested_functions_with_the_same_name_maps_to_that_one() -> None:
    source = (
        "def outer(flag):\n"
        "    if flag:\n"
        "        def key(a):\n"
        "            return a[0]\n"
        "    else:\n"
        "        def key(a):\n"
        "            return a\n"
        "    return key\n"
    )
    scopes = edited_functions(source, source.replace("a[0]", "a[1]"))
    assert [(s.qualname, s.start, s.end) for s in scopes or []] == [("outer.key", 3, 4)]
