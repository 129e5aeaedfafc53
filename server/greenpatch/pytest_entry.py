"""`pytest --greenpatch`: after a run with failures, print the fixes greenpatch verified for them in pytest's summary.

Registered as a pytest11 entry point, so pytest loads it in every run where greenpatch is installed: at import it
needs only the standard library, and until --greenpatch is given it does nothing but add its options. It never
changes the run's outcome or exit status: the repair runs after the tests, in a subprocess (`greenpatch repair
ROOT --format json`), on a sandboxed copy, and only prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest
    from _pytest.terminal import TerminalReporter

# set for the repair's subprocess; with the sandbox's own plugin loaded, a run is greenpatch's and must not repair
NESTED = "GREENPATCH_PYTEST_NESTED"
SANDBOX_PLUGIN = "greenpatch_pytest"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenpatch", "greenpatch: fixes verified by the tests")
    group.addoption("--greenpatch", action="store_true", default=False,
                    help="after failures, print the fixes greenpatch verified for them (the outcome is unchanged)")
    group.addoption("--greenpatch-model", default=None, metavar="MODEL",
                    help="model for the repair (default: greenpatch's repair model; `none`: model-free fixes only)")
    group.addoption("--greenpatch-timeout", type=float, default=None, metavar="SECONDS",
                    help="time limit of the repair (default: repair's own, 300)")


def _enabled(config: pytest.Config) -> bool:
    return (bool(config.getoption("greenpatch", False)) and not os.environ.get(NESTED)
            and not config.pluginmanager.has_plugin(SANDBOX_PLUGIN))


def repair_argv(config: pytest.Config) -> list[str]:
    """The repair of the project pytest ran in, with the interpreter that ran it (it has the project's packages)."""
    argv = [sys.executable, "-m", "greenpatch", "repair", str(config.rootpath), "--format", "json",
            "--python", sys.executable]
    model = config.getoption("greenpatch_model", None)
    if model:
        argv += ["--model", str(model)]
    timeout = config.getoption("greenpatch_timeout", None)
    if timeout:
        argv += ["--timeout", str(timeout)]
    return argv


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if not _enabled(config):
        return
    failed = [report.nodeid for report in terminalreporter.stats.get("failed", []) if report.when == "call"]
    if not failed:
        return
    tr = terminalreporter
    tr.write_sep("=", f"greenpatch: repairing {len(failed)} failing test(s)")
    proc = subprocess.run(repair_argv(config), capture_output=True, text=True, encoding="utf-8",
                          errors="replace", env={**os.environ, NESTED: "1"}, check=False)
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        tr.write_line(f"greenpatch: the repair did not finish: {last[0]}", red=True)
        return
    _write_fixes(tr, report, failed)


def _write_fixes(tr: TerminalReporter, report: dict[str, Any], failed: list[str]) -> None:
    from greenpatch.repair.formats import fix_for, fix_summary

    shown: set[int] = set()
    for nodeid in failed:
        fix = fix_for(report, nodeid)
        if fix is None:
            tr.write_line(f"{nodeid}: no verified fix", yellow=True)
            continue
        tr.write_line(f"{nodeid}: verified fix: {fix_summary(fix)}", green=True)
        if id(fix) not in shown:
            shown.add(id(fix))
            tr.write_line(f"# {fix.get('title', 'fix')} [{fix.get('generator', '')}]")
            tr.write(fix.get("diff", ""))
    for note in report.get("notes", []):
        tr.write_line(f"greenpatch: {note}")
    if report.get("error") and not report.get("failures"):
        tr.write_line(f"greenpatch: the repair's own test run failed: {report['error'].splitlines()[0]}", red=True)
    elif shown:
        tr.write_line("greenpatch: write the fix with `greenpatch repair . --apply`")
