"""What a failure tells and where it points, read from real pytest runs of a multi-module package through
greenpatch's plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from greenpatch.repair.failure import FailureFacts, callees, describe, reached
from greenpatch.repair.localize import SourceMap, Suspect, localize
from greenpatch.verify.results import build_results, read_records
from greenpatch.verify.types import TestResult as Result
from greenpatch.verify.verifier import PLUGIN_DIR
from greenpatch.workspace.index import WorkspaceIndex
from venvs import Unavailable, ensure_venv
from verify_helpers import copy_workspace


def run_pytest(root: Path, python: str = sys.executable) -> dict[str, Result]:
    """The package's tests run by real pytest with greenpatch's plugin, read back as the verifier reads them."""
    out = root / "results.jsonl"
    env = {**os.environ, "GREENPATCH_RESULTS": str(out), "PYTHONPATH": str(PLUGIN_DIR),
           "PYTHONDONTWRITEBYTECODE": "1"}
    out.unlink(missing_ok=True)
    subprocess.run([python, "-m", "pytest", "-p", "greenpatch_pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:randomly"], cwd=root, env=env, capture_output=True, timeout=120, check=False)
    results, started = build_results(read_records(out), root, "")
    assert started
    return {r.nodeid: r for r in results}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workspace("failure_package", tmp_path_factory.mktemp("failure"))


@pytest.fixture(scope="module")
def results(package: Path) -> dict[str, Result]:
    return run_pytest(package)


@pytest.fixture(scope="module")
def index(package: Path) -> WorkspaceIndex:
    index = WorkspaceIndex(package)
    index.scan()
    return index


def facts(package: Path, results: dict[str, Result], index: WorkspaceIndex | None, name: str) -> FailureFacts:
    nodeid = f"tests/test_cart.py::{name}"
    return describe(results[nodeid], (package / "tests/test_cart.py").read_text(), index, package)


def test_a_traceback_through_several_modules_gives_the_package_frames_innermost_last(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    told = facts(package, results, index, "test_total_adds_the_region_rate")
    assert told.error == "KeyError"
    assert [(f.path, f.function) for f in told.frames] == [("shop/cart.py", "total"),
                                                            ("shop/pricing/rates.py", "rate_for")]
    assert told.test_frame is not None and told.test_frame.line == 10
    assert not told.assertion_only
    assert told.actual is None and told.expected is None


def test_the_plugin_reports_no_frames_of_pytest_or_the_interpreter(results: dict[str, Result]) -> None:
    # only the workspace's frames: a deep traceback inside pytest must not push the package's out of the bound
    for result in results.values():
        assert all(not f.path.startswith(("..", "/")) for f in result.frames)
    assert len(results["tests/test_cart.py::test_total_adds_the_region_rate"].frames) == 3


def test_a_failed_comparison_gives_actual_and_expected_as_python_literals(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    told = facts(package, results, index, "test_label_keeps_dashes_inside")
    assert told.error == "AssertionError" and told.assertion_only
    assert (told.op, told.actual, told.expected) == ("==", "'Earl-Grey'", "'Earl Grey'")
    assert "actual: 'Earl-Grey'" in told.summary() and "expected: 'Earl Grey'" in told.summary()


def test_the_literal_side_is_expected_even_when_written_first(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    told = facts(package, results, index, "test_label_is_never_empty")
    assert (told.actual, told.expected) == ("'Mint'", "'mint'")


def test_strings_pytest_shortens_in_its_message_come_whole_from_the_plugin(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    result = results["tests/test_cart.py::TestLong::test_label_of_a_long_name"]
    assert "..." in result.message.splitlines()[0]
    told = describe(result, (package / "tests/test_cart.py").read_text(), index, package)
    assert told.actual == repr("Rooibos " * 12) and told.expected == repr("Rooibos " * 11 + "Rooibo")
    assert told.test_source.startswith("def test_label_of_a_long_name(self):")


def test_without_the_plugins_comparison_the_message_is_parsed(package: Path, index: WorkspaceIndex) -> None:
    # pytest 8+ writes a rewritten assert's message without the exception's name; `where` says what was computed
    message = "assert 4 == 3\n +  where 3 = <function f at 0x7f>(2)\n +    where <function f at 0x7f> = core.f"
    told = describe(Result("tests/test_x.py::test_f", "failed", message=message), "", index, package)
    assert (told.error, told.op, told.actual, told.expected) == ("AssertionError", "==", "3", "4")
    assert told.where[0] == ("3", "<function f at 0x7f>(2)")
    split = describe(Result("t.py::t", "failed", message="AssertionError: assert 'a == b' == 'c'"), "")
    assert (split.actual, split.expected) == ("'a == b'", "'c'")
    diff = ("AssertionError: assert 'hello world ... hello world ' == 'hello world ... hello_world '\n"
            "  - hello world hello world hello_world \n  ?     ^\n  + hello world hello world hello world \n")
    whole = describe(Result("t.py::t", "failed", message=diff), "")
    assert (whole.actual, whole.expected) == (repr("hello world hello world hello world "),
                                              repr("hello world hello world hello_world "))


def test_the_tests_calls_are_resolved_into_the_package_through_its_imports(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    told = facts(package, results, index, "test_receipt_labels_every_item")  # a passing test reads the same way
    calls = [(c.text, c.path, c.function) for c in told.calls]
    # `Cart(...)` is the class's __init__ (re-exported by the package's __init__); `cart.add` a method by name
    assert calls[:3] == [("Cart", "shop/cart.py", "Cart.__init__"), ("cart.add", "shop/cart.py", "Cart.add"),
                         ("cart.receipt", "shop/cart.py", "Cart.receipt")]
    direct = facts(package, results, index, "test_label_keeps_dashes_inside")
    assert [(c.text, c.path, c.function, c.first) for c in direct.calls] == [("label", "shop/text.py", "label", 1)]


def test_what_the_called_functions_call_is_found_through_relative_imports(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    told = facts(package, results, index, "test_total_adds_the_region_rate")
    deeper = callees(told.calls, lambda rel: (package / rel).read_text(), index, package)
    assert ("shop/pricing/rates.py", "rate_for") in {(c.path, c.function) for c in deeper}
    label = facts(package, results, index, "test_label_keeps_dashes_inside")
    assert [(c.path, c.function) for c in callees(label.calls, lambda rel: (package / rel).read_text(), index,
                                                  package)] == [("shop/text.py", "_clean")]


def test_without_an_index_or_test_source_nothing_is_guessed(results: dict[str, Result]) -> None:
    told = describe(results["tests/test_cart.py::test_label_keeps_dashes_inside"], "", None)
    assert told.calls == [] and told.test_source == ""
    assert (told.actual, told.expected) == ("'Earl-Grey'", "'Earl Grey'")


@pytest.mark.slow
def test_the_oldest_python_and_pytest_report_the_same_frames_and_comparison(
    package: Path, results: dict[str, Result], tmp_path: Path,
) -> None:
    try:
        python = ensure_venv("3.8", ["pytest==7.0.1"])
    except Unavailable as exc:
        pytest.skip(str(exc))
    old = run_pytest(copy_workspace("failure_package", tmp_path), str(python))
    for nodeid, result in results.items():
        assert (old[nodeid].outcome, old[nodeid].frames, old[nodeid].compared) == (
            result.outcome, result.frames, result.compared), nodeid


# --- where it points: localization with the traceback and the test's calls -------------------------------------


def suspects(package: Path, results: dict[str, Result], index: WorkspaceIndex, name: str,
             coverage: dict[str, dict[str, set[int]]] | None = None, passing: tuple[str, ...] = ()) -> list[Suspect]:
    result = results[f"tests/test_cart.py::{name}"]
    told = describe(result, (package / "tests/test_cart.py").read_text(), index, package)
    calls = reached(told, lambda rel: (package / rel).read_text(), index, package)
    files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))
    return localize([result], list(passing), coverage or {}, lambda rel: SourceMap((package / rel).read_text()),
                    None, files, lambda rel: (package / rel).read_text(), reached={result.nodeid: calls})


def test_an_assertion_only_failure_without_coverage_points_at_what_the_test_calls_and_they_call(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    found = suspects(package, results, index, "test_label_keeps_dashes_inside")
    assert [(s.path, s.function.name, s.line) for s in found[:2]] == [("shop/text.py", "label", 2),
                                                                      ("shop/text.py", "_clean", 6)]
    assert found[0].reasons == ["called by the test"] and found[1].reasons == ["called by what the test calls"]
    # then, weaker, the functions the test file names (Cart.total, ...): reached through a helper of the test's
    assert found[2:] and all(s.reasons == ["in a function the test names"] for s in found[2:])
    assert max(s.score for s in found[2:]) < found[1].score


def test_a_traceback_through_modules_ranks_the_deepest_frame_first_then_the_callers(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    found = suspects(package, results, index, "test_total_adds_the_region_rate")
    assert [(s.path, s.line) for s in found[:2]] == [("shop/pricing/rates.py", 5), ("shop/cart.py", 15)]
    assert "in the traceback" in found[0].reasons and "called by what the test calls" in found[0].reasons


def test_with_coverage_the_tests_call_breaks_the_tie_among_lines_no_passing_test_runs(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    # the failing test also ran a cart through a fixture: every line it ran scores the same by spectrum alone
    nodeid = "tests/test_cart.py::test_label_keeps_dashes_inside"
    coverage = {nodeid: {"shop/cart.py": {7, 8, 11}, "shop/text.py": {2, 6}},
                "tests/test_cart.py::test_receipt_labels_every_item": {"shop/cart.py": {7, 8, 11, 18}}}
    found = suspects(package, results, index, "test_label_keeps_dashes_inside", coverage,
                     passing=("tests/test_cart.py::test_receipt_labels_every_item",))
    assert [(s.path, s.line) for s in found[:2]] == [("shop/text.py", 2), ("shop/text.py", 6)]
    assert {s.path for s in found[2:]} == {"shop/cart.py"}


def test_with_coverage_a_called_functions_lines_the_test_never_ran_are_no_suspects(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    nodeid = "tests/test_cart.py::test_total_adds_the_region_rate"
    receipt = "tests/test_cart.py::test_receipt_labels_every_item"
    coverage = {nodeid: {"shop/cart.py": {7, 8, 11, 14, 15}, "shop/pricing/rates.py": {5, 9}},
                receipt: {"shop/cart.py": {7, 8, 11, 18}, "shop/text.py": {2, 6}}}
    found = suspects(package, results, index, "test_total_adds_the_region_rate", coverage, passing=(receipt,))
    assert not any(s.path == "shop/cart.py" and s.function.name == "Cart.receipt" for s in found)
    # the slip is in `normal`, which the traceback never shows: the spectrum still has it among the first four
    assert ("shop/pricing/rates.py", 9) in {(s.path, s.line) for s in found[:4]}


def test_unittest_assert_equal_messages_give_actual_and_expected_unless_cut_short(
    package: Path, results: dict[str, Result], index: WorkspaceIndex,
) -> None:
    text = (package / "tests/test_units.py").read_text()
    dashes = describe(results["tests/test_units.py::LabelTests::test_dashes"], text, index, package)
    assert (dashes.op, dashes.actual, dashes.expected) == ("==", "'Earl-Grey'", "'Earl Grey'")
    assert [c.function for c in dashes.calls] == ["label"]
    first = describe(results["tests/test_units.py::LabelTests::test_expected_first"], text, index, package)
    assert (first.actual, first.expected) == ("'Earl-Grey'", "'Earl Grey'")
    cut = describe(results["tests/test_units.py::LabelTests::test_long_tuples"], text, index, package)
    assert "chars]" in cut.message and (cut.actual, cut.expected) == (None, None)
