"""Run the examples (doctests) in one function's docstring on a version of its module, in a sandbox.

Inline completion asks this where the code itself says what a function should do (completion/examples.py): the
examples are the author's, so they judge a suggested line better than the model's own likelihoods. The module
version is written to a private folder and imported there by a small runner (pytest_plugin/greenpatch_examples.py)
under the same limits as a test run (process.run: no network, every file system read-only but that folder, CPU,
memory, process count, a wall-clock deadline, cancellable). Callers decide that the workspace is trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from greenpatch.cancel import CANCELLED, CancelToken
from greenpatch.verify import process
from greenpatch.verify.sandbox import make_work_dir, remove_tree
from greenpatch.verify.verifier import PLUGIN_DIR, base_environment

RUNNER = PLUGIN_DIR / "greenpatch_examples.py"


@dataclass(frozen=True)
class ExampleRun:
    # "passed" (every example), "failed" (some example failed, raised or hung), "error" (the module or the function
    # could not be loaded, or did not load in time, or no example could run: no verdict), CANCELLED
    verdict: str
    attempted: int = 0
    failed: int = 0
    seconds: float = 0.0
    detail: str = ""

    @property
    def cancelled(self) -> bool:
        return self.verdict == CANCELLED


def module_name(path: Path | None, root: Path | None) -> tuple[str, str]:
    """The dotted name the file is imported by (and its package), so relative imports resolve as in the project:
    from the root down through folders with an __init__.py; a file outside a package is its stem."""
    if path is None:
        return "__greenpatch_examples__", ""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and (root is None or folder != root.parent) and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    name = ".".join(parts)
    return name, name.rpartition(".")[0]


def run_examples(source: str, qualname: str, *, path: Path | None, root: Path | None, python: str,
                 timeout: float = 2.0, memory_mb: int = 1024, cancel: CancelToken | None = None) -> ExampleRun:
    """The examples of `qualname` ("func" or "Class.method") with the module's text as `source`."""
    work = make_work_dir()
    try:
        src, home, tmp = work / "src", work / "home", work / "tmp"
        for folder in (src, home, tmp):
            folder.mkdir()
        name, package = module_name(path, root)
        module_file = src / f"{name.rpartition('.')[2]}.py"
        module_file.write_text(source, encoding="utf-8")
        results = work / "results.jsonl"
        paths = [] if path is None else [str(path.parent)] + ([str(root)] if root is not None else [])
        job = {"file": str(module_file), "module": name, "package": package, "qualname": qualname,
               "paths": paths, "results": str(results)}
        (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
        env = base_environment(python, str(home), str(tmp))
        env["PWD"] = str(src)
        if process.isolation().mount_namespace:
            env["GREENPATCH_READONLY"] = os.path.realpath(work)
        outcome = process.run([python, str(RUNNER), str(work / "job.json")], cwd=src, env=env,
                              output=work / "output.log", timeout=timeout, memory_mb=memory_mb, max_procs=16,
                              cancel=cancel)
        records = _records(results)
        events = {r.get("event"): r for r in records}
        if outcome.cancelled:
            return ExampleRun(CANCELLED, seconds=outcome.seconds)
        done = events.get("done")
        if done is not None:
            failed, attempted = _count(done.get("failed")), _count(done.get("attempted"))
            verdict = "failed" if failed else "passed" if attempted else "error"  # no example that runs: no verdict
            return ExampleRun(verdict, attempted, failed, outcome.seconds, str(done.get("report", "")))
        if "imported" in events:  # loaded, then an example hung or took the process down
            return ExampleRun("failed", seconds=outcome.seconds, detail=outcome.killed or outcome.output[-500:])
        error = events.get("error")
        detail = str(error.get("message")) if error else (outcome.killed or outcome.output[-500:])
        return ExampleRun("error", seconds=outcome.seconds, detail=detail)
    finally:
        remove_tree(work)


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


def _records(path: Path) -> list[dict[str, object]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
