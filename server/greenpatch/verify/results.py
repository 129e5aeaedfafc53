"""Turn the plugin's JSON-lines report into TestResults, with traceback paths mapped back into the workspace."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from greenpatch.verify.causes import environment_cause
from greenpatch.verify.types import Frame, TestResult

_RANK = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}


def read_records(path: Path) -> list[dict[str, object]]:
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        pass
    return records


def map_frames(raw: object, src: Path) -> list[Frame]:
    """Frames inside the sandbox, as workspace-relative paths; frames in the interpreter/site-packages dropped."""
    frames = []
    base = os.path.realpath(src)
    for item in raw if isinstance(raw, list) else []:
        try:
            filename, line, function = str(item[0]), int(item[1]), str(item[2])
        except (IndexError, TypeError, ValueError):
            continue
        real = os.path.realpath(filename if os.path.isabs(filename) else os.path.join(base, filename))
        if real.startswith(base + os.sep):
            frames.append(Frame(Path(real).relative_to(base).as_posix(), line, function))
    return frames


_ERROR_LINE = re.compile(r"^E   ((?:Syntax|Indentation|Tab)Error): (.*)$")
_FILE_LINE = re.compile(r'^E\s+File "(.+)", line (\d+)')


def _syntax_error(message: str) -> str | None:
    """A collection error caused by a module that does not parse, as `file:line: SyntaxError: ...` and the code
    line: pytest's own text starts inside its importer ("_pytest/python.py:528: in importtestmodule")."""
    lines = message.splitlines()
    for end in range(len(lines) - 1, -1, -1):
        error = _ERROR_LINE.match(lines[end])
        if error:
            break
    else:
        return None
    for start in range(end - 1, -1, -1):
        where = _FILE_LINE.match(lines[start])
        if where:
            code = [line[4:] for line in lines[start + 1:end]]
            return "\n".join([f"{where[1]}:{where[2]}: {error[1]}: {error[2]}", *code])
    return None


def read_compared(raw: object) -> tuple[str, str, str] | None:
    if isinstance(raw, (list, tuple)) and len(raw) == 3:
        return (str(raw[0]), str(raw[1]), str(raw[2]))
    return None


def build_results(
    records: list[dict[str, object]], src: Path, killed: str, names: frozenset[str] | None = None,
    killed_outcome: str = "error",
) -> tuple[list[TestResult], bool]:
    """Per-test results in run order, and whether pytest started at all. A test that began but never ended (the
    run was killed while it ran) is a `killed_outcome` carrying `killed` as its message. With the workspace's
    module `names` (causes.workspace_names), failures the environment caused get cause "environment"."""
    results: dict[str, TestResult] = {}
    phases: dict[str, str] = {}  # node id -> pytest phase of the failure reported
    begun: list[str] = []
    started = False
    base = str(src)
    for record in records:
        event = record.get("event")
        if event == "start":
            started = True
        elif event == "begin":
            begun.append(str(record.get("nodeid")))
        elif event in ("report", "collect-error"):
            nodeid = str(record.get("nodeid") or "<collection>")
            outcome = str(record.get("outcome", "error")) if event == "report" else "error"
            message = str(record.get("message") or "").replace(base + os.sep, "")
            if event == "collect-error":
                message = _syntax_error(message) or message
            new = TestResult(nodeid, outcome, float(record.get("duration") or 0.0),  # type: ignore[arg-type]
                             message, map_frames(record.get("frames"), src),
                             compared=read_compared(record.get("compared")))
            when = str(record.get("when") or "call") if event == "report" else "collect"
            old = results.get(nodeid)
            if old is None:
                results[nodeid] = new
                phases[nodeid] = when
            else:
                old.duration += new.duration
                if _RANK.get(new.outcome, 3) > _RANK.get(old.outcome, 3):
                    old.outcome, old.message, old.frames = new.outcome, new.message, new.frames
                    old.compared = new.compared
                    phases[nodeid] = when
    for nodeid in begun:
        if nodeid not in results:
            results[nodeid] = TestResult(nodeid, killed_outcome, 0.0,
                                         killed or "the test process ended during this test")
    if names is not None:
        for nodeid, result in results.items():
            if result.outcome in ("failed", "error") and nodeid in phases:
                result.cause = environment_cause(result.message, phases[nodeid], result.frames, names)
    return list(results.values()), started


def ended(records: list[dict[str, object]]) -> set[str]:
    """Node ids whose test ran to its end (setup, call and teardown) in this attempt."""
    return {str(r.get("nodeid")) for r in records if r.get("event") == "done"}


def begun(records: list[dict[str, object]]) -> list[str]:
    return [str(r.get("nodeid")) for r in records if r.get("event") == "begin"]


def collected(records: list[dict[str, object]]) -> list[str] | None:
    """The node ids pytest chose to run in this attempt, in order (None: collection never finished)."""
    for record in records:
        nodeids = record.get("nodeids")
        if record.get("event") == "collected" and isinstance(nodeids, list):
            return [str(n) for n in nodeids]
    return None


_DUMP_FRAME = re.compile(r'^\s+File "(.*)", line (\d+) in (\S+)')


def hang_frames(dump: str, nodeid: str, src: Path) -> list[Frame]:
    """Where a test stood when it was killed past its limit, from faulthandler's last dump of every thread (the
    plugin writes one just before the kill): the thread running the test function, innermost frame last."""
    last = dump.rpartition("Timeout (")[2]
    if not last:
        return []
    name = nodeid.rpartition("::")[2].partition("[")[0]
    threads: list[list[list[object]]] = []
    for line in last.splitlines():
        if "thread 0x" in line.lower():
            threads.append([])
        elif threads and (match := _DUMP_FRAME.match(line)) and not match.group(1).startswith("<"):
            threads[-1].append([match.group(1), int(match.group(2)), match.group(3)])
    for stack in threads:
        if any(frame[2] == name for frame in stack):
            return map_frames(stack[::-1], src)  # faulthandler lists the most recent call first
    return []
