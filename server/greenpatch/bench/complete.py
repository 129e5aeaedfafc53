"""`greenpatch bench complete`: latency of inline completion while typing, and HumanEval single-line quality.

Latency: lines of real files are retyped one character at a time against the warm engine through the real
CompletionService with repo context from the files' project index, as the server has it (debounce excluded: it is a
client-side wait), once per mode in the same run: "chunk" (prefix reuse + llama.cpp-style shifting of the cached
suffix), "prefix" (longest common token prefix only), "nodraft" (the server's reuse mode without speculative
drafts), "shownonly" (the server's mode, but typing along only suggestions that were shown, not withheld ones whose
rest became sure nor lines the filters dropped), "noheal" (the server's mode without token healing of a half-typed word), "unheld" (the server's
mode, but the repo context is computed afresh for every request instead of being held while the cursor stays in one
area), "noalt" (the server's mode without sampling other lines where the first one does not close the gap to the
code below, see completion/alternatives.py), "nopark" (the server's mode without parking a prompt at a jump away for
a jump back, see LlamaEngine._park), "prefetch" (the server's mode with `completions.prefetch` on: the next line's
suggestion computed ahead while a line's is shown, see CompletionService._prefetch_after) and "none" (the whole prompt every time; it
stops after a few model calls, it is slow). The replayed user types a keystroke `--typing-ms` after the suggestion
for the one before (untimed: the time work done ahead has). Reports p50/p95 over the keystrokes typed and over those
that called the model, the ratios to no reuse (model calls against model calls) and to the other modes, the first
request at each new line on its own, split into the next line of code after the one just typed ("next_line": lines
come in such pairs), a jump elsewhere ("new_place"; the first line of a mode starts from an empty cache) and, after
the typing, two jumps back to files left before ("back", see _revisits), how many suggestions were shown and how
much of what was shown the file really has next, and the process RSS.

Quality: HumanEval single-line infilling (../shared/eval/): each task's line is removed, the service fills it
(line mode, gate off, so every suggestion and its mean log-probability is recorded), and the tests run in a
subprocess with a timeout. Reports pass rate, exact match, and for a sweep of gate thresholds the share shown
and the pass rate of what was shown (the gate as the server applies it, with the fill's end probability where
the service asked for it, and withholding a line its function's docstring examples fail; the same sweep showing
those lines too, and one on the lines before the examples judged them, side by side), and how many tasks sampled
other lines (`--alternatives N` overrides the setting).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from greenpatch.bench import LATENCY_MODES
from greenpatch.bench.stats import pct as _pct
from greenpatch.completion.filters import SHOW_ALL, confident_end, passes_gate
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings, Settings
from greenpatch.context.builder import HeldContext
from greenpatch.engine import EngineWorker, load_engine, models
from greenpatch.engine.base import Engine
from greenpatch.engine.kvplan import DEFAULT_REUSE
from greenpatch.errors import GreenpatchError, UsageError

EVAL = "humaneval-singleline-infilling.jsonl.gz"
TYPING_MS = 150  # between keystrokes in the latency replay: about 80 words a minute
# The latency replay types lines of these files as they were at this commit (see _default_files).
REPLAY_COMMIT = "03b98505bd5dbcb331b611e05908e7fe460084eb"
REPLAY_FILES = ["server/greenpatch/engine/models.py", "server/greenpatch/completion/service.py",
                "server/greenpatch/context/builder.py"]
GATES = [-0.05, -0.1, -0.15, -0.2, -0.25, -0.3, -0.35, -0.4, -0.5, -0.6, -0.8, -1.0, -99.0]


def _eval_dir() -> Path:
    for candidate in (Path.cwd() / "../shared/eval", Path(__file__).resolve().parents[4] / "shared" / "eval",
                      Path("/work/shared/eval")):
        if (candidate / EVAL).exists():
            return candidate.resolve()
    raise UsageError(f"{EVAL} not found in ../shared/eval", "run the benchmark from a clone with ../shared beside it")


def _rss_mb() -> float:
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _default_files(workdir: Path) -> tuple[list[Path], str]:
    """greenpatch's own files to replay, as they were at REPLAY_COMMIT (extracted from git into `workdir` with the
    package around them, for the repo context), so that runs at different commits replay the same lines; the
    working tree's files where git or that commit is not at hand (then say so: the lines move as the code does).
    The files and where they came from."""
    repo = Path(__file__).resolve().parents[3]
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", REPLAY_COMMIT, "pyproject.toml", "server/greenpatch"],
                                 capture_output=True, check=True, timeout=120).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(workdir, filter="data")
        return [workdir / f for f in REPLAY_FILES], f"git {REPLAY_COMMIT[:10]}"
    except (OSError, subprocess.SubprocessError, tarfile.TarError):
        return [repo / f for f in REPLAY_FILES], "working tree"


def keystroke_streams(files: list[Path], keystrokes: int, lines_per_file: int = 2) -> list[tuple[Path, str, int, str]]:
    """(file, text with the target line cut to its indentation, line number, the line's text) per target line.

    Target lines come in pairs: a line, then the next line of code after it, typed with the first one whole above
    it, as when the user writes a line, presses Enter and goes on to the next: while the first is typed, the second
    and the blank lines before it are not in the file yet."""
    targets = []
    for path in files:
        rows = path.read_text(encoding="utf-8").split("\n")
        good = [i for i, r in enumerate(rows) if 24 <= len(r.strip()) <= 90 and not r.strip().startswith(("#", '"', "'"))
                and i > 20]
        if not good:
            continue
        pairs = max(1, lines_per_file // 2)
        step = max(1, len(good) // (pairs + 1))
        for i in good[step::step][:pairs]:
            following = [k for k in range(i + 1, min(i + 4, len(rows))) if rows[k].strip()]
            after = following[0] + 1 if following else i + 1  # the rows below the pair's first line while typed
            for k in [i] + following[:1]:
                indent = rows[k][: len(rows[k]) - len(rows[k].lstrip())]
                cut = rows[:k] + [indent] + rows[(after if k == i else k + 1) :]
                targets.append((path, "\n".join(cut), k, rows[k]))
    return targets


def _revisits(streams: list[tuple[Path, str, int, str]]) -> list[tuple[Path, str, int, str]]:
    """Jumps back: to the file left just before the last one, then to the last file again (as when going back and
    forth between a module and its tests), each time to a new line opened below the last line typed there. That
    request was never made before (the line whole was: with short lines the replay types them to the end, and the
    suggestion cache would answer it), and its prompt is the one left there but for one line."""
    lasts: dict[Path, tuple[Path, str, int, str]] = {}
    for stream in streams:
        lasts[stream[0]] = stream
    files = list(lasts)
    out = []
    for path, text, line, target in [lasts[f] for f in files[-2:]] if len(files) >= 2 else []:
        rows = text.split("\n")
        indent = target[: len(target) - len(target.lstrip())]
        out.append((path, "\n".join(rows[:line] + [target, indent] + rows[line + 1 :]), line + 1, indent))
    return out


async def _replay(service: CompletionService, streams: list[tuple[Path, str, int, str]], keystrokes: int,
                  per_line: int, max_model_calls: int | None = None, typing: float = 0.0) -> list[dict[str, Any]]:
    """Type the streams one keystroke at a time, each after the suggestion for the one before and `typing` seconds
    more (the user's typing speed; untimed), and record each keystroke's time to suggestion."""
    samples: list[dict[str, Any]] = []
    state = {"version": 0}

    async def ask(path: Path, rows: list[str], line: int, body: str, n: int, **flags: bool) -> None:
        uri = path.as_uri()
        state["version"] += 1
        version = state["version"]
        doc = "\n".join(rows)
        service.notify_change(uri, version)
        started = time.perf_counter()
        try:
            s = await service.complete(uri, path, doc, version, line, len(rows[line]))
        except GreenpatchError:  # a failed model call shows nothing, as in the editor
            s = None
        elapsed = time.perf_counter() - started
        samples.append({
            "seconds": elapsed, "next_line": False, "back": False,
            "model": bool(s is not None and not s.cached), "shown": bool(s and s.shown),
            # shown, and its first line is the rest of the line as the file has it; how much of it was
            "right": bool(s and s.shown and s.text.split("\n", 1)[0].rstrip() == body[n:].rstrip()),
            "chars": len(s.text.split("\n", 1)[0].rstrip()) if s and s.shown else 0,
            "typed": len(os.path.commonprefix([s.text.split("\n", 1)[0].rstrip(), body[n:]])) if s and s.shown
            else 0,
            "reused": s.reused_tokens if s else 0, "prompt": s.prompt_tokens if s else 0, "first": n == 0,
            "sampled": s.sampled if s else 0, "model_seconds": round(s.model_seconds, 4) if s else 0.0,
            "mode": s.mode if s else "", "file": path.name, "line": line, "typed_chars": n, **flags,
        })
        if typing > 0:
            await asyncio.sleep(typing)

    previous: tuple[Path, int] | None = None
    done = False
    for path, text, line, target in streams:
        rows = text.split("\n")
        indent = rows[line]
        body = target[len(indent) :]
        # the line of code right after the last one: the cursor moved down, only the line above changed
        next_line = previous is not None and previous[0] == path and 0 < line - previous[1] <= 3
        for n in range(min(len(body), per_line) + 1):
            done = sum(not x["first"] for x in samples) >= keystrokes or (
                max_model_calls is not None and sum(x["model"] for x in samples) >= max_model_calls)
            if done:
                break
            rows[line] = indent + body[:n]
            # The first request at a new place (the cursor moved to another line) is reported on its own: it
            # evaluates what changed since the last place, then typing along the line reuses it.
            await ask(path, rows, line, body, n, next_line=n == 0 and next_line)
        if done:
            break
        previous = (path, line)
    if not done:
        for path, text, line, target in _revisits(streams):
            await ask(path, text.split("\n"), line, target, len(target), first=True, back=True)
    return samples


def latency(engine: Engine, files: list[Path], keystrokes: int, typing_ms: int = TYPING_MS,
            modes: list[str] | None = None) -> dict[str, Any]:
    """The typing replay once per mode (all of LATENCY_MODES by default; the server's own mode always runs)."""
    streams = keystroke_streams(files, keystrokes)
    per_line = max(4, keystrokes // max(1, len(streams)))
    out: dict[str, Any] = {"files": [str(f) for f in files], "lines": len(streams), "typing_ms": typing_ms}
    if not hasattr(engine, "reuse"):
        modes = ["fake"]
    else:
        wanted = set(modes or LATENCY_MODES) | {DEFAULT_REUSE}
        modes = [m for m in LATENCY_MODES if m in wanted]
    # Repo context as the server has it: the files' project indexed with tree-sitter (untimed, once).
    from greenpatch.completion.command import _index, find_root

    root = find_root(files[0]) if files else None
    index = _index(root) if root is not None else None
    out["repo_context"] = index is not None
    if streams:  # untimed: page the model in, so the first mode measured does not pay for it
        _path, text, line, _ = streams[0]
        engine.infill(text.split("\n")[line - 1] + "\n", "", max_tokens=4)
    for mode in modes:
        if hasattr(engine, "reuse"):
            engine.reuse = mode if mode in ("prefix", "chunk", "none") else DEFAULT_REUSE
            engine.speculate = mode != "nodraft"  # type: ignore[attr-defined]
            engine.heal = mode != "noheal"  # type: ignore[attr-defined]
            engine.park = mode != "nopark"  # type: ignore[attr-defined]
            engine._clear()  # type: ignore[attr-defined]
            engine._drafts.clear()  # type: ignore[attr-defined]
        counts_before = dict(getattr(engine, "draft_counts", {}))
        worker = EngineWorker(lambda: engine, owns_engine=False)
        # "noahead": without preparing the next line's prompt while a line suggestion is read (completion/ahead.py)
        settings = CompletionSettings(debounce_ms=0, prefetch=mode == "prefetch", prepare_ahead=mode != "noahead")
        if mode == "noalt":
            settings.alternatives = 0
        service = CompletionService(worker, settings, index=index, root=root)
        service.typed.keep_withheld = mode != "shownonly"
        if mode == "unheld":
            service.held = HeldContext(lines=-1)  # never held
        started = time.perf_counter()
        # No reuse is slow: the same keystrokes, but it stops after a few model calls.
        cap = max(3, keystrokes // 5) if mode == "none" else None
        replayed = asyncio.run(_replay(service, streams, keystrokes, per_line, cap, typing_ms / 1000))
        samples = [s for s in replayed if not s["first"]]
        first = [s["seconds"] for s in replayed if s["first"] and not s["next_line"] and not s["back"]]
        back = [s["seconds"] for s in replayed if s["back"]]
        nxt = [s["seconds"] for s in replayed if s["next_line"]]
        print(f"bench complete: {mode}: {len(samples)} keystrokes in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        worker.close()
        times = [s["seconds"] for s in samples]
        model_times = [s["seconds"] for s in samples if s["model"]]
        out[mode] = {
            "keystrokes": len(samples), "model_calls": len(model_times),
            "p50": _pct(times, 0.5), "p95": _pct(times, 0.95), "mean": round(statistics.mean(times), 4) if times else None,
            "model_p50": _pct(model_times, 0.5), "model_p95": _pct(model_times, 0.95),
            "shown": sum(s["shown"] for s in samples), "shown_right": sum(s["right"] for s in samples),
            # of the characters shown, the share the user went on to type (their line's text)
            "shown_chars_typed": round(sum(s["typed"] for s in samples) / max(1, sum(s["chars"] for s in samples)), 3),
            "mean_prompt_tokens": round(statistics.mean([s["prompt"] for s in samples if s["model"]] or [0]), 1),
            "mean_reused_tokens": round(statistics.mean([s["reused"] for s in samples if s["model"]] or [0]), 1),
            "wall_seconds": round(time.perf_counter() - started, 2),
            "new_place": len(first), "new_place_p50": _pct(first, 0.5), "new_place_max": _pct(first, 1.0),
            # the first request on the next line of code after finishing one (Enter): only that line is new
            "next_line": len(nxt), "next_line_p50": _pct(nxt, 0.5), "next_line_max": _pct(nxt, 1.0),
            # of those, answered by the suggestion computed ahead while the line before was shown (no model call)
            "next_line_ahead": sum(1 for s in replayed if s["next_line"] and not s["model"]),
            "prefetches": service.prefetches,
            # the first request after a jump back to a file left before (see _revisits)
            "back": len(back), "back_p50": _pct(back, 0.5), "back_max": _pct(back, 1.0),
            "back_reused_tokens": [s["reused"] for s in replayed if s["back"]],
            # requests (new places included) that sampled other lines (completion/alternatives.py)
            "sampled_requests": sum(1 for s in replayed if s["sampled"]),
            "first_shown": sum(s["shown"] for s in replayed if s["first"] and not s["back"]),
            "first_right": sum(s["right"] for s in replayed if s["first"] and not s["back"]),
        }
        if mode == DEFAULT_REUSE:  # the server's mode keystroke by keystroke, to see where the time goes
            out[mode]["keystroke_log"] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}
                                          for s in replayed]
        counts = getattr(engine, "draft_counts", None)
        if counts is not None:
            out[mode]["drafted_tokens"] = counts["drafted"] - counts_before.get("drafted", 0)
            out[mode]["accepted_tokens"] = counts["accepted"] - counts_before.get("accepted", 0)
    if hasattr(engine, "reuse"):
        engine.reuse, engine.speculate, engine.heal, engine.park = DEFAULT_REUSE, True, True, True  # type: ignore[attr-defined]  # the server's
    # Ratios between modes measured in this run, (name, keys, a, b): b's figure over a's (a mode --modes left out
    # leaves its ratios out).
    pairs = [
        # Model calls against model calls: the keystrokes answered without one (typed along) cost the same in
        # both modes, and no reuse may stop early.
        ("speedup_{}_vs_none", ("model_p50", "model_p95"), DEFAULT_REUSE, "none", 1),
        ("chunk_vs_prefix_{}", ("model_p50",), "chunk", "prefix", 2),
        # Means, not medians: when most keystrokes are typed along, both medians are the cache's ~0.1 ms.
        ("drafts_speedup_{}", ("mean", "p95", "model_p50"), DEFAULT_REUSE, "nodraft", 2),
        ("withheld_along_speedup_{}", ("mean", "p95"), DEFAULT_REUSE, "shownonly", 2),
        ("healing_speedup_{}", ("mean", "p95"), DEFAULT_REUSE, "noheal", 2),
        ("held_context_speedup_{}", ("mean", "next_line_p50"), DEFAULT_REUSE, "unheld", 2),
        ("alternatives_cost_{}", ("mean", "p95", "next_line_p50", "new_place_p50"), "noalt", DEFAULT_REUSE, 2),
        ("parked_speedup_{}", ("back_p50",), DEFAULT_REUSE, "nopark", 2),
        ("prefetch_speedup_{}", ("mean", "p95", "next_line_p50"), "prefetch", DEFAULT_REUSE, 2),
        ("ahead_speedup_{}", ("mean", "p95", "next_line_p50"), DEFAULT_REUSE, "noahead", 2),
    ]
    for name, keys, mode_a, mode_b, digits in pairs:
        if mode_a in out and mode_b in out:
            for key in keys:
                a, b = out[mode_a][key], out[mode_b][key]
                out[name.format(key)] = round(b / a, digits) if a and b else None
    return out


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
    settings = CompletionSettings(debounce_ms=0, gate_threshold=-1e9, prefetch=False, cut_logprob=SHOW_ALL)
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    name = args.model or "default"
    if name != "fake":
        models.ensure_model(name, settings.model.cache_dir)
    rss_before = _rss_mb()
    load_started = time.perf_counter()
    engine = load_engine(name, settings)
    load_seconds = time.perf_counter() - load_started
    _spec, model_path = (None, None) if name == "fake" else models.resolve_model(name)
    replay_dir = tempfile.TemporaryDirectory(prefix="greenpatch-replay-")
    files, source = [Path(f).resolve() for f in args.files], "--files"
    if not files:
        files, source = _default_files(Path(replay_dir.name))
    report: dict[str, Any] = {"model": name, "threads": getattr(engine, "threads", None),
                              "load_seconds": round(load_seconds, 2), "cpu_count": os.cpu_count(),
                              "replay_files": source}
    if args.keystrokes > 0:
        report["latency"] = latency(engine, files, args.keystrokes, getattr(args, "typing_ms", TYPING_MS),
                                    getattr(args, "modes", None))
    if getattr(args, "ahead", False):  # the first request at a place, with and without preparing ahead (ahead.py)
        from greenpatch.bench.ahead import replay as ahead_replay

        extra = [Path(f).resolve() for f in getattr(args, "ahead_files", [])]
        report["ahead"] = ahead_replay(engine, extra + files, getattr(args, "ahead_rest_ms", 2000))
    rss = _rss_mb()
    model_mb = model_path.stat().st_size / 1e6 if model_path is not None and model_path.exists() else 0.0
    report["rss_mb"] = round(rss, 1)
    report["rss_before_load_mb"] = round(rss_before, 1)
    report["model_file_mb"] = round(model_mb, 1)
    threshold = settings.completions.gate_threshold
    if args.tasks > 0:
        indented = getattr(args, "indented", False)

        def run_quality() -> dict[str, Any]:
            return quality(engine, args.tasks, getattr(args, "suffix_lines", None), getattr(args, "offset", 0),
                           indented, getattr(args, "alternatives", None))

        report["quality"] = run_quality()
        if indented and hasattr(engine, "heal"):
            engine.heal = False
            report["quality_without_healing"] = run_quality()
            engine.heal = True
    if getattr(args, "real_lines", 0) > 0:
        from greenpatch.bench.realcode import real_code

        log_dir = getattr(args, "real_log", None)
        report["real_code"] = real_code(engine, files, settings.completions, args.real_lines,
                                        getattr(args, "real_sets", None), Path(log_dir) if log_dir else None)
    if args.engine:
        from greenpatch.bench.remote import remote_latency

        keystrokes = max(args.keystrokes, 1)
        streams = keystroke_streams(files, keystrokes)
        report["remote_engine"] = remote_latency(args.engine, engine, streams, _replay, keystrokes, model=name)
    summary: dict[str, Any] = {"model": name, "rss_mb": report["rss_mb"], "model_file_mb": report["model_file_mb"],
                               "replay_files": source}
    lat = report.get("latency", {})
    for mode in ("chunk", "prefix", "nodraft", "shownonly", "noheal", "unheld", "noalt", "nopark", "prefetch",
                 "noahead", "none"):
        if mode in lat:
            for key in ("p50", "p95", "mean", "model_p50", "model_calls", "shown", "shown_chars_typed",
                        "next_line_p50", "next_line_ahead", "new_place_p50", "back_p50", "sampled_requests", "first_shown",
                        "first_right"):
                summary[f"{mode}_{key}"] = lat[mode][key]
    for key in ("speedup_model_p50_vs_none", "speedup_model_p95_vs_none", "chunk_vs_prefix_model_p50",
                "drafts_speedup_mean", "drafts_speedup_p95", "withheld_along_speedup_mean", "withheld_along_speedup_p95",
                "healing_speedup_mean", "healing_speedup_p95", "held_context_speedup_mean",
                "held_context_speedup_next_line_p50", "alternatives_cost_mean", "alternatives_cost_p95",
                "alternatives_cost_next_line_p50", "alternatives_cost_new_place_p50", "parked_speedup_back_p50",
                "prefetch_speedup_mean", "prefetch_speedup_p95", "prefetch_speedup_next_line_p50",
                "ahead_speedup_mean", "ahead_speedup_p95", "ahead_speedup_next_line_p50"):
        if key in lat:
            summary[key] = lat[key]
    ahead = report.get("ahead", {})
    for variant in ("without", "with"):
        summary.update({f"ahead_{variant}_{k}": v for k, v in ahead.get(variant, {}).items() if k.endswith("_p50")})
    summary.update({f"ahead_{k}": v for k, v in ahead.items() if k.startswith("speedup_") or k == "parked_mb"})
    remote = report.get("remote_engine", {}).get("summary", {})
    if "http_overhead_p50" in remote:
        summary["http_overhead_p50"] = remote["http_overhead_p50"]
    summary.update(report.get("real_code", {}).get("summary", {}))
    q = report.get("quality")
    if q:
        summary.update({"tasks": q["tasks"], "pass_rate": q["pass_rate"], "exact_match": q["exact_match"]})
        at = min(q["gate_sweep"], key=lambda g: abs(g["gate"] - threshold))
        summary.update({"gate_threshold": threshold, "shown_at_gate": at["shown"],
                        "pass_of_shown_at_gate": at["pass_of_shown"], "examples": q["examples"],
                        "pass_rate_without_examples": q["pass_rate_without_examples"]})
        at = min(q["gate_sweep_without_examples"], key=lambda g: abs(g["gate"] - threshold))
        summary.update({"without_examples_shown_at_gate": at["shown"],
                        "without_examples_pass_of_shown_at_gate": at["pass_of_shown"]})
    q = report.get("quality_without_healing")
    if q:
        at = min(q["gate_sweep"], key=lambda g: abs(g["gate"] - threshold))
        summary.update({"without_healing_pass_rate": q["pass_rate"], "without_healing_shown_at_gate": at["shown"],
                        "without_healing_pass_of_shown_at_gate": at["pass_of_shown"]})
    report["summary"] = summary
    engine.close()
    replay_dir.cleanup()
    return report
