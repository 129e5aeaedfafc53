"""Run the doctest examples of one function of one module version, inside greenpatch's sandbox (see
greenpatch/verify/examples.py). Runs under the workspace's interpreter; standard library only.

    python greenpatch_examples.py JOB

JOB is a JSON file: {"file": the module version's path, "module": its dotted name, "package": its package ("" at
the top), "qualname": "func" or "Class.method", "paths": folders put first on sys.path, "results": where to write}.
The results file gets one JSON object a line: {"event": "imported"} once the module is loaded, then
{"event": "done", "attempted": N, "failed": N}, or {"event": "error", "message": ...} where the module or the
function could not be loaded, or doctest cannot read its docstring (no verdict on the examples). Examples that do
not compile are left out. Exit status 0 all passed, 1 some failed, 3 error.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import io
import json
import os
import sys
from typing import Any


def _emit(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def _comparison(source: str) -> bool:
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return False
    return isinstance(tree.body, ast.Compare)


def _compiles(source: str) -> bool:
    try:
        compile(source, "<example>", "single", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return False
    return True


class _Checker(doctest.OutputChecker):
    """doctest's own comparison, and where it fails the same value written another way: `"21"` for `'21'`,
    `[1,2]` for `[1, 2]`, `2` for `2.0` (docstrings are written by hand)."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if super().check_output(want, got, optionflags):
            return True
        try:
            return bool(ast.literal_eval(want.strip()) == ast.literal_eval(got.strip()))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return False


def main() -> int:
    keep = os.environ.pop("GREENPATCH_READONLY", "")
    if keep:
        try:
            from greenpatch_readonly import read_only_except

            read_only_except(keep)
        except Exception:  # noqa: BLE001,S110 - best effort, as in a test run
            pass
    with open(sys.argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    results = job["results"]
    sys.path[:0] = job["paths"]
    try:
        spec = importlib.util.spec_from_file_location(job["module"], job["file"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {job['file']}")
        module = importlib.util.module_from_spec(spec)
        if job["package"]:
            module.__package__ = job["package"]
        sys.modules[job["module"]] = module
        spec.loader.exec_module(module)
        target: Any = module
        for part in job["qualname"].split("."):
            target = getattr(target, part)
    except BaseException as exc:  # noqa: BLE001 - whatever the module does at import, it is no verdict
        _emit(results, {"event": "error", "message": f"{type(exc).__name__}: {exc}"[:500]})
        return 3
    try:
        tests = doctest.DocTestFinder(recurse=False).find(target, job["qualname"], module=False, globs=vars(module))
    except ValueError as exc:  # doctest cannot read the docstring (a "\n" in a docstring that is not raw splits an
        # example over two lines): the examples say nothing about the code
        _emit(results, {"event": "error", "message": f"the examples do not parse: {exc}"[:500]})
        return 3
    _emit(results, {"event": "imported"})
    for test in tests:
        kept = []
        for example in test.examples:
            if not _compiles(example.source):
                continue  # an example that is not Python says nothing about the code either
            if not example.want and _comparison(example.source):
                # `>>> f([]) == 0` with nothing under it: the author wrote the assertion, not its output (doctest
                # would expect no output and fail on `True` whatever the code does)
                example.want = "True\n"
            kept.append(example)
        test.examples = kept
    runner = doctest.DocTestRunner(checker=_Checker(), verbose=False, optionflags=doctest.ELLIPSIS)
    sink = io.StringIO()
    failed = attempted = 0
    for test in tests:
        outcome = runner.run(test, out=sink.write)
        failed += outcome.failed
        attempted += outcome.attempted
    _emit(results, {"event": "done", "attempted": attempted, "failed": failed, "report": sink.getvalue()[-2000:]})
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
