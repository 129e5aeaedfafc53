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
a jump back, see KvCache._park), "prefetch" (the server's mode with `completions.prefetch` on: the next line's
suggestion computed ahead while a line's is shown, see CompletionService._prefetch_after) and "none" (the whole prompt every time; it
stops after a few model calls, it is slow). The replayed user types a keystroke `--typing-ms` after the suggestion
for the one before (untimed: the time work done ahead has). Reports p50/p95 over the keystrokes typed and over those
that called the model, the ratios to no reuse (model calls against model calls) and to the other modes, the first
request at each new line on its own, split into the next line of code after the one just typed ("next_line": lines
come in such pairs), a jump elsewhere ("new_place"; the first line of a mode starts from an empty cache) and, after
the typing, two jumps back to files left before ("back", see retype.revisits), how many suggestions were shown and how
much of what was shown the file really has next, and the process RSS.

Quality: HumanEval single-line infilling, see bench/humaneval.py.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from greenpatch.bench import LATENCY_MODES
from greenpatch.bench.humaneval import AlwaysCold, quality
from greenpatch.bench.retype import keystroke_streams, replay
from greenpatch.bench.stats import pct as _pct
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings, Settings
from greenpatch.context.builder import HeldContext
from greenpatch.engine import EngineWorker, load_engine, models
from greenpatch.engine.base import Engine
from greenpatch.engine.kvplan import DEFAULT_REUSE

TYPING_MS = 150  # between keystrokes in the latency replay: about 80 words a minute
# The latency replay types lines of these files as they were at this commit (see _default_files).
REPLAY_COMMIT = "03b98505bd5dbcb331b611e05908e7fe460084eb"
REPLAY_FILES = ["server/greenpatch/engine/models.py", "server/greenpatch/completion/service.py",
                "server/greenpatch/context/builder.py"]


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
        replayed = asyncio.run(replay(service, streams, keystrokes, per_line, cap, typing_ms / 1000))
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
            # the first request after a jump back to a file left before (see retype.revisits)
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
        if getattr(args, "short_prompt", False):
            report["quality_short"] = quality(cast(Engine, AlwaysCold(engine)), args.tasks, getattr(args, "suffix_lines", None),
                                              getattr(args, "offset", 0), indented,
                                              getattr(args, "alternatives", None))
        if indented and hasattr(engine, "heal"):
            engine.heal = False
            report["quality_without_healing"] = run_quality()
            engine.heal = True
    if getattr(args, "real_lines", 0) > 0:
        from greenpatch.bench.realcode import real_code

        log_dir = getattr(args, "real_log", None)
        report["real_code"] = real_code(engine, files, settings.completions, args.real_lines,
                                        getattr(args, "real_sets", None), Path(log_dir) if log_dir else None,
                                        getattr(args, "short_prompt", False))
    if args.engine:
        from greenpatch.bench.remote import remote_latency

        keystrokes = max(args.keystrokes, 1)
        streams = keystroke_streams(files, keystrokes)
        report["remote_engine"] = remote_latency(args.engine, engine, streams, replay, keystrokes, model=name)
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
    q = report.get("quality_short")
    if q:
        at = min(q["gate_sweep"], key=lambda g: abs(g["gate"] - threshold))
        summary.update({"short_prompt_pass_rate": q["pass_rate"], "short_prompt_shown_at_gate": at["shown"],
                        "short_prompt_pass_of_shown_at_gate": at["pass_of_shown"],
                        "short_prompt_tasks_short": q.get("short_prompts")})
    report["summary"] = summary
    engine.close()
    replay_dir.cleanup()
    return report
