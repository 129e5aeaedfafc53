"""What `greenpatch repair` shows and writes: the verified fixes combined per file, tested together, written
atomically in each file's own form.

The pipeline verifies every fix alone, against the original files. Two fixes that each pass can fail together (or
touch the same lines), so the fixes to write are merged and the affected tests run on the merge; only a combination
that passes is shown and written, and a failure counts as fixed only when that combination makes it pass.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from greenpatch.cancel import CancelToken
from greenpatch.errors import UnreadableFile, WriteError
from greenpatch.repair.candidates import unified_diff
from greenpatch.repair.types import Fix, RepairReport
from greenpatch.verify.types import Changes, TestRun
from greenpatch.workspace.files import BOM, SourceFile, differing_span, read_source, split_lines, write_files


class Runs(Protocol):
    """The part of the Verifier the combination check uses."""

    def run(
        self, changes: Changes | None = None, *, tests: list[str] | None = None,
        stop_at_first_failure: bool = False, cancel: CancelToken | None = None,
    ) -> TestRun: ...


@dataclass
class FileChange:
    path: str  # workspace-relative
    source: SourceFile  # the file as the fixes found it
    text: str  # every chosen fix of this file applied, in the file's own form (line endings; no BOM)
    fixes: list[Fix]

    @property
    def diff(self) -> str:
        return unified_diff(self.path, self.source.text, self.text)

    @property
    def sandbox_text(self) -> str:
        return (BOM if self.source.bom else "") + self.text


@dataclass
class Plan:
    """The fixes that are shown and written, per file, and the failing tests they make pass together."""

    files: dict[str, FileChange] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)  # node ids
    notes: list[str] = field(default_factory=list)
    combined_runs: int = 0  # sandbox runs spent checking combinations

    @property
    def fixes(self) -> list[Fix]:
        return [fix for change in self.files.values() for fix in change.fixes]

    def to_dict(self) -> dict[str, object]:
        return {
            "files": [
                {"path": c.path, "fixes": [f.title for f in c.fixes], "diff": c.diff} for c in self.files.values()
            ],
            "fixed": sorted(self.fixed),
            "combined_runs": self.combined_runs,
        }


def merge(original: str, texts: list[str]) -> str | None:
    """`original` with the change of every text in `texts` (each is `original` with one change), or None when
    two changes touch the same or adjoining lines (no safe order to apply them). Lines keep their own endings."""
    base = split_lines(original)
    hunks = []
    for text in texts:
        new = split_lines(text)
        start, end_old, end_new = differing_span(base, new)
        hunks.append((start, end_old, new[start:end_new]))
    hunks.sort(key=lambda h: (h[0], h[1]))
    for (s1, e1, _), (s2, e2, _) in itertools.pairwise(hunks):
        if e1 > s2 or (e1 == s2 and (s1 == e1 or s2 == e2)):
            return None
    lines: list[tuple[str, str]] = []
    at = 0
    for start, end, new_lines in hunks:
        lines += base[at:start] + new_lines
        at = end
    lines += base[at:]
    return "".join(content + ending for content, ending in lines)


def _passes(run: TestRun, claimed: set[str], failing: set[str]) -> bool:
    """The combination makes every claimed test pass and fails no test that was not failing already."""
    if run.error or run.timed_out:
        return False
    outcomes = {r.nodeid: r.outcome for r in run.results}
    if any(outcomes.get(nodeid) != "passed" for nodeid in claimed):
        return False
    return all(r.nodeid in failing - claimed for r in run.failed)


def plan_fixes(
    root: Path, report: RepairReport, verifier: Runs, *, deadline: float | None = None,
    progress: Callable[[str, int | None], None] | None = None,
) -> Plan:
    """Choose the fixes to show and write: best first, each one kept only when it merges with those already
    chosen and the tests pass on the merge (a fix alone needs no new run: the pipeline verified it)."""
    plan = Plan()
    failing = {f.nodeid for f in report.failures}
    sources: dict[str, SourceFile | None] = {}
    for fix in report.fixes:
        if not fix.verified or set(fix.fixes) <= plan.fixed:
            continue  # unverified, or an alternative to a fix already chosen
        if fix.path not in sources:
            try:
                sources[fix.path] = read_source(root / fix.path)
            except (OSError, UnreadableFile):
                sources[fix.path] = None
        source = sources[fix.path]
        if source is None or source.text != fix.original:
            plan.notes.append(f"{fix.path} changed while greenpatch worked on it: run repair again")
            continue
        current = plan.files.get(fix.path)
        text = merge(source.text, [f.new_text for f in (current.fixes if current else [])] + [fix.new_text])
        if text is None:
            continue  # overlaps a chosen fix: an alternative of another group, or a conflicting edit
        trial = dict(plan.files)
        trial[fix.path] = FileChange(fix.path, source, text, (current.fixes if current else []) + [fix])
        claimed = plan.fixed | set(fix.fixes)
        if plan.files:
            if deadline is not None and time.monotonic() > deadline:
                plan.notes.append(f"not verified together with the other fixes (time limit): {fix.title}")
                continue
            if progress is not None:
                progress("verifying the fixes together", None)
            plan.combined_runs += 1
            run = verifier.run({rel: change.sandbox_text for rel, change in trial.items()})
            if not _passes(run, claimed, failing):
                plan.notes.append(f"left out, as the tests fail with it and the other fixes together: {fix.title}")
                continue
        plan.files, plan.fixed = trial, claimed
    return plan


def write_plan(root: Path, plan: Plan) -> list[str]:
    """Write every file of `plan`, each atomically and in its own encoding and line endings. Raises WriteError
    (and writes nothing) when a file cannot be written or is no longer what the fixes were made for."""
    contents: dict[Path, bytes] = {}
    for rel, change in plan.files.items():
        try:
            current = read_source(root / rel)
        except OSError as exc:
            raise WriteError(f"could not read {rel} again: {exc.strerror or exc}; no file was changed") from None
        except UnreadableFile as exc:
            raise WriteError(f"{exc}; no file was changed") from None
        if current != change.source:
            raise WriteError(f"{rel} changed after greenpatch read it; no file was changed", "run repair again")
        try:
            contents[root / rel] = current.encode(change.text)
        except UnreadableFile as exc:
            raise WriteError(f"{rel}: {exc}; no file was changed") from None
    write_files(contents)
    return list(plan.files)


__all__ = ["FileChange", "Plan", "merge", "plan_fixes", "write_plan"]
