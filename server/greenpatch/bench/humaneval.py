"""The quality half of `greenpatch bench complete`: HumanEval single-line infilling, judged by each task's tests.

The data set is in ../shared/eval/. Each task's line is removed, the service fills it
(line mode, gate off, so every suggestion and its mean log-probability is recorded), and the tests run in a
subprocess with a timeout. Reports pass rate, exact match, and for a sweep of gate thresholds the share shown
and the pass rate of what was shown (the gate as the server applies it, with the fill's end probability where
the service asked for it, and withholding a line its function's docstring examples fail; the same sweep showing
those lines too, and one on the lines before the examples judged them, side by side), and how many tasks sampled
other lines (`--alternatives N` overrides the setting).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from greenpatch.bench.stats import pct as _pct
from greenpatch.completion.filters import SHOW_ALL, confident_end, passes_gate
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine import EngineWorker
from greenpatch.engine.base import Engine
from greenpatch.errors import GreenpatchError, UsageError

EVAL = "humaneval-singleline-infilling.jsonl.gz"
GATES = [-0.05, -0.1, -0.15, -0.2, -0.25, -0.3, -0.35, -0.4, -0.5, -0.6, -0.8, -1.0, -99.0]


def _eval_dir() -> Path:
    for candidate in (Path.cwd() / "../shared/eval", Path(__file__).resolve().parents[4] / "shared" / "eval",
                      Path("/work/shared/eval")):
        if (candidate / EVAL).exists():
            return candidate.resolve()
    raise UsageError(f"{EVAL} not found in ../shared/eval", "run the benchmark from a clone with ../shared beside it")


def _passes(program: str, timeout: float = 10.0) -> bool:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(program)
        name = handle.name
    try:
        proc = subprocess.run([sys.executable, name], capture_output=True, timeout=timeout, check=False)
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        os.unlink(name)


class AlwaysCold:
    """`engine` as if no prompt were ever evaluated ahead, each token costing ten: every task's suggestion comes
    from the short prompt of a cold place wherever short_request cuts the window (CompletionService._short)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def pending(self, prefix: str, suffix: str, *, context: str = "", max_tokens: int = 64) -> int:
        return 10 * self._engine.count_tokens(context + prefix + suffix)


def quality(engine: Engine, tasks: int, suffix_lines: int | None = None, offset: int = 0,
            indented: bool = False, alternatives: int | None = None) -> dict[str, Any]:
    path = _eval_dir() / EVAL
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(x) for x in handle]
    stride = max(1, len(rows) // tasks)
    chosen = rows[offset % stride :: stride][:tasks]
    worker = EngineWorker(lambda: engine, owns_engine=False)
    # one request a task; whole lines, judged by their tests (how much of each the cut would show: `sure`)
    cut = CompletionSettings().cut_logprob
    # every task with its full prompt (a place prepared ahead, or typed at a while); AlwaysCold: with the short
    # prompt of a cold place (CompletionService._short, which only asks with one when preparing ahead is on)
    settings = CompletionSettings(debounce_ms=0, gate_threshold=-1e9, prefetch=False, cut_logprob=SHOW_ALL,
                                  prepare_ahead=isinstance(engine, AlwaysCold))
    if suffix_lines is not None:
        settings.suffix_lines = suffix_lines
    if alternatives is not None:
        settings.alternatives = alternatives
    results = []

    async def go() -> None:
        for k, row in enumerate(chosen):
            service = CompletionService(worker, settings)
            # The cursor on the removed line: at column 0, or (indented) after the line's indentation.
            solution = row["canonical_solution"]
            indent = solution[: len(solution) - len(solution.lstrip(" \t"))] if indented else ""
            doc = row["prompt"] + indent + "\n" + row["suffix"]
            line = row["prompt"].count("\n")
            try:
                s = await service.complete(f"file:///humaneval/{k}.py", None, doc, 1, line, len(indent), mode="line")
            except GreenpatchError:  # a failed model call writes nothing: the task fails
                s = None
            text = s.text if s else ""

            def passes(line: str, row: dict[str, Any] = row, indent: str = indent) -> bool:
                return bool(line) and _passes(row["prompt"] + indent + line + "\n" + row["suffix"] + "\n" + row["test"]
                                              + f"\ncheck({row['entry_point']})\n")

            print(f"bench complete: task {k + 1}/{len(chosen)}", file=sys.stderr)
            passed = passes(text)
            # the line before the docstring examples judged it (what the gate alone would decide on)
            before, before_mean, before_end = s.unjudged if s and s.unjudged else (text, None, None)
            before_passed = passed if before == text else passes(before)
            results.append({
                "task_id": row["task_id"], "text": text, "raw": s.raw if s else "", "filtered": not text,
                "short": bool(s and s.short),
                "mean_logprob": s.mean_logprob if s else None,
                "logprobs": [round(x, 4) for x in s.logprobs or []] if s else [], "seconds": round(s.seconds, 3) if s else None,
                "end_logprob": s.end_logprob if s else None, "sampled": s.sampled if s else 0,
                "exact": text.strip() == row["canonical_solution"].strip(), "solution": row["canonical_solution"],
                "passed": passed, "examples": s.examples if s else "",
                "before_text": before, "before_passed": before_passed, "before_mean_logprob": before_mean,
                "before_end_logprob": before_end,
                "sure": text[: confident_end(s.logprobs or [], s.token_ends or [], 0, cut, len(text))] if s else "",
            })

    started = time.perf_counter()
    asyncio.run(go())
    worker.close()
    n = len(results)
    passed = sum(r["passed"] for r in results)
    seconds = [r["seconds"] for r in results if r["seconds"] is not None]
    sweep = []
    without = []  # the same gates on the lines before the docstring examples judged them, side by side
    failing_shown = []  # the same gates showing the lines whose examples failed (as before they were withheld)
    for gate in GATES:
        gated = [r for r in results if r["text"] and passes_gate(r["mean_logprob"], gate, r["end_logprob"])]
        shown = [r for r in gated if r["examples"] != "failed"]  # as the server decides (CompletionService._remember)
        ok = sum(r["passed"] for r in shown)
        # shown only in part (completions.cutLogprob), and of those the part a prefix of the removed line or of
        # a passing one
        cut_shown = [r for r in shown if r["sure"] != r["text"]]
        cut_right = sum(r["passed"] or r["solution"].lstrip().startswith(r["sure"].lstrip()) for r in cut_shown)
        sweep.append({"gate": gate, "shown": round(len(shown) / n, 3) if n else None,
                      "pass_of_shown": round(ok / len(shown), 3) if shown else None,
                      "shown_in_part": len(cut_shown), "in_part_right": cut_right,
                      "abstain": round(1 - len(shown) / n, 3) if n else None})
        ok = sum(r["passed"] for r in gated)
        failing_shown.append({"gate": gate, "shown": round(len(gated) / n, 3) if n else None,
                              "pass_of_shown": round(ok / len(gated), 3) if gated else None})
        shown = [r for r in results if r["before_text"] and passes_gate(r["before_mean_logprob"], gate,
                                                                         r["before_end_logprob"])]
        ok = sum(r["before_passed"] for r in shown)
        without.append({"gate": gate, "shown": round(len(shown) / n, 3) if n else None,
                        "pass_of_shown": round(ok / len(shown), 3) if shown else None})
    return {
        "dataset": str(path), "tasks": n, "pass_rate": round(passed / n, 3) if n else None,
        "short_prompts": sum(1 for r in results if r["short"]),
        "exact_match": round(sum(r["exact"] for r in results) / n, 3) if n else None,
        "filtered": sum(r["filtered"] for r in results),
        "pass_rate_unfiltered_shown": round(passed / max(1, sum(not r["filtered"] for r in results)), 3),
        "gate_sweep": sweep, "gate_sweep_without_examples": without, "gate_sweep_showing_failed": failing_shown,
        "pass_rate_without_examples": round(sum(r["before_passed"] for r in results) / n, 3) if n else None,
        "examples": {v: sum(r["examples"] == v for r in results) for v in ("passed", "replaced", "failed", "error", "")},
        "seconds": round(time.perf_counter() - started, 1),
        "p50_seconds": _pct(seconds, 0.5), "p95_seconds": _pct(seconds, 0.95),
        "alternatives": settings.alternatives, "tasks_sampled": sum(1 for r in results if r["sampled"]),
        "results": results,
    }
