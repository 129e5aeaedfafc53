"""`greenpatch bench real`: greenpatch as a user meets it, on real PyPI libraries in their own environments.

For each project (bench/real_projects.py: pinned sdists, each in a venv of its own with an older pytest, an old
coverage or none, the oldest Python), the bench:
1. runs the project's own suite in its venv (the bench's own pytest run: the truth every verdict is judged by);
2. times `greenpatch test WS --all --json --python VENV` (time to the first test result; the baseline run's time);
3. draws single-line human slips with a seed (bench/slips.py) in functions the tests name, keeping the first
   `--bugs` that make at least one test fail (cached per project and seed, and stored in the report);
4. runs `greenpatch repair WS --json --python VENV --model M --timeout T` on each slip as a subprocess, so that a
   crash, a traceback, a missing report or a hang is seen as the user would see it, and judges the fix greenpatch
   shows by running the whole suite on it in the project's venv (not by greenpatch's own verdict).
Setup failures are counted per project and never stop the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import greenpatch
from greenpatch.bench.real_projects import PROJECTS, Prepared, Project, SetupFailed, local_project, prepare
from greenpatch.bench.slips import Slip, draw, named_in, parses, slips_in
from greenpatch.bench.stats import describe, machine
from greenpatch.repair.candidates import digest
from greenpatch.verify.select import is_test_file

SEED = 24
GRACE = 120.0  # seconds past --timeout before the bench kills a repair that has not exited: a hang
NOT_CODE = re.compile(r"(^|/)(setup|versioneer|conftest|_version|version)\.py$|(^|/)(docs?|tests?|testing|examples?|"
                      r"benchmarks?|ci_tools|build)/")


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "greenpatch" / "bench-real"


# --- running things ------------------------------------------------------------------------------------------


@dataclass
class Finished:
    code: int | None  # None: killed by the bench at its limit
    seconds: float
    stdout: str
    stderr: str

    @property
    def crashed(self) -> bool:
        return (self.code is not None and self.code < 0) or "Traceback (most recent call last)" in self.stderr

    def json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.stdout)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


def _call(argv: list[str], cwd: Path, limit: float, env: dict[str, str] | None = None) -> Finished:
    """Run argv in its own process group; at `limit` kill the whole group (a hang, not a result)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        code = None
    return Finished(code, round(time.monotonic() - started, 2), out or "", err or "")


def _greenpatch_env() -> dict[str, str]:
    """This process's environment with this greenpatch first on the path, so the subprocess runs the same code."""
    env = dict(os.environ)
    here = str(Path(greenpatch.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


def _pytest(python: str, folder: Path, limit: float, deselect: list[str], first_failure: bool = False) -> Finished:
    argv = [python, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *(["-x"] if first_failure else [])]
    argv += [f"--deselect={nodeid}" for nodeid in deselect]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # greenpatch's own path must not leak into the project's interpreter
    return _call(argv, folder, limit, env)


_SUMMARY_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def pytest_outcome(output: str) -> tuple[int, list[str]]:
    """(tests run, node ids of the failed or errored ones) from pytest's `-q -rfE` output (every pytest prints it)."""
    lines = [line for line in output.splitlines() if line.strip()]
    counts = _SUMMARY_COUNT.findall(lines[-1]) if lines else []
    failed = sorted({m.group(1) for m in _FAILED_LINE.finditer(output)})
    return sum(int(n) for n, _ in counts), failed


def _copy(source: Path, to: Path) -> Path:
    if to.exists():
        shutil.rmtree(to)
    shutil.copytree(source, to, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".greenpatch"))
    return to


def _forget_state(workspace: Path) -> None:
    """greenpatch keeps a coverage map per workspace path in the user cache; these workspaces are thrown away."""
    from greenpatch.verify.verifier import default_state_dir

    shutil.rmtree(default_state_dir(workspace), ignore_errors=True)


# --- choosing the slips --------------------------------------------------------------------------------------


def candidate_slips(source: Path) -> list[Slip]:
    """Every slip in the project's own code, in functions its tests name."""
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py"))
    tests = [rel for rel in files if is_test_file(rel) or re.search(r"(^|/)tests?/", rel)]
    words: set[str] = set()
    for rel in tests:
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", (source / rel).read_text(encoding="utf-8", errors="replace")))
    pool: list[Slip] = []
    for rel in files:
        if rel in tests or NOT_CODE.search(rel):
            continue
        try:
            text = (source / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pool.extend(slips_in(rel, text, named_in(words)))
    return pool


def choose_slips(prepared: Prepared, work: Path, count: int, seed: int, limit: float, deselect: list[str],
                 cache: Path | None) -> tuple[list[Slip], dict[str, Any]]:
    """The first `count` slips (in the seed's order) that make at least one of the project's tests fail."""
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text(encoding="utf-8"))
        if len(data["chosen"]) >= count:
            return [Slip.from_dict(d) for d in data["chosen"][:count]], {**data["selection"], "cached": True}
    source = prepared.source
    order = draw(candidate_slips(source), seed)
    probe = _copy(source, work / "probe")
    chosen: list[Slip] = []
    tried: Counter[str] = Counter()
    started = time.monotonic()
    for slip in order:
        if len(chosen) >= count or sum(tried.values()) >= 8 * count + 20:
            break
        text = (source / slip.path).read_text(encoding="utf-8")
        if not parses(slip, text):
            tried["does not parse"] += 1
            continue
        (probe / slip.path).write_text(slip.apply(text), encoding="utf-8")
        try:
            done = _pytest(prepared.python, probe, limit, deselect, first_failure=True)
        finally:
            (probe / slip.path).write_text(text, encoding="utf-8")
        if done.code is None:
            tried["hangs the suite"] += 1
        elif done.code == 1:
            tried["kept"] += 1
            chosen.append(slip)
        elif done.code == 0:
            tried["no test fails"] += 1
        else:
            tried[f"pytest exit {done.code}"] += 1
    selection = {"candidates": len(order), "tried": dict(tried), "seconds": round(time.monotonic() - started, 1)}
    if cache is not None:
        cache.write_text(json.dumps({"chosen": [s.to_dict() for s in chosen], "selection": selection}, indent=1),
                         encoding="utf-8")
    return chosen, {**selection, "cached": False}


# --- one project ---------------------------------------------------------------------------------------------


@dataclass
class Options:
    bugs: int
    model: str
    timeout: float
    seed: int
    cache: Path
    work: Path
    env: dict[str, str] = field(default_factory=_greenpatch_env)


def bench_project(project: Project, opts: Options) -> dict[str, Any]:
    """One project's row; every failure is recorded in it, none raised."""
    row: dict[str, Any] = {"project": project.name, "version": project.version, "environment": project.environment,
                           "setup_failures": [], "crashes": 0, "lost_reports": 0, "slips": []}
    work = opts.work / project.name
    work.mkdir(parents=True)
    try:
        prepared = prepare(project, opts.cache)
    except (SetupFailed, OSError) as exc:
        row["setup_failures"].append({"step": getattr(exc, "step", "setup"), "message": str(exc)[:400]})
        return row
    row.update(python=prepared.python, versions=prepared.versions, setup_seconds=prepared.seconds,
               setup_cached=prepared.cached)
    # the truth: the project's own suite in its venv, as its developers run it
    plain = _pytest(prepared.python, _copy(prepared.source, work / "baseline"), 900, [])
    tests, preexisting = pytest_outcome(plain.stdout)
    row.update(tests=tests, plain_pytest_seconds=plain.seconds, preexisting_failures=preexisting)
    if plain.code not in (0, 1) or not tests:
        row["setup_failures"].append({"step": "project suite", "message": f"pytest exit {plain.code}: "
                                      f"{(plain.stdout.strip().splitlines() or [''])[-1][:300]}"})
        return row
    _first_result(row, prepared, work, opts)
    limit = max(30.0, 3 * plain.seconds + 20)
    cache = opts.cache / project.key() / f"slips-seed{opts.seed}.json"
    chosen, row["selection"] = choose_slips(prepared, work, opts.bugs, opts.seed, limit, preexisting, cache)
    for number, slip in enumerate(chosen, 1):
        result = _repair_one(slip, prepared, work / f"slip{number}", opts, preexisting, limit)
        row["slips"].append(result)
        row["crashes"] += int(result["crashed"])
        row["lost_reports"] += int(result["outcome"] == "lost report")
        print(f"  [{project.name} {number}/{len(chosen)}] {slip.kind} {slip.path}:{slip.line}: {result['outcome']} "
              f"({result['seconds']:.0f}s, exit {result['exit_code']})", file=sys.stderr)
    row["summary"] = _project_summary(row)
    return row


def _first_result(row: dict[str, Any], prepared: Prepared, work: Path, opts: Options) -> None:
    """`greenpatch test` on the untouched project: how long a user waits for the first results, and whether
    greenpatch sees what the project's own pytest sees."""
    ws = _copy(prepared.source, work / "first")
    argv = [sys.executable, "-m", "greenpatch", "test", str(ws), "--all", "--json", "--python", prepared.python,
            "--timeout", str(opts.timeout)]
    done = _call(argv, ws, opts.timeout + GRACE, opts.env)
    _forget_state(ws)
    data = done.json()
    row["first_result_seconds"] = done.seconds
    row["greenpatch_test"] = {"exit_code": done.code, "stderr_tail": done.last_error_line()}
    if done.crashed:
        row["crashes"] += 1
    if data is None:
        # exit 2 is greenpatch's own "could not run the tests" (a setup failure); None: killed as hung
        row["lost_reports"] += int(done.code not in (None, 2))
        row["setup_failures"].append({"step": "greenpatch test", "message": f"exit {done.code}: "
                                      f"{done.last_error_line()}"})
        return
    results = data.get("results", [])
    failed = sorted(r["nodeid"] for r in results if r.get("outcome") in ("failed", "error"))
    row["baseline_seconds"] = data.get("seconds")
    row["greenpatch_test"].update(tests=len(results), failed=len(failed), error=data.get("error", ""),
                                  timed_out=data.get("timed_out", False), python=data.get("python", ""))
    extra = [n for n in failed if n not in row["preexisting_failures"]]
    if data.get("error") or not results or data.get("timed_out") or extra:
        why = data.get("error") or ("timed out" if data.get("timed_out") else "") or \
            (f"{len(extra)} tests fail under greenpatch that pass in the project's venv, e.g. {extra[0]}" if extra
             else "no test results")
        row["greenpatch_test"]["failing_only_under_greenpatch"] = extra[:20]
        row["setup_failures"].append({"step": "greenpatch test", "message": str(why)[:400]})


def _repair_one(slip: Slip, prepared: Prepared, ws_path: Path, opts: Options, deselect: list[str],
                limit: float) -> dict[str, Any]:
    ws = _copy(prepared.source, ws_path)
    pristine = (prepared.source / slip.path).read_text(encoding="utf-8")
    (ws / slip.path).write_text(slip.apply(pristine), encoding="utf-8")
    argv = [sys.executable, "-m", "greenpatch", "repair", str(ws), "--json", "--python", prepared.python,
            "--model", opts.model, "--timeout", str(opts.timeout)]
    done = _call(argv, ws, opts.timeout + GRACE, opts.env)
    _forget_state(ws)
    data = done.json()
    result: dict[str, Any] = {"slip": slip.to_dict(), "exit_code": done.code, "seconds": done.seconds,
                              "crashed": done.crashed, "hit_time_limit": False, "shown": False, "fixed": False,
                              "outcome": "", "stderr_tail": done.last_error_line()}
    if done.code is None:
        result.update(outcome="hung", hit_time_limit=True)
        return result
    if data is None:
        result["outcome"] = "crash" if done.crashed else "lost report"
        return result
    notes = " ".join(data.get("notes", []))
    # greenpatch's own word for it, or the wall clock: a run that ends past --timeout hit the limit too
    result["hit_time_limit"] = bool(data.get("timed_out")) or "time limit" in notes or done.seconds >= opts.timeout
    result.update(candidates=data.get("candidates_tried", 0), failures=len(data.get("failures", [])),
                  greenpatch_seconds=data.get("seconds"), error=(data.get("error") or "")[:300],
                  timing=data.get("timing") or {}, model_tokens=data.get("model_tokens") or {})
    fixes = [f for f in data.get("fixes", []) if f.get("verified")]
    if fixes:
        best = fixes[0]  # what `--apply` writes and the diff shows first
        result.update(shown=True, generator=best.get("generator", ""), kind=best.get("kind", ""),
                      diff=best.get("diff", ""),
                      exact=best.get("path") == slip.path and best.get("new_text") == pristine)
        result["fixed"] = _judge(prepared, ws_path.parent / f"{ws_path.name}-judge", best, deselect, limit)
        result["outcome"] = "fixed" if result["fixed"] else "wrong fix"
    elif data.get("error") and not data.get("failures"):
        result["outcome"] = "tests could not run"
    elif not data.get("failures"):
        result["outcome"] = "bug not seen"  # the project's pytest fails on this slip; greenpatch saw nothing fail
    else:
        result["outcome"] = "timed out" if result["hit_time_limit"] else "no fix"
        result["cause"] = miss_cause(slip, pristine, data.get("search") or [])
    if done.crashed and result["outcome"] not in ("fixed", "wrong fix"):
        result["outcome"] = "crash"
    shutil.rmtree(ws, ignore_errors=True)
    return result


MISS_CAUSES = ("not localized", "no candidate right", "right candidate not verified in time",
               "right candidate failed")


def miss_cause(slip: Slip, pristine: str, search: list[dict[str, Any]]) -> str:
    """Why a slip got no fix, from where the run looked and what it made (RepairReport.search): its line among
    no suspect's; no candidate the program the slip was made in (candidates.digest, formatting aside); that one made
    but its tests never run (time ran out first); or run and failed (the tests, not the search, are at fault)."""
    right = digest(pristine)
    made = [c for group in search for c in group.get("candidates", []) if c.get("key") == right]
    if any(c.get("tried") for c in made):
        return MISS_CAUSES[3]
    if made:
        return MISS_CAUSES[2]
    localized = any(s.get("path") == slip.path and s.get("line", 0) - 1 <= slip.line <= s.get("last", 0) + 1
                    for group in search for s in group.get("suspects", []))
    return MISS_CAUSES[1] if localized else MISS_CAUSES[0]


def _judge(prepared: Prepared, folder: Path, fix: dict[str, Any], deselect: list[str], limit: float) -> bool:
    """Whether the project's whole suite passes on the fix, in the project's venv."""
    judge = _copy(prepared.source, folder)
    target = (judge / fix["path"]).resolve()
    if judge.resolve() not in target.parents:
        return False
    target.write_text(fix["new_text"], encoding="utf-8")
    done = _pytest(prepared.python, judge, limit, deselect, first_failure=True)
    shutil.rmtree(judge, ignore_errors=True)
    return done.code == 0


# --- the report ----------------------------------------------------------------------------------------------


def _slip_figures(slips: list[dict[str, Any]]) -> dict[str, Any]:
    """Fixed, precision, time and outcomes of some repaired slips (one project's, or all)."""
    shown = [s for s in slips if s["shown"]]
    fixed = [s for s in shown if s["fixed"]]
    return {
        "bugs": len(slips),
        "fixed": len(fixed),
        "fix_rate": round(len(fixed) / len(slips), 3) if slips else None,
        "shown": len(shown),
        "precision": round(len(fixed) / len(shown), 3) if shown else None,
        "seconds": describe([s["seconds"] for s in slips], digits=1),
        "seconds_to_fix": describe([s["seconds"] for s in fixed], digits=1),
        "hit_time_limit": sum(1 for s in slips if s["hit_time_limit"]),
        "outcomes": dict(Counter(s["outcome"] for s in slips)),
        "timing": _timing(slips),
        # which kind of edit (repair/budget.py) the shown fixes were: right ones, and wrong ones
        "fixed_by_kind": dict(Counter(s.get("kind") or s.get("generator", "") for s in fixed)),
        "wrong_by_kind": dict(Counter(s.get("kind") or s.get("generator", "") for s in shown if not s["fixed"])),
        # the slips with no fix, by why (see miss_cause)
        "misses_by_cause": dict(Counter(s["cause"] for s in slips if s.get("cause"))),
    }


TIME_PARTS = ("tests", "model_wait", "other", "prompt", "generation")


def _timing(slips: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the repairs' time went, summed over the slips (see RepairReport.timing), and the model's tokens."""
    seconds: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for s in slips:
        seconds.update(s.get("timing") or {})
        tokens.update(s.get("model_tokens") or {})
    return {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "model_tokens": dict(tokens)}


def _project_summary(row: dict[str, Any]) -> dict[str, Any]:
    return _slip_figures(row["slips"])


def _summary(rows: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    slips = [s for r in rows for s in r["slips"]]
    return {
        "model": opts.model, "timeout": opts.timeout, "seed": opts.seed, "bugs_per_project": opts.bugs,
        "projects": len(rows),
        "setup_failures": sum(len(r["setup_failures"]) for r in rows),
        "projects_with_setup_failures": [r["project"] for r in rows if r["setup_failures"]],
        "crashes": sum(r["crashes"] for r in rows),
        "lost_reports": sum(r["lost_reports"] for r in rows),
        # repair runs that never got to repairing: what a user sees as greenpatch not working in their project
        "runs_where_tests_could_not_run": sum(1 for s in slips if s["outcome"] == "tests could not run"),
        **_slip_figures(slips),
        "targets": {"setup_failures": 0, "crashes": 0, "lost_reports": 0},
    }


def table(rows: list[dict[str, Any]]) -> str:
    """A short table per project, for the terminal (the JSON report has everything)."""
    head = f"{'project':16} {'env':34} {'setup':>5} {'first s':>7} {'base s':>6} {'bugs':>4} {'fixed':>5} " \
           f"{'shown':>5} {'p50 s':>6} {'p95 s':>6} {'limit':>5} {'crash':>5} {'lost':>4}"
    lines = [head, "-" * len(head)]
    for r in rows:
        s = r.get("summary") or _project_summary(r)
        secs = s["seconds"]
        env = (r.get("environment") or "")[:34]
        first = r.get("first_result_seconds")
        base = r.get("baseline_seconds")
        lines.append(f"{r['project'][:16]:16} {env:34} {len(r['setup_failures']):>5} "
                     f"{first if first is not None else '-':>7} {base if base is not None else '-':>6} "
                     f"{s['bugs']:>4} {s['fixed']:>5} {s['shown']:>5} {secs.get('p50', '-'):>6} "
                     f"{secs.get('p95', '-'):>6} {s['hit_time_limit']:>5} {r['crashes']:>5} {r['lost_reports']:>4}")
        for failure in r["setup_failures"]:
            lines.append(f"    setup failure, {failure['step']}: {failure['message'][:150]}")
        if s["outcomes"]:
            lines.append("    outcomes: " + ", ".join(f"{n} {what}" for what, n in sorted(s["outcomes"].items())))
        if s.get("misses_by_cause"):
            lines.append("    misses: " + ", ".join(f"{n} {why}" for why, n in sorted(s["misses_by_cause"].items())))
        if s.get("fixed_by_kind"):
            lines.append("    fixed by: " + ", ".join(f"{n} {kind}" for kind, n in sorted(s["fixed_by_kind"].items())))
        spent = (s.get("timing") or {}).get("seconds") or {}
        if spent:
            lines.append("    repair time (s, all slips): " + ", ".join(f"{what} {spent[what]}" for what in TIME_PARTS
                                                                       if what in spent))
    return "\n".join(lines)


def resolve_projects(names: list[str] | None, python: str | None) -> list[Project]:
    chosen: list[Project] = []
    for name in names or list(PROJECTS):
        if name in PROJECTS:
            chosen.append(PROJECTS[name])
        elif Path(name).is_dir():
            chosen.append(local_project(Path(name).resolve(), python))
        else:
            from greenpatch.errors import UsageError

            raise UsageError(f"{name}: not a known project ({', '.join(PROJECTS)}) nor a folder")
    return chosen


def run(args: argparse.Namespace) -> dict[str, Any]:
    projects = resolve_projects(args.projects, args.python)
    cache = Path(args.cache).expanduser() if args.cache else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gp-bench-real-"))
    opts = Options(args.bugs, args.model, args.timeout, args.seed, cache, work)
    rows: list[dict[str, Any]] = []
    try:
        for project in projects:
            print(f"greenpatch bench real: {project.name} {project.version} ({project.environment})", file=sys.stderr)
            rows.append(bench_project(project, opts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows), file=sys.stderr)
    return {"benchmark": "real", "summary": _summary(rows, opts), "machine": machine(),
            "load": _load(), "command": " ".join(sys.argv), "commit": _commit(), "projects": rows}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(greenpatch.__file__).parent,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()
