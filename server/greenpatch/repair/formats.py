"""Repair results as text for CI systems: SARIF 2.1.0 for code-scanning tabs, GitHub workflow commands for inline
annotations, and the JSON the other two are built from.

Pure functions of the repair report as `--json` prints it (`RepairReport.to_dict()` plus "applied"/"exit_code"),
so that every format says the same thing and a test can feed them a report without running a repair."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from greenpatch import __version__

FORMATS = ("diff", "json", "sarif", "github")
RULE_ID = "greenpatch/failing-test"
INFORMATION_URI = "https://github.com/greenpatch/greenpatch"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

Report = Mapping[str, Any]


@dataclass(frozen=True)
class Replacement:
    """One run of changed lines from a unified diff: old lines [start, start + len(deleted)) become `inserted`."""

    start: int  # 1-based line of the original text
    deleted: tuple[str, ...]
    inserted: tuple[str, ...]
    deleted_ends_file_without_newline: bool = False
    inserted_ends_file_without_newline: bool = False


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def replacements(diff: str) -> list[Replacement]:
    """The changed runs of a unified diff, in order; context lines separate runs."""
    out: list[Replacement] = []
    old_line = run_start = 0
    old_left = new_left = 0  # lines the current hunk still holds; outside a hunk both are 0
    deleted: list[str] = []
    inserted: list[str] = []
    last_kind = ""
    no_newline = {"-": False, "+": False}

    def flush() -> None:
        if deleted or inserted:
            out.append(Replacement(run_start, tuple(deleted), tuple(inserted), no_newline["-"], no_newline["+"]))
        deleted.clear()
        inserted.clear()
        no_newline["-"] = no_newline["+"] = False

    # split on "\n" only: a line of the file may hold "\r", "\x0c" or "\u2028", which splitlines() would cut
    for line in diff.split("\n")[:-1] if diff.endswith("\n") else diff.split("\n"):
        if line.startswith("\\"):  # "\ No newline at end of file" qualifies the line before it
            if last_kind in no_newline:
                no_newline[last_kind] = True
            elif last_kind == " ":
                no_newline["-"] = no_newline["+"] = True
            continue
        if old_left == 0 and new_left == 0:
            flush()
            hunk = _HUNK.match(line)
            if hunk:  # anything else outside a hunk is a file header
                old_line = int(hunk.group(1))
                old_left = int(hunk.group(2) or 1)
                new_left = int(hunk.group(4) or 1)
                if old_left == 0:
                    old_line += 1  # "-N,0" inserts after line N
                last_kind = ""
            continue
        kind, text = line[:1] or " ", line[1:]
        if kind in "-+" and not (deleted or inserted):
            run_start = old_line
        if kind == "-":
            deleted.append(text)
            old_line += 1
            old_left -= 1
        elif kind == "+":
            inserted.append(text)
            new_left -= 1
        else:
            flush()
            old_line += 1
            old_left -= 1
            new_left -= 1
        last_kind = kind
    flush()
    return out


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # SARIF's default columnKind counts UTF-16 code units


def _sarif_replacement(rep: Replacement) -> dict[str, Any]:
    if rep.deleted_ends_file_without_newline:
        # the last line has no newline to end the region at, so end it after that line's last character
        end_line, end_column = rep.start + len(rep.deleted) - 1, _utf16_len(rep.deleted[-1]) + 1
        inserted = "\n".join(rep.inserted)
        if rep.inserted and not rep.inserted_ends_file_without_newline:
            inserted += "\n"
    else:
        end_line, end_column = rep.start + len(rep.deleted), 1
        inserted = "".join(line + "\n" for line in rep.inserted)
        if rep.inserted and rep.inserted_ends_file_without_newline:
            inserted = inserted[:-1]
    return {
        "deletedRegion": {"startLine": rep.start, "startColumn": 1, "endLine": end_line, "endColumn": end_column},
        "insertedContent": {"text": inserted},
    }


def _verified_fixes(report: Report) -> list[Mapping[str, Any]]:
    return [fix for fix in report.get("fixes", []) if fix.get("verified")]


def fix_for(report: Report, nodeid: str) -> Mapping[str, Any] | None:
    """The best verified fix that makes `nodeid` pass (fixes are listed best first)."""
    return next((fix for fix in _verified_fixes(report) if nodeid in fix.get("fixes", [])), None)


def fix_line(fix: Mapping[str, Any]) -> int:
    """The 1-based first line the fix changes."""
    reps = replacements(fix.get("diff", ""))
    if reps:
        return reps[0].start
    return int(fix.get("changed_range", (0, 0))[0]) + 1


def fix_summary(fix: Mapping[str, Any]) -> str:
    """One line a reviewer can act on: the exact change for a one-line fix, else the fix's title."""
    reps = replacements(fix.get("diff", ""))
    if len(reps) == 1 and len(reps[0].deleted) == 1 and len(reps[0].inserted) == 1:
        old, new = reps[0].deleted[0].strip(), reps[0].inserted[0].strip()
        return f"replace `{old}` with `{new}` in {fix['path']}:{reps[0].start}"
    return f"{fix.get('title', 'fix')} in {fix['path']}:{fix_line(fix)}"


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "failed"


def _location(uri: str, line: int | None = None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "SRCROOT"}}
    if line:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def to_sarif(report: Report, *, root_uri: str | None = None) -> str:
    """SARIF 2.1.0: one result per failing test, each verified fix that makes it pass as a SARIF fix.

    `root_uri` (a file:// URI ending in "/") anchors the workspace-relative paths, as SARIF's originalUriBaseIds."""
    results: list[dict[str, Any]] = []
    for failure in report.get("failures", []):
        nodeid = failure["nodeid"]
        fixes = [fix for fix in _verified_fixes(report) if nodeid in fix.get("fixes", [])]
        message = f"{nodeid} fails: {failure.get('message') or 'failed'}"
        if fixes:
            best = fixes[0]
            location = _location(best["path"], fix_line(best))
            message += f"\n\ngreenpatch verified fix: {fix_summary(best)}"
        elif failure.get("path") and failure.get("line"):
            location = _location(failure["path"], failure["line"])
            message += "\n\ngreenpatch found no verified fix for this failure."
        else:
            location = _location(_test_file(nodeid))
            message += "\n\ngreenpatch found no verified fix for this failure."
        result: dict[str, Any] = {
            "ruleId": RULE_ID,
            "ruleIndex": 0,
            "level": "error",
            "message": {"text": message},
            "locations": [location],
            "relatedLocations": [{"id": 0, **_location(_test_file(nodeid)), "message": {"text": "the failing test"}}],
            "partialFingerprints": {"greenpatch/nodeid": nodeid},
            "properties": {"nodeid": nodeid, "verifiedFix": bool(fixes)},
        }
        if fixes:
            result["fixes"] = [
                {
                    "description": {"text": f"{fix.get('title', 'fix')} [{fix.get('generator', '')}]: "
                                            f"{fix.get('tests_passed', 0)}/{fix.get('tests_run', 0)} tests pass"},
                    "artifactChanges": [{
                        "artifactLocation": {"uri": fix["path"], "uriBaseId": "SRCROOT"},
                        "replacements": [_sarif_replacement(r) for r in replacements(fix.get("diff", ""))],
                    }],
                }
                for fix in fixes
            ]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "greenpatch",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [{
                "id": RULE_ID,
                "name": "FailingTest",
                "shortDescription": {"text": "A test fails"},
                "fullDescription": {"text": "A test of the project fails; greenpatch attaches each fix that it "
                                            "verified by running the project's tests in a sandbox."},
                "defaultConfiguration": {"level": "error"},
            }],
        }},
        "results": results,
        "invocations": [{
            "executionSuccessful": not report.get("error") or bool(report.get("failures")),
            "exitCode": report.get("exit_code", 0),
            "toolExecutionNotifications": [{"level": "note", "message": {"text": note}}
                                           for note in report.get("notes", [])]
            + ([{"level": "error", "message": {"text": report["error"]}}] if report.get("error") else []),
        }],
        "columnKind": "utf16CodeUnits",
    }
    if root_uri:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root_uri}}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **properties: object) -> str:
    props = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items() if value)
    return f"::{kind} {props}::{_escape_data(message)}" if props else f"::{kind}::{_escape_data(message)}"


def to_github(report: Report, *, base: str = "") -> str:
    """GitHub Actions workflow commands: an ::error per failing test (with its verified fix, if any) and a ::notice
    per verified fix. `base` is the project folder relative to the workflow's working directory."""

    def path(rel: str) -> str:
        return f"{base.rstrip('/')}/{rel}" if base and base != "." else rel

    lines: list[str] = []
    if report.get("error") and not report.get("failures"):
        lines.append(_command("error", f"greenpatch: the tests could not run: {_first_line(report['error'])}",
                              title="greenpatch"))
    for failure in report.get("failures", []):
        nodeid = failure["nodeid"]
        fix = fix_for(report, nodeid)
        message = f"{nodeid} fails: {failure.get('message') or 'failed'}"
        if fix:
            where = {"file": path(fix["path"]), "line": fix_line(fix)}
            message += f"\nverified fix: {fix_summary(fix)}"
        elif failure.get("path") and failure.get("line"):
            where = {"file": path(failure["path"]), "line": failure["line"]}
            message += "\nno verified fix"
        else:
            where = {"file": path(_test_file(nodeid)), "line": None}
            message += "\nno verified fix"
        lines.append(_command("error", message, **where, title=f"failing test {nodeid}"))
    shown: set[str] = set()
    for fix in _verified_fixes(report):
        if fix["path"] in shown:
            continue  # the best fix per file, as the diff output shows
        shown.add(fix["path"])
        lines.append(_command(
            "notice", f"verified fix: {fix_summary(fix)} ({fix.get('tests_passed', 0)}/{fix.get('tests_run', 0)} "
                      f"tests pass)\n{fix.get('diff', '')}",
            file=path(fix["path"]), line=fix_line(fix), title=f"greenpatch: {fix.get('title', 'verified fix')}",
        ))
    return "".join(line + "\n" for line in lines)


def to_json(report: Report) -> str:
    return json.dumps(report, indent=2) + "\n"


def render(fmt: str, report: Report, *, root: PurePath, cwd: PurePath) -> str:
    """The report in `fmt` (not "diff", which the command prints itself) for the project at `root`."""
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report, root_uri=Path(root).as_uri().rstrip("/") + "/")
    if fmt == "github":
        # annotations name files relative to the workflow's working directory
        base = os.path.relpath(root, cwd) if Path(root).is_relative_to(cwd) else str(root)
        return to_github(report, base=PurePath(base).as_posix())
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "Replacement", "fix_for", "fix_summary", "render", "replacements", "to_github", "to_json",
           "to_sarif"]
