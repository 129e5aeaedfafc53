"""`greenpatch bench real` end to end on a tiny local project (no PyPI): one slip, the mutation generator only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.slow
def test_bench_real_injects_a_slip_that_fails_a_test_and_reports_the_repair_run(tmp_path: Path) -> None:
    report = tmp_path / "bench-real.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "server"),
                                                      os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", "greenpatch", "bench", "real", "--projects", str(DATA / "verify_clean"),
         "--bugs", "1", "--model", "none", "--timeout", "60", "--seed", "5", "--cache", str(tmp_path / "cache"),
         "-o", str(report)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(report.read_text())
    summary = data["summary"]
    assert summary["projects"] == 1 and summary["bugs"] == 1
    assert summary["setup_failures"] == 0, data["projects"][0]["setup_failures"]
    assert summary["crashes"] == 0 and summary["lost_reports"] == 0
    project = data["projects"][0]
    assert project["tests"] > 0 and project["preexisting_failures"] == []
    assert project["first_result_seconds"] > 0 and project["baseline_seconds"] > 0
    slip = project["slips"][0]
    assert slip["slip"]["path"].startswith("calc/") and slip["slip"]["old"] != slip["slip"]["new"]
    assert slip["outcome"] in {"fixed", "wrong fix", "no fix", "timed out"}, slip
    assert slip["fixed"] == (slip["outcome"] == "fixed")
    assert "verify_clean" in done.stderr and "fixed" in done.stderr, "the per-project table is printed"
    assert not (DATA / "verify_clean" / ".greenpatch").exists(), "the local project is copied, never written"
