"""Docstring examples judge a suggestion: where they can (completion/examples.py), how they run in the sandbox
(verify/examples.py, a real subprocess), and what the completion service does with their verdict (fake engine)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from greenpatch.cancel import CancelToken
from greenpatch.completion.examples import target
from greenpatch.completion.service import CompletionService
from greenpatch.config import CompletionSettings
from greenpatch.engine.fake import FakeEngine
from greenpatch.engine.worker import EngineWorker
from greenpatch.verify.examples import module_name, run_examples

MODULE = '''import math


def area(r):
    """The area of a circle.

    >>> area(1)
    3.14
    """
    scale = 1
    return round(math.pi * r * r * scale, 2)
'''
LINE = 9  # `    scale = 1`
# The time limit of examples that end. The product's 2 s is an editor's patience; these tests check verdicts, and a
# run cut short by a busy machine before the module loaded has none ("error").
ENDS = 60.0


def test_a_line_in_a_function_with_examples_and_code_below_is_judged_as_whole() -> None:
    found = target(MODULE, LINE, LINE)
    assert found is not None and found.qualname == "area" and found.whole


def test_the_last_line_of_a_function_still_being_written_cannot_be_judged_by_its_failure() -> None:
    doc = MODULE.replace("    return round(math.pi * r * r * scale, 2)\n", "")
    found = target(doc, LINE, LINE)
    assert found is not None and not found.whole


def test_a_return_that_ends_the_function_makes_it_whole() -> None:
    found = target(MODULE, LINE + 1, LINE + 1)
    assert found is not None and found.whole


def test_no_examples_no_judgement() -> None:
    assert target(MODULE.replace(">>>", "..."), LINE, LINE) is None
    assert target("def f():\n    return 1\n", 1, 1) is None


def test_a_suggestion_inside_the_docstring_is_not_judged() -> None:
    assert target(MODULE, 6, 6) is None


def test_a_module_that_does_work_at_import_is_never_run() -> None:
    assert target(MODULE + "\nprint(area(2))\n", LINE, LINE) is None
    assert target(MODULE + "\nfor i in range(3):\n    area(i)\n", LINE, LINE) is None


def test_a_method_is_found_by_its_qualified_name() -> None:
    doc = 'class Shape:\n    def double(self, x):\n        """\n        >>> Shape().double(2)\n        4\n        """\n        y = x\n        return 2 * y\n'
    found = target(doc, 6, 6)
    assert found is not None and found.qualname == "Shape.double" and found.whole


def run(source: str, name: str = "area", **kwargs: object) -> str:
    return run_examples(source, name, path=None, root=None, python=sys.executable,  # type: ignore[arg-type]
                        **{"timeout": ENDS, **kwargs}).verdict


def test_examples_that_hold_pass_and_a_wrong_line_fails_them() -> None:
    assert run(MODULE) == "passed"
    assert run(MODULE.replace("scale = 1", "scale = 2")) == "failed"


def test_a_module_that_does_not_import_gives_no_verdict() -> None:
    assert run("import no_such_module_here\n" + MODULE) == "error"


def test_an_example_that_hangs_fails_within_the_time_limit() -> None:
    # a limit from the work, not 1 s: 2 s more than loading and running the examples takes on this machine now
    quick = run_examples(MODULE, "area", path=None, root=None, python=sys.executable, timeout=ENDS).seconds
    assert run(MODULE.replace("scale = 1", "while True: pass"), timeout=2 + 2 * quick) == "failed"


def test_cancelled_examples_return_a_run_marked_cancelled_without_raising() -> None:
    token = CancelToken()
    timer = threading.Timer(0.5, token.cancel)
    timer.start()
    started = time.monotonic()
    ran = run_examples(MODULE.replace("scale = 1", "while True: pass"), "area", path=None, root=None,
                       python=sys.executable, timeout=30.0, cancel=token)
    timer.join()
    assert ran.cancelled and ran.verdict == "cancelled"
    assert time.monotonic() - started < 15  # ended by the cancel, not by its 30 s limit


def test_a_comparison_written_without_its_output_is_read_as_the_assertion_meant() -> None:
    doc = 'def count(xs):\n    """\n    >>> count([1, 2]) == 2\n    """\n    return len(xs)\n'
    assert run(doc, "count") == "passed"
    assert run(doc.replace("len(xs)", "len(xs) + 1"), "count") == "failed"


def test_examples_doctest_cannot_read_or_that_are_not_python_give_no_verdict() -> None:
    split = 'def strip(s):\n    """\n    >>> strip("a\\nb")\n    "ab"\n    """\n    return s.replace("\\n", "")\n'
    assert run(split, "strip") == "error", "a \\n in a docstring that is not raw splits the example"
    broken = 'def one():\n    """\n    >>> one() ==\n    >>> one() +\n    1\n    """\n    return 1\n'
    assert run(broken, "one") == "error", "no example compiles: nothing judged"
    assert run(broken.replace('    """\n    return', '    >>> one()\n    1\n    """\n    return'), "one") == "passed"


def test_the_same_value_written_another_way_passes() -> None:
    doc = 'def shift(s):\n    """\n    >>> shift("ab")\n    "ba"\n    >>> shift("a") + "x"\n    "ax"\n    """\n    return s[::-1]\n'
    assert run(doc, "shift") == "passed"


def test_the_examples_cannot_write_outside_their_sandbox(tmp_path: Path) -> None:
    target_file = tmp_path / "written.txt"
    doc = MODULE.replace("scale = 1", f"scale = 1; open({str(target_file)!r}, 'w').write('x')")
    run(doc)
    assert not target_file.exists()


def test_a_package_module_is_imported_by_its_dotted_name(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "consts.py").write_text("SCALE = 1\n")
    path = tmp_path / "pkg" / "geometry.py"
    assert module_name(path, tmp_path) == ("pkg.geometry", "pkg")
    source = MODULE.replace("import math\n", "import math\n\nfrom .consts import SCALE\n").replace(
        "scale = 1", "scale = SCALE")
    assert run_examples(source, "area", path=path, root=tmp_path, python=sys.executable, timeout=ENDS).verdict == "passed"


# --- the completion service ---------------------------------------------------------------------------------------

SQUARE = '''def square(n):
    """
    >>> square(3)
    9
    """

    return m
'''


def square_service(engine: FakeEngine, **kwargs: object) -> tuple[CompletionService, EngineWorker]:
    worker = EngineWorker(lambda: engine)
    return CompletionService(worker, CompletionSettings(debounce_ms=0, gate_threshold=-99.0, examples_seconds=ENDS), **kwargs), worker  # type: ignore[arg-type]


async def test_a_line_its_examples_fail_is_replaced_by_a_sampled_line_that_passes() -> None:
    engine = FakeEngine(text="    m = n + n", samples=[("    m = n * n", [-0.3] * 4, -0.1), ("    m = 2", [-0.1] * 3, -0.1)])
    service, worker = square_service(engine)
    try:
        s = await service.complete("file:///w/sq.py", None, SQUARE, 1, 5, 0, CancelToken())
    finally:
        worker.close()
    assert s is not None and s.shown and s.text == "    m = n * n" and s.examples == "replaced"


async def test_where_no_sampled_line_passes_the_line_is_withheld_and_typing_along_it_shows_nothing() -> None:
    engine = FakeEngine(text="    m = n + n", samples=[("    m = 2", [-0.1] * 3, -0.1)])
    service, worker = square_service(engine)
    try:
        s = await service.complete("file:///w/sq.py", None, SQUARE, 1, 5, 0, CancelToken())
        calls = len(engine.calls)
        typed = SQUARE.replace("\n\n    return", "\n    m = n\n    return")
        along = await service.complete("file:///w/sq.py", None, typed, 2, 5, len("    m = n"), CancelToken())
    finally:
        worker.close()
    assert s is not None and not s.shown and s.text == "    m = n + n" and s.examples == "failed"
    assert along is not None and not along.shown and not along.text, "the rest of a failing line is not shown"
    assert len(engine.calls) == calls, "typing along it asks the model nothing"


async def test_a_line_that_passes_its_examples_is_kept() -> None:
    engine = FakeEngine(text="    m = n * n", samples=[("    m = 2", [-0.1] * 3, -0.1)])
    service, worker = square_service(engine)
    try:
        s = await service.complete("file:///w/sq.py", None, SQUARE, 1, 5, 0, CancelToken())
    finally:
        worker.close()
    assert s is not None and s.text == "    m = n * n" and s.examples == "passed"
    assert not [c for c in engine.calls if c["temperature"] > 0], "nothing sampled for a line that passed"


@pytest.mark.parametrize("kwargs", [{"trusted": False}, {}])
async def test_an_untrusted_workspace_or_the_setting_off_runs_no_examples(kwargs: dict[str, object]) -> None:
    engine = FakeEngine(text="    m = n + n", samples=[("    m = n * n", [-0.3] * 4, -0.1)])
    service, worker = square_service(engine, **kwargs)
    if not kwargs:
        service.settings.examples = False
    try:
        s = await service.complete("file:///w/sq.py", None, SQUARE, 1, 5, 0, CancelToken())
    finally:
        worker.close()
    assert s is not None and s.text == "    m = n + n" and s.examples == ""


async def test_a_function_still_being_written_runs_no_examples() -> None:
    engine = FakeEngine(text="    m = n + n", samples=[("    m = n * n", [-0.3] * 4, -0.1)])
    service, worker = square_service(engine)
    try:
        s = await service.complete("file:///w/sq.py", None, SQUARE.replace("    return m\n", ""), 1, 5, 0,
                                   CancelToken())
    finally:
        worker.close()
    assert s is not None and s.text == "    m = n + n" and s.examples == "", "its examples fail whatever the line"
    assert not [c for c in engine.calls if c["temperature"] > 0], "nothing sampled"
