"""`greenpatch bench verify PATH [--mutations N]`: affected-test selection vs the full suite on mutations.

For N single-function mutations drawn with a fixed seed (flip a comparison, drop a statement, change a constant)
in the project's non-test modules, run the whole suite and the selected tests on each, both in the sandbox, and
compare wall time (interpreter start included), in-test time (sum of pytest's per-test durations) and the failures
the full suite sees that the selection misses. Also: the one-off cost of the coverage-map run vs a plain full run,
and the time to set up a sandbox as a hardlink farm vs a full copy.

Both runs of a mutation go the server's way: forked from the warm zygote when it is on (`warm` in the report);
`wall_time_ratio` compares those. Each mutation is also run cold (a fresh `python -m pytest`, full suite and
selection, through a second verifier with the zygote off), side by side, for `cold_wall_time_ratio` (both cold, the
figure before the zygote) and `wall_time_ratio_vs_cold_full` (cold full suite vs warm selection).
"""

from __future__ import annotations

import argparse
import ast
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenpatch.bench.stats import describe, machine
from greenpatch.verify import Verifier
from greenpatch.verify.process import isolation
from greenpatch.verify.sandbox import make_sandbox, remove_tree, source_files
from greenpatch.verify.select import is_test_file

SEED = 1234
FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
        ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclass
class Mutation:
    path: str
    function: str
    kind: str
    line: int
    new_text: str


def _segment_replace(text: str, node: ast.expr | ast.stmt, replacement: str) -> str:
    lines = text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.lineno - 1]) + _byte_to_char(lines[node.lineno - 1],
                                                                                   node.col_offset)
    end_line = node.end_lineno or node.lineno
    end = sum(len(line) for line in lines[: end_line - 1]) + _byte_to_char(lines[end_line - 1],
                                                                              node.end_col_offset or 0)
    return text[:start] + replacement + text[end:]


def _byte_to_char(line: str, offset: int) -> int:
    return len(line.encode("utf-8")[:offset].decode("utf-8", "replace"))


def _mutations_in(rel: str, text: str) -> list[tuple[str, str, int, Any]]:
    """(function, kind, line, thunk producing the mutated text) for every possible single mutation."""
    tree = ast.parse(text)
    found: list[tuple[str, str, int, Any]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIP:
                flipped = ast.Compare(node.left, [FLIP[type(node.ops[0])]()], node.comparators)
                found.append((fn.name, "flip-comparison", node.lineno,
                              lambda n=node, r=ast.unparse(flipped): _segment_replace(text, n, f"({r})")))  # noqa: B008 - bound now, per mutation
            elif isinstance(node, ast.Constant) and isinstance(node.value, int) and node.lineno > fn.lineno:
                value = (not node.value) if isinstance(node.value, bool) else node.value + 1
                found.append((fn.name, "change-constant", node.lineno,
                              lambda n=node, v=repr(value): _segment_replace(text, n, v)))  # noqa: B008 - bound now, per mutation
        body = [s for s in ast.walk(fn) if isinstance(s, ast.stmt) and s is not fn
                and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        for stmt in body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # docstring
            found.append((fn.name, "drop-statement", stmt.lineno,
                          lambda s=stmt: _segment_replace(text, s, "pass")))
    return found


def draw_mutations(root: Path, count: int, seed: int = SEED) -> list[Mutation]:
    rng = random.Random(seed)
    files = sorted(rel for rel in source_files(root) if rel.endswith(".py") and not is_test_file(rel)
                   and "/tests/" not in f"/{rel}" and not rel.endswith("conftest.py") and "sandbox" not in rel)
    pool: list[tuple[str, str, str, str, int, Any]] = []
    for rel in files:
        text = (root / rel).read_text(encoding="utf-8")
        try:
            pool.extend((rel, text, *m) for m in _mutations_in(rel, text))
        except SyntaxError:
            continue
    rng.shuffle(pool)
    chosen: list[Mutation] = []
    for rel, text, function, kind, line, make in pool:
        new = make()
        try:
            ast.parse(new)
        except SyntaxError:
            continue
        if new != text:
            chosen.append(Mutation(rel, function, kind, line, new))
        if len(chosen) >= count:
            break
    return chosen


def _sandbox_ms(v: Verifier, rounds: int = 10) -> dict[str, float]:
    pristine = v._prepare()
    base = Path(tempfile.mkdtemp(prefix="greenpatch-bench-"))
    times: dict[str, list[float]] = {"hardlink": [], "copy": []}
    try:
        for _ in range(rounds):
            for kind in ("hardlink", "copy"):
                t0 = time.perf_counter()
                box = make_sandbox(pristine, base, {}, link=kind == "hardlink")
                times[kind].append(time.perf_counter() - t0)
                remove_tree(box.path)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {k: round(statistics.median(t) * 1000, 2) for k, t in times.items()} | {"files": len(pristine.files())}


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.path).resolve()
    state = Path(tempfile.mkdtemp(prefix="greenpatch-bench-state-"))
    rows: list[dict[str, Any]] = []
    try:
        with Verifier(root, timeout=300, state_dir=state, parallel=1) as v, \
                Verifier(root, timeout=300, state_dir=state / "cold", parallel=1, warm=False) as cold:
            plain = v.run(tests=[])  # whole suite, no coverage
            if plain.error:
                raise SystemExit(f"the suite does not run: {plain.error}")
            baseline = v.baseline()
            preexisting = {r.nodeid for r in plain.failed}  # failing before any mutation: not the edit's doing
            sandbox = _sandbox_ms(v)
            for m in draw_mutations(root, args.mutations):
                changes = {m.path: m.new_text}
                full = v.run(changes, tests=[])
                selection = v.select(changes)
                picked = v.run(changes)
                full_cold = cold.run(changes, tests=[])
                picked_cold = cold.run(changes, tests=selection.tests or [])
                full_failed = {r.nodeid for r in full.failed} - preexisting
                sel_failed = {r.nodeid for r in picked.failed} - preexisting
                rows.append({
                    "path": m.path, "function": m.function, "mutation": m.kind, "line": m.line,
                    "level": selection.level, "selected": len(selection.tests),
                    "full_tests": len(full.results), "selected_tests": len(picked.results),
                    "full_seconds": round(full.seconds, 3), "selected_seconds": round(picked.seconds, 3),
                    "full_cold_seconds": round(full_cold.seconds, 3),
                    "selected_cold_seconds": round(picked_cold.seconds, 3),
                    "full_test_seconds": round(sum(r.duration for r in full.results), 4),
                    "selected_test_seconds": round(sum(r.duration for r in picked.results), 4),
                    "full_failures": len(full_failed), "selected_failures": len(sel_failed),
                    "missed": sorted(full_failed - sel_failed),
                    "errors": [e for e in (full.error, picked.error, full_cold.error, picked_cold.error) if e],
                })
            warm, warm_runs = v.warm, v.warm_runs
            runs = len(v.sessions)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    full_wall = sum(r["full_seconds"] for r in rows)
    sel_wall = sum(r["selected_seconds"] for r in rows)
    full_cold = sum(r["full_cold_seconds"] for r in rows)
    sel_cold = sum(r["selected_cold_seconds"] for r in rows)
    full_in = sum(r["full_test_seconds"] for r in rows)
    sel_in = sum(r["selected_test_seconds"] for r in rows)
    full_n = sum(r["full_tests"] for r in rows)
    sel_n = sum(r["selected_tests"] for r in rows)
    levels: dict[str, int] = {}
    for r in rows:
        levels[r["level"]] = levels.get(r["level"], 0) + 1
    summary = {
        "project": root.name,
        "mutations": len(rows),
        "detected_by_full_suite": sum(1 for r in rows if r["full_failures"]),
        "missed_failures": sum(len(r["missed"]) for r in rows),
        "mutations_with_missed_failures": sum(1 for r in rows if r["missed"]),
        "levels": levels,
        "preexisting_failures": sorted(preexisting),
        "tests_run_ratio": round(full_n / sel_n, 2) if sel_n else None,
        "warm": warm, "warm_runs": f"{warm_runs} of {runs}",
        "wall_time_ratio": round(full_wall / sel_wall, 2) if sel_wall else None,
        "wall_time_ratio_vs_cold_full": round(full_cold / sel_wall, 2) if sel_wall else None,
        "cold_wall_time_ratio": round(full_cold / sel_cold, 2) if sel_cold else None,
        "in_test_time_ratio": round(full_in / sel_in, 2) if sel_in else None,
        "full_seconds_p50": describe([r["full_seconds"] for r in rows]).get("p50"),
        "selected_seconds_p50": describe([r["selected_seconds"] for r in rows]).get("p50"),
        "full_cold_seconds_p50": describe([r["full_cold_seconds"] for r in rows]).get("p50"),
        "selected_cold_seconds_p50": describe([r["selected_cold_seconds"] for r in rows]).get("p50"),
        "plain_full_run_seconds": round(plain.seconds, 3),
        "coverage_map_run_seconds": round(baseline.seconds, 3),
        "coverage_map_overhead_ratio": round(baseline.seconds / plain.seconds, 2) if plain.seconds else None,
        "sandbox_setup_ms": sandbox,
        "isolation": isolation().describe(),
        "targets": {"wall_time_ratio": 5.0, "missed_failures": 0},
    }
    return {"benchmark": "verify", "summary": summary, "machine": machine(), "seed": SEED, "mutations": rows}
