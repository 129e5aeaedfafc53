"""`greenpatch bench repair`: fix rate and precision of the repair pipeline on HumanEvalFix (Python).

Each task becomes a small project: `solution.py` = prompt + buggy solution, and `tests/test_examples.py` built from
the task's `example_test` (the only tests the tool sees). A shown fix counts as right when the task's full `test`
passes on it (run in a subprocess with a timeout). Reports fix rate (right fixes / tasks), precision (right / shown),
time per task (p50/p95), candidates and rounds, and which generator found each fix. `--model none` measures the
model-free mutation generator alone.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from greenpatch.bench.stats import describe
from greenpatch.config import Settings
from greenpatch.errors import UsageError

JUDGE_TIMEOUT = 20.0


def example_tests(example_test: str, entry_point: str) -> str | None:
    """The task's example asserts as a pytest file (the top-level `check(...)` call becomes a test)."""
    try:
        tree = ast.parse(example_test)
    except SyntaxError:
        return None
    kept = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call))]
    if not any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in kept):
        return None
    body = ast.unparse(ast.Module(body=kept, type_ignores=[]))
    return f"from solution import *\nfrom solution import {entry_point}\n\n\n{body}\n\n\ndef test_examples():\n    check({entry_point})\n"


def judge(solution: str, test: str, entry_point: str, python: str = sys.executable) -> bool:
    """Whether the full hidden test passes on `solution` (run in a throwaway folder, with a timeout)."""
    with tempfile.TemporaryDirectory(prefix="gp-judge-") as tmp:
        script = Path(tmp) / "judge.py"
        script.write_text(f"{solution}\n\n{test}\n\ncheck({entry_point})\n", encoding="utf-8")
        try:
            done = subprocess.run([python, str(script)], cwd=tmp, capture_output=True, timeout=JUDGE_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def load_tasks(path: Path, count: int, offset: int = 0) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UsageError(f"{path}: no such dataset", "give --dataset ../shared/eval/humanevalfix-python.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    usable = [r for r in rows if r.get("example_test", "").strip()][max(0, offset):]
    return usable[:count] if count > 0 else usable


def run(args: argparse.Namespace) -> dict[str, Any]:
    from greenpatch.repair.command import _engine_worker
    from greenpatch.repair.pipeline import RepairPipeline
    from greenpatch.verify import Verifier

    settings = Settings()
    settings.verify.test_timeout = 30.0
    tasks = load_tasks(Path(args.dataset), args.tasks, args.offset)
    model = args.model or "default"
    engine, why = _engine_worker(model, settings)
    if why:
        print(f"greenpatch: {why}", file=sys.stderr)
    if engine is not None:
        engine.warm_up().result()
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="gp-bench-repair-"))
    try:
        for number, task in enumerate(tasks, 1):
            rows.append(_one(task, work / f"task{number}", settings, engine, model, Verifier, RepairPipeline))
            row = rows[-1]
            print(f"[{number}/{len(tasks)}] {task['task_id']}: {row['outcome']} "
                  f"({row['generator'] or '-'}, {row['seconds']:.1f}s, {row['candidates']} candidates)",
                  file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if engine is not None:
            engine.close()
    return {"summary": _summary(rows, model), "tasks": rows}


def _one(task: dict[str, Any], root: Path, settings: Settings, engine: Any, model: str, verifier_cls: Any,
         pipeline_cls: Any) -> dict[str, Any]:
    entry = task["entry_point"]
    row: dict[str, Any] = {"task_id": task["task_id"], "bug_type": task.get("bug_type", ""), "outcome": "",
                           "generator": "", "seconds": 0.0, "candidates": 0, "rounds": 0, "note": "", "shown": False,
                           "right": False}
    tests = example_tests(task["example_test"], entry)
    if tests is None:
        row["outcome"] = "skipped"
        return row
    (root / "tests").mkdir(parents=True)
    buggy = task["prompt"] + task["buggy_solution"]
    (root / "solution.py").write_text(buggy, encoding="utf-8")
    (root / "tests" / "test_examples.py").write_text(tests, encoding="utf-8")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n')
    verifier = verifier_cls(root, timeout=settings.verify.test_timeout, parallel=settings.verify.parallel,
                            state_dir=root.parent / f"{root.name}-state")
    started = time.monotonic()
    try:
        report = pipeline_cls(root, verifier, engine, settings.repair, model_name=model).repair()
    finally:
        verifier.close()
    row["seconds"] = round(time.monotonic() - started, 2)
    row["candidates"], row["rounds"] = report.candidates_tried, report.rounds
    if report.error:
        row["outcome"] = "error"
        row["note"] = report.error.splitlines()[0][:200]
        return row
    if not report.failures:
        row["outcome"] = "examples pass"  # the visible tests do not show the bug: nothing to repair
        return row
    fixes = [f for f in report.fixes if f.verified]
    if not fixes:
        row["outcome"] = "no fix"
        return row
    best = fixes[0]
    row["shown"] = True
    row["generator"] = best.generator
    row["note"] = best.note
    row["right"] = judge(best.new_text, task["test"], entry)
    row["outcome"] = "fixed" if row["right"] else "wrong fix"
    row["diff"] = best.diff
    row["score"] = best.score
    # the runners-up too: which alternatives the ranking passed over, and whether they were right
    row["alternatives"] = [{"generator": f.generator, "score": f.score, "right": judge(f.new_text, task["test"], entry),
                            "diff": f.diff} for f in fixes[1:]]
    return row


def _summary(rows: list[dict[str, Any]], model: str) -> dict[str, Any]:
    shown = [r for r in rows if r["shown"]]
    right = [r for r in shown if r["right"]]
    ran = [r for r in rows if r["outcome"] != "skipped"]
    noted_wrong = sum(1 for r in shown if not r["right"] and r["note"])
    return {
        "model": model,
        "tasks": len(ran),
        "fixed": len(right),
        "fix_rate": round(len(right) / len(ran), 3) if ran else 0.0,
        "shown": len(shown),
        "precision": round(len(right) / len(shown), 3) if shown else None,
        "wrong_fixes_with_a_note": noted_wrong,
        "seconds_per_task": describe([r["seconds"] for r in ran], digits=2),
        "candidates_per_task": describe([float(r["candidates"]) for r in ran], digits=1),
        "rounds_per_task": describe([float(r["rounds"]) for r in ran], digits=1),
        "fixes_by_generator": dict(Counter(r["generator"] for r in right)),
        "wrong_by_generator": dict(Counter(r["generator"] for r in shown if not r["right"])),
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
    }
